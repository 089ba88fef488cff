package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestFastlyCLIServe runs Fastly's CLI (the version testdata/fastlycli
// pins) as a developer would: `fastly compute serve --watch --viceroy-path
// edgehost` in a Go project folder. The CLI builds the project with its
// [scripts] build, runs edgehost as its local server, and after a source
// change rebuilds and starts edgehost again, which then serves the new
// build. The CLI's look-ups on the Internet go to a loopback proxy that
// refuses them (as offline), and must not stop it. It runs in parallel
// with the package's other parallel tests: its processes get their
// environment from their command, not from this one's.
func TestFastlyCLIServe(t *testing.T) {
	t.Parallel()
	fastly := guesttest.RequireFastlyCLI(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	// edgehost as the CLI's local server: this test binary, logging the
	// command line it is given (then adding --engine and --cache-dir, as
	// withEngine).
	argv := filepath.Join(tmp, "argv.log")
	shim := filepath.Join(tmp, "edgehost")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$*\" >> '%s'\nif [ \"$1\" = --version ]; then %s=1 exec '%s' --version; fi\n%s=1 exec '%s' \"$@\" --engine %s --cache-dir '%s'\n",
		argv, cliUnderTestEnv, self, cliUnderTestEnv, self, guesttest.EngineName(), compileCache)
	if err := os.WriteFile(shim, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	// The proxy every look-up of the CLI goes to: it answers 502.
	var mu sync.Mutex
	var lookups []string
	proxy := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		lookups = append(lookups, r.Method+" "+r.Host)
		mu.Unlock()
		http.Error(w, "offline", http.StatusBadGateway)
	})}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go proxy.Serve(pl)
	defer proxy.Close()

	project := filepath.Join(tmp, "project")
	os.Mkdir(project, 0o755)
	writeGuestModule(t, project, "body one")
	// The project's build: TinyGo when there is one (quickTinyGo), as
	// Fastly's Go starter kits do, else Go's wasip1 port.
	build := "build = \"go build -o bin/main.wasm .\"\nenv_vars = [\"GOOS=wasip1\", \"GOARCH=wasm\"]\n"
	path := os.Getenv("PATH")
	if c, ok := quickTinyGo(); ok {
		// TinyGo keeps its compiled packages (and the shared wrapper its
		// install) under the user's cache directory, as the go builds
		// below keep GOCACHE: not under the CLI's new HOME, where every
		// run would start cold.
		userCache, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(tmp, "tinygo-bin")
		os.Mkdir(bin, 0o755)
		if err := os.WriteFile(filepath.Join(bin, "tinygo"), []byte(fmt.Sprintf("#!/bin/sh\nXDG_CACHE_HOME='%s' exec '%s' \"$@\"\n", userCache, c.Path)), 0o755); err != nil {
			t.Fatal(err)
		}
		path = bin + string(os.PathListSeparator) + path
		build = "build = \"tinygo build -target=wasip1 -no-debug -o bin/main.wasm .\"\n"
	}
	manifest := "manifest_version = 3\nname = \"cliproject\"\nlanguage = \"go\"\n\n[scripts]\n" + build
	if err := os.WriteFile(filepath.Join(project, "fastly.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)

	goEnv := map[string]string{}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		out, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatal(err)
		}
		goEnv[k] = strings.TrimSpace(string(out))
	}
	home := filepath.Join(tmp, "home")
	os.Mkdir(home, 0o755)
	cmd := exec.Command(fastly, "compute", "serve", "--verbose", "--non-interactive", "--watch",
		"--addr", addr, "--viceroy-path", shim, "--viceroy-args=--admin-addr=")
	cmd.Dir = project
	cmd.Env = append(os.Environ(), "PATH="+path, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"XDG_DATA_HOME="+filepath.Join(home, ".local/share"),
		"HTTPS_PROXY=http://"+pl.Addr().String(), "HTTP_PROXY=http://"+pl.Addr().String(), "NO_PROXY=",
		"GOCACHE="+goEnv["GOCACHE"], "GOMODCACHE="+goEnv["GOMODCACHE"], "GOPATH="+goEnv["GOPATH"])
	out := &guesttest.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// The CLI and the local server it started are one process group.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("fastly compute serve output:\n%s", out)
		}
	}()

	url := "http://" + addr + "/"
	answers := func(want string) func() bool {
		return func() bool {
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("fastly compute serve exited: %v\n%s", err, out)
			default:
			}
			resp, err := http.Get(url)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return err == nil && string(b) == want
		}
	}
	waitFor(t, 4*time.Minute, "edgehost under the CLI answering", answers("body one\n"))

	log, _ := os.ReadFile(argv)
	wantServe := fmt.Sprintf("-v -C %s --addr %s ./bin/main.wasm --admin-addr=", filepath.Join(project, "fastly.toml"), addr)
	for _, want := range []string{"--version", wantServe} {
		if !strings.Contains("\n"+string(log), "\n"+want+"\n") {
			t.Errorf("the CLI did not run edgehost with %q; it ran:\n%s", want, log)
		}
	}
	if !strings.Contains(out.String(), "Viceroy version: edgehost ") {
		t.Errorf("the CLI did not report edgehost's version:\n%s", out)
	}

	// --watch through the CLI: it rebuilds and restarts edgehost.
	writeGuestMain(t, project, "body two")
	waitFor(t, 4*time.Minute, "the rebuilt project served", answers("body two\n"))
	mu.Lock()
	t.Logf("the CLI's look-ups (refused by the loopback proxy): %v", lookups)
	mu.Unlock()
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
