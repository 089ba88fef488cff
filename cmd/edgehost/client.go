package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/config"
)

// clientCommands returns the commands that talk to a running host's admin
// API: deploy, versions, activate, pools, kv, purge.
func clientCommands() []*cobra.Command {
	return []*cobra.Command{newDeployCmd(), newVersionsCmd(), newActivateCmd(), newPoolsCmd(), newKVCmd(), newPurgeCmd()}
}

// adminClient is the shared --admin and --token flags and the HTTP calls.
type adminClient struct {
	url, token string
	http       *http.Client
	headers    map[string]string // extra request headers
}

func (a *adminClient) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.url, "admin", "http://"+config.DefaultAdminAddr, "admin API URL of the running host")
	cmd.Flags().StringVar(&a.token, "token", "", "admin token (default $"+admin.TokenEnv+")")
}

// apiError is an error answer of the admin API.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("admin API: %s (HTTP %d)", e.msg, e.status) }

// do calls the API and decodes a 2xx JSON answer into out. Errors: the
// host is not reachable (saying so), an error answer (its message).
func (a *adminClient) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	base := strings.TrimSuffix(a.url, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base + path)
	if err != nil {
		return fmt.Errorf("--admin %q: %w", a.url, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return err
	}
	if u, ok := body.(*uploadProgress); ok {
		req.ContentLength = u.size
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range a.headers {
		req.Header.Set(k, v)
	}
	tok := a.token
	if tok == "" {
		tok = os.Getenv(admin.TokenEnv)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	hc := a.http
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Minute}
	}
	resp, err := hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("cannot reach the admin API at %s: %v; is `edgehost serve` running there (see its --admin-addr)?", base, op.Err)
		}
		return fmt.Errorf("admin API at %s: %w", base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("admin API at %s: reading the answer: %w", base, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		if resp.StatusCode == http.StatusUnauthorized && tok == "" {
			e.Error += "; pass --token or set " + admin.TokenEnv
		}
		return &apiError{status: resp.StatusCode, msg: e.Error}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*[]byte); ok { // the answer as it came (kv get)
		*raw = data
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API at %s: unexpected answer: %w", base, err)
	}
	return nil
}

func newDeployCmd() *cobra.Command {
	var a adminClient
	var stage bool
	var toolchain string
	cmd := &cobra.Command{
		Use:   "deploy MODULE|DIR|PACKAGE",
		Short: "Upload a guest to a running host and activate it",
		Long: "Upload a guest to a running host's admin API: a .wasm file, a package .tar.gz (fastly.toml\n" +
			"and bin/main.wasm), or a folder with a Go main package, built first (with its fastly.toml,\n" +
			"when it has one, sent along as a package). Prints the new version and its sha256.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, kind, err := deployBody(cmd, args[0], toolchain)
			if err != nil {
				return err
			}
			path := "/v1/modules"
			if stage {
				path += "?activate=false"
			}
			var v admin.VersionInfo
			var rd io.Reader = bytes.NewReader(body)
			up := newUploadProgress(cmd.ErrOrStderr(), body) // a progress line on a terminal
			if up != nil {
				rd = up
			}
			err = a.do(cmd.Context(), http.MethodPost, path, rd, kind, &v)
			if up != nil {
				up.done(err)
			}
			if err != nil {
				return err
			}
			state := "active"
			if !v.Active {
				state = "staged (activate with: edgehost activate " + strconv.Itoa(v.Number) + ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "version %d  sha256 %s  %s  %s\n", v.Number, v.SHA256, byteSize(v.Size), state)
			return nil
		},
	}
	a.register(cmd)
	cmd.Flags().BoolVar(&stage, "stage", false, "store the version without activating it")
	toolchainFlag(cmd, &toolchain)
	return cmd
}

// deployBody reads or builds what deploy uploads, and its content type.
func deployBody(cmd *cobra.Command, path, toolchain string) ([]byte, string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "", fmt.Errorf("deploy: %w", err)
	}
	if !fi.IsDir() {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("deploy: %w", err)
		}
		if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
			return b, "application/gzip", nil
		}
		return b, "application/wasm", nil
	}
	tmp, err := os.MkdirTemp("", "edgehost-deploy-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "main.wasm")
	c, err := findCompiler(cmd.Context(), toolchain)
	if err != nil {
		return nil, "", err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "building %s with %s\n", path, c)
	if err := c.Build(cmd.Context(), path, out); err != nil {
		return nil, "", err
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		return nil, "", err
	}
	manifest, err := os.ReadFile(filepath.Join(path, "fastly.toml"))
	if errors.Is(err, os.ErrNotExist) {
		return wasm, "application/wasm", nil
	}
	if err != nil {
		return nil, "", err
	}
	// Check the manifest here, so that a mistake fails before the upload.
	if _, err := config.Load(filepath.Join(path, "fastly.toml")); err != nil {
		return nil, "", err
	}
	pkg, err := packTarGz(manifest, wasm)
	return pkg, "application/gzip", err
}

// packTarGz builds a package holding fastly.toml and bin/main.wasm,
// compressed at gzip.BestSpeed: an upload to the admin API is rarely
// short of bandwidth, and the default level takes about four times as
// long (an 11.5 MB JS SDK module: 1.14 s against 0.25 s, on a busy 2-core
// machine) for a package about a sixth smaller (3.8 MB against 4.5 MB).
func packTarGz(manifest, wasm []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		data []byte
	}{{"fastly.toml", manifest}, {"bin/main.wasm", wasm}} {
		name, data := f.name, f.data
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func newVersionsCmd() *cobra.Command {
	var a adminClient
	cmd := &cobra.Command{
		Use:   "versions",
		Short: "List the versions deployed to a running host, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out admin.VersionList
			if err := a.do(cmd.Context(), http.MethodGet, "/v1/modules", nil, "", &out); err != nil {
				return err
			}
			if len(out.Versions) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no versions deployed yet; deploy one with: edgehost deploy MODULE")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tACTIVE\tSHA256\tSIZE\tKIND\tCREATED")
			for _, v := range out.Versions {
				active, kind := "", "wasm"
				if v.Active {
					active = "*"
				}
				if v.Package {
					kind = "package"
				}
				fmt.Fprintf(tw, "%d\t%s\t%.12s\t%s\t%s\t%s\n", v.Number, active, v.SHA256, byteSize(v.Size), kind, v.Created.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	a.register(cmd)
	return cmd
}

func newActivateCmd() *cobra.Command {
	var a adminClient
	cmd := &cobra.Command{
		Use:   "activate VERSION",
		Short: "Make a deployed version the active one (roll back or forward)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n <= 0 {
				return fmt.Errorf("activate %q: want a version number (see edgehost versions)", args[0])
			}
			var v admin.VersionInfo
			if err := a.do(cmd.Context(), http.MethodPost, "/v1/modules/"+strconv.Itoa(n)+"/activate", nil, "", &v); err != nil {
				return err
			}
			if v.Previous == v.Number {
				fmt.Fprintf(cmd.OutOrStdout(), "version %d was already active\n", v.Number)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "version %d is active (was %s)\n", v.Number, versionName(v.Previous))
			return nil
		},
	}
	a.register(cmd)
	return cmd
}

func versionName(n int) string {
	if n == 0 {
		return "none"
	}
	return strconv.Itoa(n)
}

func newPoolsCmd() *cobra.Command {
	var a adminClient
	cmd := &cobra.Command{
		Use:   "pools",
		Short: "Show a running host's origin connection pools: settings in force and counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out admin.PoolList
			if err := a.do(cmd.Context(), http.MethodGet, "/v1/pools", nil, "", &out); err != nil {
				return err
			}
			if len(out.Pools) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no origin pools yet (they appear when a version with backends loads)")
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "POOL\tORIGIN\tHOST\tKEEPALIVE\tTCP KEEPALIVE\tMAX CONN\tMAX USE\tMAX LIFE\tIN USE\tIDLE\tOPENED\tREUSED\tREQUESTS\tCLOSED")
			for _, p := range out.Pools {
				tcp := "off"
				if p.Keepalive.TCPEnabled {
					tcp = ms(p.Keepalive.TCPIdleMS)
				}
				var closed uint64
				for _, n := range p.Stats.Closed {
					closed += n
				}
				fmt.Fprintf(tw, "%d\t%s://%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\n",
					p.ID, p.Scheme, p.Addr, orDash(p.HostOverride), ms(p.Keepalive.HTTPKeepaliveTimeMS), tcp,
					limit(p.Limits.MaxConnections), limit(p.Limits.MaxUse), limitMS(p.Limits.MaxLifetimeMS),
					p.Stats.InUse, p.Stats.Idle, p.Stats.Opened, p.Stats.Reused, p.Stats.Requests, closed)
			}
			return tw.Flush()
		},
	}
	a.register(cmd)
	return cmd
}

func ms(v int64) string { return (time.Duration(v) * time.Millisecond).String() }

func limit(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func limitMS(v int64) string {
	if v == 0 {
		return "-"
	}
	return ms(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// byteSize formats n bytes for people: 512 B, 1.5 KiB, 2.3 MiB.
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + " B"
	case n < 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	}
}
