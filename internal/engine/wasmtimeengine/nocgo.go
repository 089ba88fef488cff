//go:build !cgo

package wasmtimeengine

import (
	"context"
	"errors"

	"github.com/edgehost/edgehost/internal/engine"
)

// Available reports whether this binary includes the wasmtime engine: it
// needs cgo (a C compiler when edgehost is built).
const Available = false

// errNoCgo is returned by every call of a binary built without cgo.
var errNoCgo = errors.New("this edgehost was built without cgo, so it has no wasmtime engine; rebuild with a C compiler (gcc) installed, or use --engine wazero")

// Engine stands in for the wasmtime engine in a binary built without cgo.
type Engine struct{}

// New returns an error: the wasmtime engine needs cgo.
func New(engine.Config) (*Engine, error) { return nil, errNoCgo }

// Version returns "" without cgo.
func Version() string { return "" }

// Name returns "wasmtime".
func (*Engine) Name() string { return "wasmtime" }

// Compile returns an error: the wasmtime engine needs cgo.
func (*Engine) Compile(context.Context, []byte, engine.Linker) (engine.Module, error) {
	return nil, errNoCgo
}

// Close does nothing.
func (*Engine) Close(context.Context) error { return nil }
