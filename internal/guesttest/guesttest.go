// Package guesttest builds guest fixtures for edgehost's tests: Go main
// packages of the repository built for GOOS=wasip1 GOARCH=wasm (with
// TinyGo too when it is on PATH), and tiny hand-made modules.
package guesttest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/edgehost/edgehost/internal/guestbuild"
)

// RepoRoot returns the repository's root: the nearest directory at or
// above the working directory whose go.mod declares the host module
// (github.com/edgehost/edgehost). The guest modules below it (abi,
// guestsdk, examples, testdata/guests) are modules of their own.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isHostModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the go.mod of module github.com/edgehost/edgehost is not found above the working directory")
		}
		dir = parent
	}
}

// isHostModule reports whether the go.mod at path declares the host
// module.
func isHostModule(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return f[1] == "github.com/edgehost/edgehost"
		}
	}
	return false
}

// Build compiles the main package at rel (relative to the repository
// root, e.g. "examples/hello") with Go's wasip1 target into outDir and
// returns the module bytes. Errors carry the compiler's output.
func Build(rel, outDir string) ([]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(outDir, filepath.Base(rel)+".wasm")
	if err := goWasm(root, "build", "-o", out, "./"+rel); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// Fixtures builds the main packages at rels (relative to the repository
// root) with Go's wasip1 target in one go command (those that import
// guestsdk/preinit with -buildmode=c-shared, one command each, as
// guestbuild builds them), into dir, and returns
// each module by the last element of its path ("examples/hello" ->
// "hello"). Errors carry the compiler's output.
func Fixtures(dir string, rels ...string) (map[string][]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "fixtures")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	// A package that imports guestsdk/preinit is built as a reactor, as
	// guestbuild builds it: one go command each (the go command builds
	// one c-shared package at a time), one for the rest.
	args := []string{"build", "-o", out + string(filepath.Separator)}
	plain := len(args)
	for _, rel := range rels {
		if !guestbuild.ImportsPreinit(filepath.Join(root, filepath.FromSlash(rel))) {
			args = append(args, "./"+rel)
			continue
		}
		o := filepath.Join(out, filepath.Base(rel))
		if err := goWasm(root, "build", "-buildmode=c-shared", "-o", o, "./"+rel); err != nil {
			return nil, err
		}
	}
	if len(args) > plain {
		if err := goWasm(root, args...); err != nil {
			return nil, err
		}
	}
	mods := make(map[string][]byte, len(rels))
	for _, rel := range rels {
		name := filepath.Base(rel)
		b, err := os.ReadFile(filepath.Join(out, name))
		if errors.Is(err, os.ErrNotExist) {
			b, err = os.ReadFile(filepath.Join(out, name+".wasm"))
		}
		if err != nil {
			return nil, err
		}
		mods[name] = b
	}
	return mods, nil
}

// Main is a test binary's TestMain body: it builds the fixtures at rels
// (as Fixtures) into a new temporary directory, hands the directory and
// the modules to set, runs the tests and removes the directory. It returns
// the exit code for os.Exit; a fixture that does not build is reported on
// stderr and fails the run.
func Main(m interface{ Run() int }, set func(dir string, guests map[string][]byte), rels ...string) int {
	dir, err := os.MkdirTemp("", "edgehost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	guests, err := Fixtures(dir, rels...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "building guest fixtures:", err)
		return 1
	}
	set(dir, guests)
	return m.Run()
}

// SharedCompileCache returns the compiled-code cache the test binaries
// share across packages and runs, or, when there is no user cache
// directory, fallback: a folder of CompileCacheDir named by a hash of the
// host module's go.sum. The engines key what they store by module
// content and CPU, and write entries atomically, so test binaries running
// at once may share it; but in a test binary wazero cannot read its own
// version (its cache folder is "wazero-dev"), so code compiled by one
// wazero must not meet another: a dependency change starts a new folder.
// Tests of the cache itself use a directory of their own.
func SharedCompileCache(fallback string) string {
	dir, err := CompileCacheDir()
	if err != nil {
		return fallback
	}
	root, err := RepoRoot()
	if err != nil {
		return fallback
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return fallback
	}
	h := sha256.Sum256(sum)
	return filepath.Join(dir, "deps-"+hex.EncodeToString(h[:6]))
}

// TestBinary compiles the tests of the package at rel with Go's wasip1
// target (go test -c) and returns the binary's path in outDir.
func TestBinary(rel, outDir string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(outDir, filepath.Base(rel)+".test.wasm")
	return out, goWasm(root, "test", "-c", "-o", out, "./"+rel)
}

// goWasm runs the go command in the repository's root dir for wasip1, in
// a workspace of the guest modules (written by guestWorkspace), so that
// one command builds packages of several of them with one build cache.
func goWasm(dir string, args ...string) error {
	work, err := guestWorkspace(dir)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWORK="+work)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, buf.String())
	}
	return nil
}

// guestWorkspace writes a go.work that joins the guest modules of the
// repository at root (the repository has none: see README, "TinyGo") into
// a directory of its own under the OS temporary directory, and returns its
// path. Concurrent callers write the same bytes; the rename is atomic.
func guestWorkspace(root string) (string, error) {
	var b strings.Builder
	b.WriteString("go 1.23\n\nuse (\n")
	for _, m := range []string{"abi", "guestsdk", "examples", "testdata/guests"} {
		fmt.Fprintf(&b, "\t%s\n", filepath.Join(root, filepath.FromSlash(m)))
	}
	b.WriteString(")\n")
	sum := sha256.Sum256([]byte(b.String()))
	dir := filepath.Join(os.TempDir(), "edgehost-test-work-"+hex.EncodeToString(sum[:6]))
	path := filepath.Join(dir, "go.work")
	if old, err := os.ReadFile(path); err == nil && string(old) == b.String() {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "go.work.*")
	if err != nil {
		return "", err
	}
	_, werr := tmp.WriteString(b.String())
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("guest workspace: %w", werr)
	}
	return path, nil
}

// Hand-made modules: each exports _start (no imports, so they need no
// host at all) and does one thing.

// TrapModule's _start executes `unreachable`: a Wasm trap.
func TrapModule() []byte { return module(nil, []byte{0x00}) }

// LoopModule's _start loops forever.
func LoopModule() []byte { return module(nil, []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}) }

// GrowModule has a 1-page memory and its _start grows it 16 pages at a
// time until memory.grow fails, then traps: it shows the memory cap.
func GrowModule() []byte {
	mem := []byte{0x01, 0x00, 0x01} // one memory, no max, min 1 page
	code := []byte{
		0x03, 0x40, // loop
		0x41, 0x10, 0x40, 0x00, // i32.const 16; memory.grow
		0x41, 0x7f, 0x47, // i32.const -1; i32.ne
		0x0d, 0x00, // br_if 0
		0x0b, // end
		0x00, // unreachable
	}
	return module(mem, code)
}

// NopModule's _start returns at once.
func NopModule() []byte { return module(nil, nil) }

// MemorylessHostcallModule has no memory; its _start calls
// fastly_http_req.body_downstream_get(0, 4), whose out-pointers then
// point into a memory that does not exist, and returns without
// responding.
func MemorylessHostcallModule() []byte {
	sec := func(id byte, content []byte) []byte {
		return append([]byte{id, byte(len(content))}, content...)
	}
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	imp := append([]byte{0x01}, name("fastly_http_req")...)
	imp = append(imp, name("body_downstream_get")...)
	imp = append(imp, 0x00, 0x01)                                        // a function of type 1
	body := []byte{0x00, 0x41, 0x00, 0x41, 0x04, 0x10, 0x00, 0x1a, 0x0b} // i32.const 0; i32.const 4; call 0; drop
	b := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	b = append(b, sec(1, []byte{0x02, 0x60, 0x00, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f})...) // () -> (); (i32, i32) -> i32
	b = append(b, sec(2, imp)...)
	b = append(b, sec(3, []byte{0x01, 0x00})...) // func 1: type 0
	b = append(b, sec(7, append([]byte{0x01, 0x06}, append([]byte("_start"), 0x00, 0x01)...))...)
	b = append(b, sec(10, append([]byte{0x01, byte(len(body))}, body...))...)
	return b
}

func module(memory, code []byte) []byte {
	sec := func(id byte, content []byte) []byte {
		return append([]byte{id, byte(len(content))}, content...)
	}
	body := append([]byte{0x00}, code...) // no locals
	body = append(body, 0x0b)
	b := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	b = append(b, sec(1, []byte{0x01, 0x60, 0x00, 0x00})...) // type: () -> ()
	b = append(b, sec(3, []byte{0x01, 0x00})...)             // func 0: type 0
	if memory != nil {
		b = append(b, sec(5, memory)...)
	}
	b = append(b, sec(7, append([]byte{0x01, 0x06}, append([]byte("_start"), 0x00, 0x00)...))...)
	b = append(b, sec(10, append([]byte{0x01, byte(len(body))}, body...))...)
	return b
}
