package guestbuild

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/engine/wasmopt"
)

func TestParseToolchain(t *testing.T) {
	tests := []struct {
		in   string
		want Toolchain
		err  bool
	}{
		{"", Auto, false}, {"auto", Auto, false}, {"tinygo", TinyGo, false}, {"go", Go, false},
		{"TinyGo", "", true}, {"gcc", "", true},
	}
	for _, tc := range tests {
		got, err := ParseToolchain(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseToolchain(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestNewer(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1.26.0", "1.23.4", true},
		{"1.23", "1.23.4", false},
		{"1.23.4", "1.23.4", false},
		{"1.24rc1", "1.23.4", true},
		{"1.22", "1.23.4", false},
		{"2.0", "1.23.4", true},
		{"", "1.23.4", false},
		{"1.21", "", true},
	}
	for _, tc := range tests {
		if got := newer(tc.a, tc.b); got != tc.want {
			t.Errorf("newer(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestEnclosingWork finds the nearest go.work above a folder and its go
// line, as the go command does.
func TestEnclosingWork(t *testing.T) {
	root := t.TempDir()
	guest := filepath.Join(root, "mod", "guest")
	if err := os.MkdirAll(guest, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, _ := enclosingWork(guest); p != "" && strings.HasPrefix(p, root) {
		t.Fatalf("found %s before writing one", p)
	}
	work := filepath.Join(root, "go.work")
	if err := os.WriteFile(work, []byte("// comment\ngo 1.26.0\n\nuse ./mod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, v := enclosingWork(guest)
	if p != work || v != "1.26.0" {
		t.Errorf("enclosingWork = %q, %q; want %q, 1.26.0", p, v, work)
	}
}

// TestFindNamedTinyGoMissing: a $EDGEHOST_TINYGO that does not exist is
// an error for tinygo and for auto (it was asked for), never a silent Go.
func TestFindNamedTinyGoMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "tinygo")
	t.Setenv(TinyGoEnv, missing)
	for _, tc := range []Toolchain{TinyGo, Auto} {
		c, err := Find(context.Background(), tc)
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("Find(%s) = %v, %v; want an error naming %s", tc, c, err, missing)
		}
	}
	c, err := Find(context.Background(), Go)
	if err != nil || c.Toolchain != Go || !strings.HasPrefix(c.Version, "go") {
		t.Errorf("Find(go) = %+v, %v", c, err)
	}
}

// TestBuildNoGoFiles: a folder without Go files is an error naming it.
func TestBuildNoGoFiles(t *testing.T) {
	dir := t.TempDir()
	c := Compiler{Toolchain: Go, Path: "go", Version: "go"}
	err := c.Build(context.Background(), dir, filepath.Join(dir, "x.wasm"))
	if err == nil || !strings.Contains(err.Error(), "no Go files") {
		t.Fatalf("Build = %v", err)
	}
}

// TestMayUseTimers: a module whose name section cannot be read counts as
// one that may set a timer (it is built with TinyGo's scheduler).
func TestMayUseTimers(t *testing.T) {
	module := func(fn string) []byte {
		// custom section "name", subsection 1: one name, for index 0
		body := append([]byte{4}, "name"...)
		body = append(body, 1, byte(len(fn)+3), 1, 0, byte(len(fn)))
		body = append(body, fn...)
		return append([]byte("\x00asm\x01\x00\x00\x00\x00"), append([]byte{byte(len(body))}, body...)...)
	}
	tests := []struct {
		name string
		wasm []byte
		want bool
	}{
		{"not wasm", []byte("hello"), true},
		{"no name section", []byte("\x00asm\x01\x00\x00\x00"), true},
		{"truncated", module("f")[:14], true},
		{"names no timer", module("f"), false},
		{"names a timer", module("runtime.addTimer"), true},
	}
	for _, tc := range tests {
		if got := mayUseTimers(tc.wasm); got != tc.want {
			t.Errorf("%s: mayUseTimers = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestBuildPreinitGoGuest builds testdata/guests/hellopreinit (which
// imports guestsdk/preinit) and examples/hello (which does not) with Go:
// the first comes out a pre-initialized reactor, the second a command.
func TestBuildPreinitGoGuest(t *testing.T) {
	c, err := goCompiler(context.Background())
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		dir     string
		preinit bool
	}{
		{"../../testdata/guests/hellopreinit", true},
		{"../../examples/hello", false},
	} {
		if got := ImportsPreinit(tc.dir); got != tc.preinit {
			t.Fatalf("ImportsPreinit(%s) = %v", tc.dir, got)
		}
		out := filepath.Join(t.TempDir(), "out.wasm")
		if err := c.Build(context.Background(), tc.dir, out); err != nil {
			t.Fatal(err)
		}
		wasm, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if got := wasmopt.IsPreinit(wasm); got != tc.preinit {
			t.Errorf("%s: built module IsPreinit = %v, want %v", tc.dir, got, tc.preinit)
		}
	}
}
