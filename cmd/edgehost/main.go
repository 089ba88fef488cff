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

	"github.com/edgehost/edgehost/host/engine"
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
	root.SetArgs(args)
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
