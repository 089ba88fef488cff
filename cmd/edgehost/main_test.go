package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// withEngine returns the command line cmd args... with --engine set to
// the engine guesttest.EngineEnv selects and --cache-dir to compileCache,
// so that every serve and run of the tests (in this process or another)
// compiles a given guest once.
func withEngine(cmd string, args ...string) []string {
	return append([]string{cmd, "--engine", guesttest.EngineName(), "--cache-dir", compileCache}, args...)
}

func TestRunPassesGuestTestExitCode(t *testing.T) {
	dir := t.TempDir()
	bin, err := guesttest.TestBinary("testdata/guests/guesttests", dir)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := guesttest.RepoRoot()
	manifest := filepath.Join(root, "testdata/guests/guesttests/fastly.toml")
	tests := []struct {
		run      string
		wantCode int
		wantOut  string
	}{
		{"TestPass|TestConfigStore|TestDownstreamRequest|TestEnv", 0, "PASS"},
		{"TestFail", 1, "this test fails on purpose"},
	}
	for _, tc := range tests {
		t.Run(tc.run, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), withEngine("run", "-C", manifest, bin, "-test.run", tc.run, "-test.v"), strings.NewReader(""), &out, &errb)
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, &out, &errb)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tc.wantOut, &out)
			}
		})
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "fastly.toml")
	os.WriteFile(bad, []byte("name = \"x\"\n[local_server.backends.origin]\nurl = \"http://127.0.0.1:1\"\nkeepalive_tiem = 3\n"), 0o644)
	notWasm := filepath.Join(t.TempDir(), "x.wasm")
	os.WriteFile(notWasm, []byte("not wasm"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bad config", []string{"serve", "-C", bad, notWasm}, `fastly.toml:4: unknown key "local_server.backends.origin.keepalive_tiem"`},
		{"missing module", []string{"serve", filepath.Join(dir, "nope.wasm")}, "nope.wasm"},
		{"invalid module", withEngine("serve", "--addr", "127.0.0.1:0", notWasm), "invalid wasm module"},
		{"unknown engine", []string{"run", "--engine", "v8", notWasm}, `--engine "v8"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, strings.NewReader(""), &out, &errb)
			if code == 0 {
				t.Fatal("exit code 0")
			}
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "edgehost: ") || !strings.Contains(last, tc.want) {
				t.Fatalf("last stderr line %q, want one line containing %q", last, tc.want)
			}
		})
	}
}

// TestServeFolderAndGracefulShutdown serves examples/proxy from its folder
// (built on the fly), then stops the server while a slow request is in
// flight: that request must still complete.
func TestServeFolderAndGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			time.Sleep(500 * time.Millisecond)
		}
		io.WriteString(w, "origin "+r.URL.Path)
	}))
	defer origin.Close()
	dir := t.TempDir()
	manifest := filepath.Join(dir, "fastly.toml")
	os.WriteFile(manifest, []byte(fmt.Sprintf("[local_server.backends.origin]\nurl = %q\n", origin.URL)), 0o644)
	root, _ := guesttest.RepoRoot()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var errb bytes.Buffer
	go func() {
		done <- run(ctx, withEngine("serve", "--addr", "127.0.0.1:0", "-C", manifest, filepath.Join(root, "examples/proxy")), strings.NewReader(""), pw, &errb)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no serving line: %v; stderr:\n%s", err, &errb)
	}
	go io.Copy(io.Discard, pr)
	url := regexp.MustCompile(`http://[0-9.:]+`).FindString(line)
	if url == "" {
		t.Fatalf("no URL in %q", line)
	}
	resp, err := http.Get(url + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "origin /fast" || resp.Header.Get("X-Edgehost-Proxy") != "1" {
		t.Fatalf("got %q %v", b, resp.Header)
	}

	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-started
	cancel()
	if got := <-slow; got != "origin /slow" {
		t.Fatalf("in-flight request during shutdown got %q", got)
	}
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d: %s", code, &errb)
	}
}

// TestServeEnv: edgehost serve gives every sandbox the manifest's
// [edgehost] guest environment, as edgehost run does (the guesttests
// guest's TestEnv checks run; the conformance suite's TestCommandRun
// compares the two).
func TestServeEnv(t *testing.T) {
	dir := t.TempDir()
	wasm, err := guesttest.Build("testdata/guests/abiconf", dir)
	if err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(dir, "abiconf.wasm")
	manifest := filepath.Join(dir, "fastly.toml")
	os.WriteFile(mod, wasm, 0o644)
	os.WriteFile(manifest, []byte("name = \"envcheck\"\n[edgehost]\npop = \"ENV\"\nregion = \"Env-Region\"\nhostname = \"h1\"\ncustomer_id = \"c1\"\ncache_generation = 9\n"), 0o644)
	want := "FASTLY_CACHE_GENERATION=9\nFASTLY_CUSTOMER_ID=c1\nFASTLY_HOSTNAME=h1\nFASTLY_IS_STAGING=0\nFASTLY_POP=ENV\n" +
		"FASTLY_REGION=Env-Region\nFASTLY_SERVICE_ID=envcheck\nFASTLY_SERVICE_VERSION=0\nFASTLY_TRACE_ID=set:true\n"

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var serr bytes.Buffer
	go func() {
		done <- run(ctx, withEngine("serve", "--addr", "127.0.0.1:0", "--admin-addr", "", "-C", manifest, mod), strings.NewReader(""), pw, &serr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no serving line: %v; stderr:\n%s", err, &serr)
	}
	go io.Copy(io.Discard, pr)
	url := regexp.MustCompile(`http://[0-9.:]+`).FindString(line)
	resp, err := http.Get(url + "/env")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := strings.TrimPrefix(string(b), "abi.init=0\n"); got != want {
		t.Errorf("served environment:\n%s\nwant:\n%s", got, want)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d: %s", code, &serr)
	}
}

// TestServeCacheDir: serve keeps the guest's compiled code in --cache-dir
// when given (and then not in the data dir), else in DATA_DIR/cache.
func TestServeCacheDir(t *testing.T) {
	tmp := t.TempDir()
	mod := filepath.Join(tmp, "nop.wasm")
	if err := os.WriteFile(mod, guesttest.NopModule(), 0o644); err != nil {
		t.Fatal(err)
	}
	// files counts the regular files under dir.
	files := func(dir string) int {
		n := 0
		filepath.WalkDir(dir, func(_ string, e os.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				n++
			}
			return nil
		})
		return n
	}
	flagDir, flagData, defaultData := filepath.Join(tmp, "flag-cache"), filepath.Join(tmp, "flag-data"), filepath.Join(tmp, "default-data")
	for _, tc := range []struct {
		name       string
		args       []string
		want, none string
	}{
		{"flag", []string{"--cache-dir", flagDir, "--data-dir", flagData}, flagDir, filepath.Join(flagData, "cache")},
		{"default", []string{"--data-dir", defaultData}, filepath.Join(defaultData, "cache"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--engine", guesttest.EngineName(), "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, tc.args...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pr, pw := io.Pipe()
			done := make(chan int, 1)
			var errb bytes.Buffer
			go func() {
				done <- run(ctx, append(args, mod), strings.NewReader(""), pw, &errb)
				pw.Close()
			}()
			// The serving line comes after the guest is compiled.
			if _, err := bufio.NewReader(pr).ReadString('\n'); err != nil {
				t.Fatalf("no serving line: %v; stderr:\n%s", err, &errb)
			}
			go io.Copy(io.Discard, pr)
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("serve exited %d: %s", code, &errb)
			}
			if files(tc.want) == 0 {
				t.Errorf("no compiled code in %s", tc.want)
			}
			if tc.none != "" && files(tc.none) != 0 {
				t.Errorf("compiled code in %s, want it only in --cache-dir", tc.none)
			}
		})
	}
}
