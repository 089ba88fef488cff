package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// servedHost is an `edgehost serve` running in the test.
type servedHost struct {
	url       string // downstream
	adminPort string
	dsPort    string
	stderr    *guesttest.LogBuffer
}

// runServe runs edgehost serve with args until the test ends, and reads
// its downstream and admin URLs from its first two lines.
func runServe(t *testing.T, args ...string) *servedHost {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	s := &servedHost{stderr: &guesttest.LogBuffer{}}
	go func() {
		done <- run(ctx, withEngine("serve", args...), strings.NewReader(""), pw, s.stderr)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, s.stderr)
		}
	})
	br := bufio.NewReader(pr)
	serving, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no serving line: %v; stderr:\n%s", err, s.stderr)
	}
	adminLine, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no admin line: %v; stderr:\n%s", err, s.stderr)
	}
	go io.Copy(io.Discard, br)
	s.url = regexp.MustCompile(`http://[0-9.:]+`).FindString(serving)
	_, s.dsPort, _ = net.SplitHostPort(strings.TrimPrefix(s.url, "http://"))
	m := regexp.MustCompile(`admin API on http://\S*:([0-9]+),`).FindStringSubmatch(adminLine)
	if s.url == "" || m == nil {
		t.Fatalf("no URLs in %q and %q", serving, adminLine)
	}
	s.adminPort = m[1]
	return s
}

// through asks the dynbackend guest to proxy GET path to target.
func (s *servedHost) through(t *testing.T, target, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	req.Header.Set("X-Target", target)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeGuestCannotReachOwnListeners runs edgehost serve with its admin
// API on every interface and the dynbackend guest, which proxies to the
// target a request names. Whatever the local development setting (the
// flag, the manifest key, neither), no address form reaches the admin API
// or the downstream listener; a loopback origin is reachable only with
// local development on.
func TestServeGuestCannotReachOwnListeners(t *testing.T) {
	dir := t.TempDir()
	wasm, err := guesttest.Build("testdata/guests/dynbackend", dir)
	if err != nil {
		t.Fatal(err)
	}
	wasmPath := filepath.Join(dir, "dyn.wasm")
	if err := os.WriteFile(wasmPath, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	store := "[local_server.config_stores.dyn]\nformat = \"inline-toml\"\n[local_server.config_stores.dyn.contents]\nname = \"b\"\ntarget_header = \"X-Target\"\n"
	manifest := func(extra string) string {
		p := filepath.Join(t.TempDir(), "fastly.toml")
		if err := os.WriteFile(p, []byte(extra+store), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	adminAddr := "[::]:0"
	if ln, err := net.Listen("tcp", adminAddr); err != nil {
		adminAddr = "0.0.0.0:0"
	} else {
		ln.Close()
	}
	iface := ""
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, _ := netip.AddrFromSlice(n.IP); ip.Unmap().IsValid() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
					iface = ip.Unmap().String()
					break
				}
			}
		}
	}
	if iface == "" {
		t.Log("this machine has no non-loopback interface address: not testing one")
	}
	dataDir := t.TempDir() // shared, so the guest is compiled once
	for _, tc := range []struct {
		name     string
		args     []string
		localDev bool
	}{
		{"flag", []string{"--allow-private-backends", "-C", manifest("")}, true},
		{"manifest key", []string{"-C", manifest("[edgehost]\nallow_private_backends = true\n")}, true},
		{"flag off over the key", []string{"--allow-private-backends=false", "-C", manifest("[edgehost]\nallow_private_backends = true\n")}, false},
		{"default", []string{"-C", manifest("")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--addr", "127.0.0.1:0", "--admin-addr", adminAddr, "--admin-token", "secret",
				"--data-dir", dataDir, "--log-level", "info"}, tc.args...)
			s := runServe(t, append(args, wasmPath)...)
			status, body := s.through(t, origin.Listener.Addr().String(), "/")
			if tc.localDev && (status != 200 || body != "ok") {
				t.Fatalf("loopback origin with local development on: %d %q", status, body)
			}
			if !tc.localDev && (status != 500 || !strings.Contains(body, "unsupported")) {
				t.Fatalf("loopback origin with local development off: %d %q, want 500 unsupported", status, body)
			}
			targets := []string{"0.0.0.0:" + s.adminPort, "[::]:" + s.adminPort, "127.0.0.1:" + s.adminPort,
				"[::1]:" + s.adminPort, "[::ffff:127.0.0.1]:" + s.adminPort, "127.1:" + s.adminPort,
				"localhost:" + s.adminPort, "127.0.0.1:" + s.dsPort, "0.0.0.0:" + s.dsPort}
			if iface != "" {
				targets = append(targets, net.JoinHostPort(iface, s.adminPort))
			}
			for _, target := range targets {
				status, body := s.through(t, target, "/v1/modules")
				if status == 200 || !strings.HasPrefix(body, "dynbackend: ") {
					t.Errorf("through %s: %d %q, want the guest's error", target, status, body)
				}
			}
			// The admin API does answer on those addresses: from outside.
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%s/v1/modules", s.adminPort))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("admin API from the test: %d", resp.StatusCode)
			}
			if !strings.Contains(s.stderr.String(), "dynamic backend refused by policy") {
				t.Errorf("no refusal logged:\n%s", s.stderr)
			}
		})
	}
}
