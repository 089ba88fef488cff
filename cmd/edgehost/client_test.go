package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// compileCache is the compiled-code cache (--cache-dir) every serve and
// run of the tests shares, across test processes and runs
// (guesttest.SharedCompileCache): compiling a Go-built guest takes
// seconds, tens of seconds under -race, and many tests serve the same one.
// TestServeCacheDir checks the flag and serve's default without it.
var compileCache string

func TestMain(m *testing.M) {
	// serve keeps data in $XDG_DATA_HOME/edgehost unless told otherwise:
	// keep every test's away from the user's.
	tmp, err := os.MkdirTemp("", "edgehost-cmd-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_DATA_HOME", tmp)
	compileCache = guesttest.SharedCompileCache(filepath.Join(tmp, "compile-cache"))
	os.Unsetenv(admin.TokenEnv)
	if os.Getenv(cliUnderTestEnv) == "1" {
		// This binary stands in for the edgehost command (see
		// edgehostShim): run the command line, not the tests.
		code := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
		os.RemoveAll(tmp)
		os.Exit(code)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// cli runs the edgehost command line as main does.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return run(ctx, args, strings.NewReader(""), stdout, stderr)
}

// cliOut runs a client command; it returns stdout, stderr's last line and
// the exit code.
func cliOut(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := cli(ctx, args, &out, &errb)
	lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
	return out.String(), lines[len(lines)-1], code
}

// serving is an edgehost serve running in this process.
type serving struct {
	url, adminURL, first string
	stop                 func() int
}

// startServe runs edgehost serve with args and waits for its banner: the
// serving line and, with wantAdmin, the admin API line after it.
func startServe(t *testing.T, wantAdmin bool, args ...string) *serving {
	t.Helper()
	return startServeStderr(t, wantAdmin, io.Discard, args...)
}

// startServeStderr is startServe with serve's stderr (its log) going to
// stderr.
func startServeStderr(t *testing.T, wantAdmin bool, stderr io.Writer, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- cli(ctx, withEngine("serve", args...), pw, stderr)
		pw.Close()
	}()
	s := &serving{}
	var stopped bool
	var code int
	s.stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			code = <-done
		}
		return code
	}
	t.Cleanup(func() { s.stop() })
	r := bufio.NewReader(pr)
	urlRE := regexp.MustCompile(`http://[0-9.:]+`)
	for s.url == "" || wantAdmin && s.adminURL == "" {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("serve ended before its banner: exit %d", s.stop())
		}
		switch {
		case strings.HasPrefix(l, "edgehost: serving"):
			s.first, s.url = l, urlRE.FindString(l)
		case strings.HasPrefix(l, "edgehost: admin API on"):
			s.adminURL = urlRE.FindString(l)
		}
	}
	go io.Copy(io.Discard, r)
	return s
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDeployCommands runs the deploy workflow through the command line:
// serve with nothing deployed (welcome page), deploy a .wasm and a folder,
// versions, activate, pools, a restart, and the errors a person meets.
func TestDeployCommands(t *testing.T) {
	tmp := t.TempDir()
	hello, err := guesttest.Build("examples/hello", tmp)
	if err != nil {
		t.Fatal(err)
	}
	helloPath := filepath.Join(tmp, "hello.wasm")
	sum := sha256.Sum256(hello)
	root, _ := guesttest.RepoRoot()
	dataDir := filepath.Join(tmp, "data")
	const token = "cmd-test-token"

	s := startServe(t, true, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", dataDir, "--admin-token", token)
	if !strings.Contains(s.first, "welcome page") {
		t.Errorf("banner %q does not say the welcome page serves", s.first)
	}
	if code, body := httpGet(t, s.url+"/"); code != 200 || !strings.Contains(body, "edgehost deploy --admin "+s.adminURL) {
		t.Fatalf("welcome page: %d %q", code, body)
	}

	// Without the token: refused, and told how to fix it.
	if _, errLine, code := cliOut(t, "deploy", "--admin", s.adminURL, helloPath); code == 0 || !strings.Contains(errLine, "HTTP 401") || !strings.Contains(errLine, "--token") {
		t.Fatalf("deploy without a token: exit %d, %q", code, errLine)
	}
	out, errLine, code := cliOut(t, "deploy", "--admin", s.adminURL, "--token", token, helloPath)
	if code != 0 || !strings.HasPrefix(out, "version 1  sha256 "+hex.EncodeToString(sum[:])) || !strings.Contains(out, "active") {
		t.Fatalf("deploy hello.wasm: exit %d, %q, %q", code, out, errLine)
	}
	if code, body := httpGet(t, s.url+"/"); code != 200 || !strings.Contains(body, "hello from edgehost") {
		t.Fatalf("after deploy: %d %q", code, body)
	}

	// A folder with fastly.toml goes up as a package; the token from the
	// environment this time.
	t.Setenv(admin.TokenEnv, token)
	out, errLine, code = cliOut(t, "deploy", "--admin", s.adminURL, filepath.Join(root, "examples/proxy"))
	if code != 0 || !strings.HasPrefix(out, "version 2  sha256 ") {
		t.Fatalf("deploy examples/proxy: exit %d, %q, %q", code, out, errLine)
	}
	out, _, code = cliOut(t, "versions", "--admin", s.adminURL)
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(rows) != 3 || !regexp.MustCompile(`^VERSION\s+ACTIVE\s+SHA256`).MatchString(rows[0]) ||
		!regexp.MustCompile(`^2\s+\*\s+[0-9a-f]{12}\s+.*package`).MatchString(rows[1]) ||
		!regexp.MustCompile(`^1\s+`+hex.EncodeToString(sum[:6])+`\s+.*wasm`).MatchString(rows[2]) {
		t.Fatalf("versions: exit %d\n%s", code, out)
	}
	out, _, code = cliOut(t, "pools", "--admin", s.adminURL)
	if code != 0 || !strings.Contains(out, "ORIGIN") || !strings.Contains(out, "http://127.0.0.1:8080") || !strings.Contains(out, "1m0s") {
		t.Fatalf("pools: exit %d\n%s", code, out)
	}
	if out, _, code = cliOut(t, "activate", "--admin", s.adminURL, "1"); code != 0 || out != "version 1 is active (was 2)\n" {
		t.Fatalf("activate 1: exit %d, %q", code, out)
	}
	if code, body := httpGet(t, s.url+"/"); code != 200 || !strings.Contains(body, "hello from edgehost") {
		t.Fatalf("after rollback: %d %q", code, body)
	}
	if _, errLine, code = cliOut(t, "activate", "--admin", s.adminURL, "9"); code == 0 || !strings.Contains(errLine, "version 9 does not exist") {
		t.Fatalf("activate 9: exit %d, %q", code, errLine)
	}
	if _, errLine, code = cliOut(t, "versions", "--admin", "http://127.0.0.1:1"); code == 0 || !strings.Contains(errLine, "cannot reach the admin API at http://127.0.0.1:1") {
		t.Fatalf("unreachable host: exit %d, %q", code, errLine)
	}

	// A restart serves the active version.
	if code := s.stop(); code != 0 {
		t.Fatalf("serve exited %d", code)
	}
	s = startServe(t, true, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", dataDir)
	if !strings.Contains(s.first, "serving version 1 from") {
		t.Errorf("banner after restart: %q", s.first)
	}
	if code, body := httpGet(t, s.url+"/"); code != 200 || !strings.Contains(body, "hello from edgehost") {
		t.Fatalf("after restart: %d %q", code, body)
	}
}

func TestServeRefusesOpenAdminWithoutToken(t *testing.T) {
	var out, errb bytes.Buffer
	code := cli(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--admin-addr", "0.0.0.0:0", "--data-dir", t.TempDir()}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "reachable from other machines and no token is set") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

// TestServePackage serves a package .tar.gz (Fastly CLI layout, under one
// folder) given as MODULE, with the admin API off.
func TestServePackage(t *testing.T) {
	tmp := t.TempDir()
	hello, err := guesttest.Build("examples/hello", tmp)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the fastest deflate: the race detector makes the default level take seconds per module
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		data []byte
	}{{"pkg/fastly.toml", []byte("name = \"pkg\"\n")}, {"pkg/bin/main.wasm", hello}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write(f.data)
	}
	tw.Close()
	zw.Close()
	pkg := filepath.Join(tmp, "pkg.tar.gz")
	if err := os.WriteFile(pkg, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, false, "--addr", "127.0.0.1:0", "--admin-addr", "", "--data-dir", filepath.Join(tmp, "data"), pkg)
	if code, body := httpGet(t, s.url+"/pkg"); code != 200 || !strings.Contains(body, "path: /pkg") {
		t.Fatalf("package: %d %q", code, body)
	}
}
