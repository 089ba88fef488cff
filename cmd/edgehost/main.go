// Command edgehost runs Compute-style WebAssembly guests: it serves
// downstream HTTP with one sandbox per request (serve), runs a guest once
// as a command (run), and builds guest folders (build).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/edgehost/edgehost/internal/engine"
)

// version is the edgehost release, set with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code. Errors
// are printed as one line to stderr.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(viceroyStyle(args))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var exit *exitCodeError
	if errors.As(err, &exit) {
		return exit.code
	}
	fmt.Fprintln(stderr, "edgehost:", err)
	return 1
}

// viceroyStyle turns a command line written for Viceroy, Fastly's local
// server, into a serve: Fastly's CLI runs its local server as
// `BIN -v -C /abs/fastly.toml --addr 127.0.0.1:PORT bin/main.wasm`, with
// no subcommand (README.md, "Fastly's CLI"). A first argument that is a
// flag other than help or --version, or a .wasm file, means serve.
func viceroyStyle(args []string) []string {
	if len(args) == 0 {
		return args
	}
	switch a := args[0]; {
	case a == "-h" || a == "--help" || a == "--version":
		return args
	case strings.HasPrefix(a, "-") || strings.HasSuffix(a, ".wasm"):
		return append([]string{"serve"}, args...)
	}
	return args
}

// exitCodeError ends the process with code without printing anything more
// (edgehost run passes a guest's exit code through).
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

func guestExitCode(err error) (int, bool) {
	var exit *engine.ExitError
	if errors.As(err, &exit) {
		return int(exit.Code), true
	}
	return 0, false
}
