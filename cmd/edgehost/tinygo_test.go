package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guestbuild"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// cliUnderTestEnv makes this test binary run the edgehost command line
// instead of its tests (TestMain).
const cliUnderTestEnv = "EDGEHOST_TEST_RUN_CLI"

// edgehostShim writes an `edgehost` command into a new folder that runs
// this binary as the edgehost command line, with --engine set after the
// subcommand to the engine guesttest.EngineEnv selects (and --cache-dir
// to compileCache, as withEngine), and returns the folder (to put first
// on PATH).
func edgehostShim(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\nsub=$1\nshift\n%s=1 exec '%s' \"$sub\" --engine %s --cache-dir '%s' \"$@\"\n", cliUnderTestEnv, self, guesttest.EngineName(), compileCache)
	if err := os.WriteFile(filepath.Join(dir, "edgehost"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTinyGoTestsRunOnEdgehost runs the abi and guestsdk packages' own
// tests compiled by TinyGo with edgehost as the runner (the target file
// guestsdk/edgehost.json: wasip1 with "emulator": "edgehost run {}"), and
// a guest test package with a failing test, which must fail the run.
// The three are independent TinyGo builds and runs: they run in
// parallel, beside the package's other parallel tests (after its
// sequential ones).
func TestTinyGoTestsRunOnEdgehost(t *testing.T) {
	t.Parallel()
	tiny := guesttest.RequireTinyGo(t)
	root, err := guesttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(root, "guestsdk", "edgehost.json")
	path := edgehostShim(t) + string(os.PathListSeparator) + os.Getenv("PATH")
	tests := []struct {
		dir, pkg string
		args     []string
		pass     bool
		want     []string
	}{
		{"abi", ".", nil, true, []string{"ok  \tgithub.com/edgehost/edgehost/abi"}},
		{"guestsdk", ".", nil, true, []string{"--- PASS: TestBindingsAnswerBadInput", "--- PASS: TestDynamicBackendReadBack", "ok  \tgithub.com/edgehost/edgehost/guestsdk"}},
		// Its fastly.toml (found in the package folder, where the test
		// runs) holds the config store TestConfigStore reads.
		{"testdata/guests", "./guesttests", nil, false, []string{"--- PASS: TestPass", "--- PASS: TestConfigStore", "this test fails on purpose", "--- FAIL: TestFail", "FAIL\tgithub.com/edgehost/edgehost/testdata/guests/guesttests"}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, tiny.Path, append([]string{"test", "-target=" + target, "-v", tc.pkg}, tc.args...)...)
			cmd.Dir = filepath.Join(root, tc.dir)
			// Each guest module builds on its own go.mod; GOWORK=off keeps
			// a developer's go.work (naming Go 1.26) out of TinyGo's way.
			cmd.Env = append(os.Environ(), "PATH="+path, "GOWORK=off")
			out, err := cmd.CombinedOutput()
			if tc.pass && err != nil {
				t.Fatalf("tinygo test failed: %v\n%s", err, out)
			}
			if !tc.pass {
				if _, ok := err.(*exec.ExitError); !ok {
					t.Fatalf("tinygo test with a failing test: err %v, want a non-zero exit\n%s", err, out)
				}
			}
			for _, w := range tc.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// userModule writes a guest module of its own outside the repository, as
// a user would: examples/hello's main.go and a go.mod that requires
// guestsdk, replaced by the repository's copy.
func userModule(t *testing.T) string {
	t.Helper()
	root, err := guesttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "examples", "hello", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := fmt.Sprintf(`module example.com/myguest

go 1.23

require (
	github.com/edgehost/edgehost/abi v0.0.0 // indirect
	github.com/edgehost/edgehost/guestsdk v0.0.0
)

replace (
	github.com/edgehost/edgehost/abi => %s
	github.com/edgehost/edgehost/guestsdk => %s
)
`, filepath.Join(root, "abi"), filepath.Join(root, "guestsdk"))
	for name, b := range map[string][]byte{"go.mod": []byte(gomod), "main.go": src} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestServeUserModuleWithTinyGo serves a user's own guest module from its
// folder: with $EDGEHOST_TINYGO set, --toolchain auto builds it with
// TinyGo and the log says so. serve runs in a child process with that
// environment, in parallel with the other parallel tests.
func TestServeUserModuleWithTinyGo(t *testing.T) {
	t.Parallel()
	tiny := guesttest.RequireTinyGo(t)
	dir := userModule(t)
	s := startLoggedProc(t, []string{guestbuild.TinyGoEnv + "=" + tiny.Path}, withEngine("serve", "--addr", "127.0.0.1:0", "--admin-addr", "", dir))
	logs := s.stderr
	code, body := httpGet(t, s.url+"/from/tinygo")
	if code != 200 || !strings.Contains(body, "path: /from/tinygo") {
		t.Fatalf("GET: %d %q\nlogs:\n%s", code, body, logs)
	}
	if l := logs.String(); !strings.Contains(l, "toolchain=tinygo") || !strings.Contains(l, "tinygo 0.") {
		t.Errorf("the log does not say TinyGo built the guest:\n%s", l)
	}
}

// TestBuildToolchainFlag builds a guest folder of the repository (a guest
// module of its own, inside the host module's tree) with
// --toolchain tinygo and go: each says which compiler it used and writes a
// Wasm module; TinyGo's is the smaller. An unknown toolchain, or a tinygo
// that is not there, is a one-line error.
func TestBuildToolchainFlag(t *testing.T) {
	tiny := guesttest.RequireTinyGo(t)
	root, err := guesttest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "testdata", "guests", "fastlystyle")
	out := t.TempDir()
	sizes := map[string]int{}
	for _, tc := range []struct{ toolchain, env, want string }{
		{"tinygo", tiny.Path, "with tinygo 0."},
		{"go", tiny.Path, "with go1."},
	} {
		t.Run(tc.toolchain, func(t *testing.T) {
			t.Setenv(guestbuild.TinyGoEnv, tc.env)
			wasm := filepath.Join(out, tc.toolchain+".wasm")
			stdout, errLine, code := cliOut(t, "build", "--toolchain", tc.toolchain, "-o", wasm, dir)
			if code != 0 || !strings.Contains(stdout, tc.want) {
				t.Fatalf("exit %d, stdout %q (want %q), stderr %q", code, stdout, tc.want, errLine)
			}
			b, err := os.ReadFile(wasm)
			if err != nil || !bytes.HasPrefix(b, []byte("\x00asm")) {
				t.Fatalf("%s is not a Wasm module: %v", wasm, err)
			}
			sizes[tc.toolchain] = len(b)
		})
	}
	if sizes["tinygo"] == 0 || sizes["tinygo"] >= sizes["go"] {
		t.Errorf("module sizes %v: want TinyGo's smaller than Go's", sizes)
	}
	for _, tc := range []struct{ toolchain, env, want string }{
		{"gcc", "", `--toolchain "gcc": want auto, tinygo or go`},
		{"tinygo", filepath.Join(out, "no-tinygo"), "no-tinygo ($EDGEHOST_TINYGO)"},
		{"auto", filepath.Join(out, "no-tinygo"), "no-tinygo ($EDGEHOST_TINYGO)"},
	} {
		t.Run("error "+tc.toolchain, func(t *testing.T) {
			t.Setenv(guestbuild.TinyGoEnv, tc.env)
			_, errLine, code := cliOut(t, "build", "--toolchain", tc.toolchain, "-o", filepath.Join(out, "x.wasm"), dir)
			if code == 0 || !strings.HasPrefix(errLine, "edgehost: ") || !strings.Contains(errLine, tc.want) {
				t.Fatalf("exit %d, stderr %q; want an error containing %q", code, errLine, tc.want)
			}
		})
	}
}
