// Package guestbuild builds a folder holding a Go main package into a
// guest .wasm: with TinyGo when it is on PATH, else with Go's wasip1 target.
package guestbuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Toolchain names the compiler Build uses.
type Toolchain string

// Toolchains Build knows.
const (
	TinyGo Toolchain = "tinygo"
	Go     Toolchain = "go"
)

// Pick returns TinyGo when a tinygo binary is on PATH, else Go.
func Pick() Toolchain {
	if _, err := exec.LookPath("tinygo"); err == nil {
		return TinyGo
	}
	return Go
}

// Build compiles the main package in dir to out (a .wasm path) with tc.
// Errors: dir holds no Go files; the compiler failed (its output is in the
// error).
func Build(ctx context.Context, tc Toolchain, dir, out string) error {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(matches) == 0 {
		return fmt.Errorf("build %s: no Go files in the folder", dir)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	switch tc {
	case TinyGo:
		cmd = exec.CommandContext(ctx, "tinygo", "build", "-target=wasip1", "-o", absOut, ".")
	default:
		cmd = exec.CommandContext(ctx, "go", "build", "-o", absOut, ".")
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	}
	cmd.Dir = dir
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s with %s: %w\n%s", dir, tc, err, strings.TrimSpace(outBuf.String()))
	}
	return nil
}
