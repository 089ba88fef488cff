// Package guestbuild builds a folder holding a Go main package into a
// guest .wasm, with TinyGo or with Go's wasip1 target (README.md,
// "Guests").
package guestbuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Toolchain names a compiler choice, as the --toolchain flag spells it.
type Toolchain string

// Toolchains Find knows.
const (
	// Auto is TinyGo when one is found ($EDGEHOST_TINYGO, else tinygo on
	// PATH), else Go.
	Auto   Toolchain = "auto"
	TinyGo Toolchain = "tinygo"
	Go     Toolchain = "go"
)

// TinyGoEnv names the environment variable that points at a tinygo
// command that is not on PATH (a path, relative to the working directory,
// or a command name).
const TinyGoEnv = "EDGEHOST_TINYGO"

// TinyGoFlags are the options of a TinyGo release build: no DWARF (a
// smaller module, faster to compile and instantiate) and LLVM's -O2 (speed
// over size; TinyGo's default is -Oz). Build adds TinyGoNoScheduler when
// the guest allows it.
var TinyGoFlags = []string{"-target=wasip1", "-no-debug", "-opt=2"}

// TinyGoNoScheduler is the flag Build tries first for TinyGo: a guest
// that starts no goroutine and sets no timer runs the same without
// TinyGo's scheduler, and starts several times faster (no 64 KiB
// goroutine stack to allocate in its small initial heap, no asyncify
// instrumentation; README.md, "TinyGo").
const TinyGoNoScheduler = "-scheduler=none"

// ParseToolchain checks a --toolchain value: "auto" (or ""), "tinygo" or
// "go". Errors name the value.
func ParseToolchain(s string) (Toolchain, error) {
	switch tc := Toolchain(s); tc {
	case "", Auto:
		return Auto, nil
	case TinyGo, Go:
		return tc, nil
	}
	return "", fmt.Errorf("--toolchain %q: want auto, tinygo or go", s)
}

// Compiler is a toolchain found on this machine.
type Compiler struct {
	// Toolchain is TinyGo or Go.
	Toolchain Toolchain
	// Path is the absolute path of the tinygo or go command.
	Path string
	// Version is what the compiler reports, e.g. "tinygo 0.33.0 (go
	// 1.23.4)" or "go1.26.0".
	Version string

	// goVersion is the Go release TinyGo compiles against ("1.23.4").
	goVersion string
}

// String returns e.g. "tinygo 0.33.0 (go 1.23.4)".
func (c Compiler) String() string { return c.Version }

// Find returns the compiler for choice. TinyGo is $EDGEHOST_TINYGO when
// set, else tinygo on PATH; Go is go on PATH. Auto is TinyGo when one is
// found, else Go. Errors: the chosen toolchain (or a set $EDGEHOST_TINYGO)
// is not found or does not answer `version`; an unknown choice.
func Find(ctx context.Context, choice Toolchain) (Compiler, error) {
	switch choice {
	case "", Auto:
		p, err := tinygoPath()
		switch {
		case err == nil:
			return tinygoCompiler(ctx, p)
		case os.Getenv(TinyGoEnv) != "":
			return Compiler{}, err // asked for explicitly
		}
		return goCompiler(ctx)
	case TinyGo:
		p, err := tinygoPath()
		if err != nil {
			return Compiler{}, err
		}
		return tinygoCompiler(ctx, p)
	case Go:
		return goCompiler(ctx)
	}
	return Compiler{}, fmt.Errorf("toolchain %q: want auto, tinygo or go", choice)
}

func tinygoPath() (string, error) {
	name, from := "tinygo", "on PATH"
	if env := os.Getenv(TinyGoEnv); env != "" {
		name, from = env, "($"+TinyGoEnv+")"
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("tinygo: %s %s: %w", name, from, err)
	}
	return filepath.Abs(p)
}

// TinyGoAt returns the TinyGo compiler at path (a command name looked up
// on PATH, or a path). Errors: not found, or it does not answer `version`.
func TinyGoAt(ctx context.Context, path string) (Compiler, error) {
	p, err := exec.LookPath(path)
	if err != nil {
		return Compiler{}, fmt.Errorf("tinygo: %w", err)
	}
	if p, err = filepath.Abs(p); err != nil {
		return Compiler{}, err
	}
	return tinygoCompiler(ctx, p)
}

func tinygoCompiler(ctx context.Context, path string) (Compiler, error) {
	out, err := exec.CommandContext(ctx, path, "version").CombinedOutput()
	if err != nil {
		return Compiler{}, fmt.Errorf("%s version: %w\n%s", path, err, bytes.TrimSpace(out))
	}
	// "tinygo version 0.33.0 linux/amd64 (using go version go1.23.4 and LLVM version 16.0.6)"
	f := strings.Fields(string(out))
	c := Compiler{Toolchain: TinyGo, Path: path, Version: strings.TrimSpace(string(out))}
	if len(f) >= 3 && f[0] == "tinygo" && f[1] == "version" {
		c.Version = "tinygo " + f[2]
	}
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "version" && strings.HasPrefix(f[i+1], "go1") {
			c.goVersion = strings.TrimPrefix(f[i+1], "go")
			c.Version += " (go " + c.goVersion + ")"
		}
	}
	return c, nil
}

func goCompiler(ctx context.Context) (Compiler, error) {
	p, err := exec.LookPath("go")
	if err != nil {
		return Compiler{}, fmt.Errorf("go: %w", err)
	}
	if p, err = filepath.Abs(p); err != nil {
		return Compiler{}, err
	}
	out, err := exec.CommandContext(ctx, p, "env", "GOVERSION").Output()
	if err != nil {
		return Compiler{}, fmt.Errorf("%s env GOVERSION: %w", p, err)
	}
	return Compiler{Toolchain: Go, Path: p, Version: strings.TrimSpace(string(out))}, nil
}

// Args returns the compiler's command line (after the command) that
// builds the package in the working directory to out; for TinyGo, the
// first one Build tries (with TinyGoNoScheduler). For Go, preinit
// (the package imports PreinitPackage: ImportsPreinit) adds
// -buildmode=c-shared, which makes the WASI reactor a pre-initialized
// guest is.
func (c Compiler) Args(out string, preinit bool) []string {
	if c.Toolchain == TinyGo {
		return c.tinygoArgs(out, true)
	}
	if preinit {
		return []string{"build", "-buildmode=c-shared", "-o", out, "."}
	}
	return []string{"build", "-o", out, "."}
}

// PreinitPackage is the import path of the guest package that makes a Go
// guest pre-initialized (README.md, "Pre-initialized Go guests").
const PreinitPackage = "github.com/edgehost/edgehost/guestsdk/preinit"

// ImportsPreinit reports whether a non-test Go file of the folder dir
// imports PreinitPackage. Files that do not parse are skipped (the
// compiler reports them).
func ImportsPreinit(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	fset := token.NewFileSet()
	for _, m := range matches {
		if strings.HasSuffix(m, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, m, nil, parser.ImportsOnly)
		if err != nil {
			continue
		}
		for _, imp := range f.Imports {
			if p, err := strconv.Unquote(imp.Path.Value); err == nil && p == PreinitPackage {
				return true
			}
		}
	}
	return false
}

func (c Compiler) tinygoArgs(out string, noScheduler bool) []string {
	args := append([]string{"build"}, TinyGoFlags...)
	if noScheduler {
		args = append(args, TinyGoNoScheduler)
	}
	return append(args, "-o", out, ".")
}

// Build compiles the main package in dir to out (a .wasm path). With Go,
// a package that imports PreinitPackage is built with -buildmode=c-shared
// (Args). With
// TinyGo it first builds with TinyGoNoScheduler, and builds again with
// TinyGo's default scheduler when that fails (the guest starts a
// goroutine, which TinyGo refuses to compile without a scheduler) or when
// the module can set a timer (its name section names one of
// timerFunctions, or it has none), whose wake-up only the scheduler
// delivers: a guest then behaves as it would under the default scheduler.
// TinyGo runs with GOWORK=off when the go.work above dir names a newer Go than
// the one TinyGo compiles against (which would stop it; each guest module
// then builds on its own go.mod), unless GOWORK is set in the environment.
// Errors: dir holds no Go files; the compiler failed (its output is in the
// error).
func (c Compiler) Build(ctx context.Context, dir, out string) error {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(matches) == 0 {
		return fmt.Errorf("build %s: no Go files in the folder", dir)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if c.Toolchain != TinyGo {
		return c.run(ctx, dir, c.Args(absOut, ImportsPreinit(dir)))
	}
	if err := c.run(ctx, dir, c.tinygoArgs(absOut, true)); err == nil {
		if wasm, err := os.ReadFile(absOut); err == nil && !mayUseTimers(wasm) {
			return nil
		}
	}
	return c.run(ctx, dir, c.tinygoArgs(absOut, false))
}

// run runs the compiler with args in dir.
func (c Compiler) run(ctx context.Context, dir string, args []string) error {
	cmd := exec.CommandContext(ctx, c.Path, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	// When ctx ends, stop waiting for output from what the compiler
	// started (a wrapper's linker) soon after the compiler is killed.
	cmd.WaitDelay = 5 * time.Second
	switch c.Toolchain {
	case TinyGo:
		if _, set := os.LookupEnv("GOWORK"); !set {
			if work, v := enclosingWork(dir); work != "" && newer(v, c.goVersion) {
				cmd.Env = append(cmd.Env, "GOWORK=off")
			}
		}
	default:
		cmd.Env = append(cmd.Env, "GOOS=wasip1", "GOARCH=wasm")
	}
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s with %s: %w\n%s", dir, c, err, strings.TrimSpace(outBuf.String()))
	}
	return nil
}

// enclosingWork returns the go.work file the go command would use for dir
// (the nearest one in dir or above) and its go line, or "" when none.
func enclosingWork(dir string) (path, goVersion string) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", ""
	}
	for {
		p := filepath.Join(d, "go.work")
		if b, err := os.ReadFile(p); err == nil {
			return p, goLine(b)
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", ""
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", ""
		}
		d = parent
	}
}

// goLine returns the version of a go.mod or go.work file's go directive.
func goLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && f[0] == "go" {
			return f[1]
		}
	}
	return ""
}

// newer reports whether Go version a ("1.26.0") is newer than b
// ("1.23.4"). An unknown b (TinyGo did not say) counts as older than any
// a that is given.
func newer(a, b string) bool {
	if a == "" {
		return false
	}
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < 3; i++ {
		x, y := part(pa, i), part(pb, i)
		if x != y {
			return x > y
		}
	}
	return false
}

func part(p []string, i int) int {
	if i >= len(p) {
		return 0
	}
	s := p[i]
	end := 0
	for end < len(s) && '0' <= s[end] && s[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(s[:end]) // "26rc1" is 26
	return n
}
