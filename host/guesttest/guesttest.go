// Package guesttest builds guest fixtures for edgehost's tests: Go main
// packages of the repository built for GOOS=wasip1 GOARCH=wasm (with
// TinyGo too when it is on PATH), and tiny hand-made modules.
package guesttest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// RepoRoot returns the directory holding go.work, searching up from the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory")
		}
		dir = parent
	}
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
// root) with Go's wasip1 target in one go command, into dir, and returns
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
	args := []string{"build", "-o", out + string(filepath.Separator)}
	for _, rel := range rels {
		args = append(args, "./"+rel)
	}
	if err := goWasm(root, args...); err != nil {
		return nil, err
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

func goWasm(dir string, args ...string) error {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", args, err, buf.String())
	}
	return nil
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
