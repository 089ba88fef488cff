package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guestbuild"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// guestSource is a guest answering "<body>\n" on every path but /slow,
// which first waits for the static backend "origin" and then answers
// "<body> after origin".
const guestSource = `package main

import (
	"context"
	"io"

	"github.com/edgehost/edgehost/guestsdk"
)

func main() {
	guestsdk.Serve(guestsdk.HandlerFunc(func(ctx context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
		if r.URL.Path == "/slow" {
			resp, err := r.Send(ctx, "origin")
			if err != nil {
				w.WriteHeader(502)
				io.WriteString(w, err.Error())
				return
			}
			io.Copy(io.Discard, resp.Body)
			w.WriteHeader(200)
			io.WriteString(w, %q + " after origin")
			return
		}
		w.WriteHeader(200)
		io.WriteString(w, %q + "\n")
	}))
}
`

// writeGuestModule writes a guest module of its own into dir (go.mod
// requiring the repository's guestsdk through replace lines, as README.md
// "In your own module" shows) answering body, and returns dir.
func writeGuestModule(t *testing.T, dir, body string) string {
	t.Helper()
	root, err := guesttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	gomod := fmt.Sprintf("module example.com/watched\n\ngo 1.23\n\nrequire (\n\tgithub.com/edgehost/edgehost/abi v0.0.0 // indirect\n\tgithub.com/edgehost/edgehost/guestsdk v0.0.0\n)\n\n"+
		"replace (\n\tgithub.com/edgehost/edgehost/abi => %s\n\tgithub.com/edgehost/edgehost/guestsdk => %s\n)\n",
		filepath.Join(root, "abi"), filepath.Join(root, "guestsdk"))
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	writeGuestMain(t, dir, body)
	return dir
}

func writeGuestMain(t *testing.T, dir, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(fmt.Sprintf(guestSource, body, body)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// quickTinyGo returns the TinyGo guesttest.TinyGo finds, if any. The
// watch, Fastly CLI and status page tests build their guests with it when
// there is one (with Go otherwise): a TinyGo module is a tenth the size of
// a Go one and compiles in a fraction of the time, which saves minutes
// under -race, where wazero's compiler runs instrumented.
func quickTinyGo() (guestbuild.Compiler, bool) {
	c, err := guesttest.TinyGo(context.Background())
	return c, err == nil
}

// served is an edgehost serve started by startLogged.
type served struct {
	url            string
	stdout, stderr *guesttest.LogBuffer
	done           chan int
}

// startLogged runs the edgehost command line args (a serve) until the
// test ends and waits for its "serving … on URL" line.
func startLogged(t *testing.T, args []string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{stdout: &guesttest.LogBuffer{}, stderr: &guesttest.LogBuffer{}, done: make(chan int, 1)}
	go func() { s.done <- run(ctx, args, strings.NewReader(""), s.stdout, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	s.waitServing(t)
	return s
}

// startLoggedProc is startLogged with the command line in a child process
// (this test binary as the edgehost command, see edgehostShim) whose
// environment adds env: a test that needs an environment of its own then
// leaves this process's alone, and may run in parallel. Cleanup stops it
// with SIGTERM, as a user would.
func startLoggedProc(t *testing.T, env []string, args []string) *served {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	s := &served{stdout: &guesttest.LogBuffer{}, stderr: &guesttest.LogBuffer{}, done: make(chan int, 1)}
	cmd := exec.Command(self, args...)
	cmd.Env = append(append(os.Environ(), cliUnderTestEnv+"=1"), env...)
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		s.done <- cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
			cmd.Process.Kill()
			<-s.done
		}
	})
	s.waitServing(t)
	return s
}

// waitServing waits for serve's "serving … on URL" line and sets s.url.
func (s *served) waitServing(t *testing.T) {
	t.Helper()
	re := regexp.MustCompile(`serving .* on (http://[0-9.:]+)`)
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			s.url = m[1]
			return
		}
		select {
		case code := <-s.done:
			t.Fatalf("serve exited %d:\n%s\n%s", code, s.stdout, s.stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving line:\n%s\n%s", s.stdout, s.stderr)
		}
	}
}

func getBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls until cond holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeWatch: serve --watch rebuilds a guest folder when its source
// changes and serves the new build, a request in flight during the swap
// finishes on the old build, and a build that fails is printed in full
// while the previous build keeps serving. It stays sequential: the
// request in flight during a rebuild must not outlast the sandbox's 60 s
// wall-clock limit, which a rebuild beside the parallel tests' TinyGo
// builds can.
func TestServeWatch(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		io.WriteString(w, "origin")
	}))
	defer origin.Close()
	defer close(release)

	dir := writeGuestModule(t, t.TempDir(), "body one")
	os.WriteFile(filepath.Join(dir, "fastly.toml"), []byte(fmt.Sprintf("[local_server.backends.origin]\nurl = %q\nfirst_byte_timeout_ms = 600000\n", origin.URL)), 0o644)
	toolchain := "go"
	if c, ok := quickTinyGo(); ok {
		toolchain = "tinygo"
		t.Setenv(guestbuild.TinyGoEnv, c.Path)
	}
	s := startLogged(t, withEngine("serve", "--addr", "127.0.0.1:0", "--admin-addr", "", "--toolchain", toolchain, "--watch", dir))
	defer func() {
		if t.Failed() {
			t.Logf("serve's stdout:\n%s\nstderr:\n%s", s.stdout, s.stderr)
		}
	}()
	if got := getBody(t, s.url+"/"); got != "body one\n" {
		t.Fatalf("first build answers %q", got)
	}

	// A request in flight on the first build.
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(s.url + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-started

	writeGuestMain(t, dir, "body two")
	waitFor(t, 5*time.Minute, "the rebuilt guest", func() bool { return getBody(t, s.url+"/") == "body two\n" })
	if !strings.Contains(s.stdout.String(), "now serving it") {
		t.Errorf("no rebuilt line on stdout:\n%s", s.stdout)
	}
	release <- struct{}{}
	if got := <-slow; got != "body one after origin" {
		t.Errorf("request in flight during the swap got %q, want the old build's answer", got)
	}

	// A broken build: printed in full, the previous build keeps serving.
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Minute, "the build error", func() bool { return strings.Contains(s.stderr.String(), "still serving the previous build") })
	if e := s.stderr.String(); !strings.Contains(e, "main.go:3:15: undefined: undefinedThing") || !strings.Contains(e, "with "+toolchain) {
		t.Errorf("the build error is not printed in full:\n%s", e)
	}
	if got := getBody(t, s.url+"/"); got != "body two\n" {
		t.Errorf("after a failed build the server answers %q, want the previous build's", got)
	}

	// Fixed again: served.
	writeGuestMain(t, dir, "body three")
	waitFor(t, 5*time.Minute, "the fixed guest", func() bool { return getBody(t, s.url+"/") == "body three\n" })
}
