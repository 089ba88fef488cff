// Package engine is the small interface between edgehost's hostcalls and a
// WebAssembly runtime. Hostcalls are written once against Memory and Func;
// each engine adapter (wazero, wasmtime-go) binds them into its runtime.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// ValueType is a core Wasm value type of a hostcall parameter or result.
type ValueType byte

// The value types hostcalls use.
const (
	I32 ValueType = 'i'
	I64 ValueType = 'I'
	F32 ValueType = 'f'
	F64 ValueType = 'F'
)

// Signature is a function type as a string of ValueType letters for the
// parameters and for the results, e.g. Params "iiI", Results "i".
type Signature struct {
	Params  string
	Results string
}

func (s Signature) String() string { return "(" + s.Params + ")->(" + s.Results + ")" }

// Memory is a guest's linear memory. Every access is bounds-checked: out of
// range is reported with ok=false, never a panic.
type Memory interface {
	// Read returns a view of n bytes at offset; the view aliases guest
	// memory and is valid until the guest runs again.
	Read(offset, n uint32) ([]byte, bool)
	// Write copies b into memory at offset.
	Write(offset uint32, b []byte) bool
	// Size is the memory's current size in bytes.
	Size() uint32
}

// HostFunc is the Go implementation of one imported function. stack holds
// the parameters on entry (i32 zero-extended, i64 as is) and receives the
// results, as in wazero's api.GoModuleFunction. ctx is the context the
// sandbox runs with (it carries the per-request session).
type HostFunc func(ctx context.Context, mem Memory, stack []uint64)

// Import is one function import of a guest module.
type Import struct {
	Module, Name string
	Signature
}

func (i Import) String() string { return i.Module + "." + i.Name }

// Linker resolves a guest's function imports other than WASI: it returns
// the function to bind, or an error that fails the load (unknown module,
// wrong signature).
type Linker func(imp Import) (HostFunc, error)

// Config holds the per-module limits an engine enforces.
type Config struct {
	// MemoryLimitBytes caps a sandbox's linear memory; 0 means 128 MiB.
	MemoryLimitBytes uint64
	// CacheDir, when set, holds compiled code across restarts.
	CacheDir string
	// Tiered makes an engine that has a fast tier (wazero: its
	// interpreter) serve a module of at least TieredMinBytes that it has
	// not compiled before on that tier first, while its optimizing
	// compiler runs in the background; new sandboxes switch to the
	// optimized code once it is ready (README.md, "Engines"). Off, every
	// module is compiled optimized before Compile returns.
	Tiered bool
	// TieredMinBytes is the smallest module, in bytes, that Tiered
	// applies to; 0 applies it to every module.
	TieredMinBytes int
}

// The tiers a module's sandboxes run on (TierStatus.Tier).
const (
	// TierOptimized is the engine's optimizing compiler's code (wazero's
	// compiler, wasmtime's Cranelift).
	TierOptimized = "optimized"
	// TierInterpreter is wazero's interpreter: fast to make, slower to run.
	TierInterpreter = "interpreter"
)

// TierStatus says which code a module runs on.
type TierStatus struct {
	// Tier is the tier new sandboxes start on: TierInterpreter until the
	// background compile ends, then TierOptimized.
	Tier string
	// Compiling is true while the optimizing compile runs (or waits for
	// the engine's one background compile slot).
	Compiling bool
	// Runs counts the sandboxes started on each tier, by tier name.
	Runs map[string]uint64
	// SwitchedAfter is the time from Compile's start to the switch to
	// optimized code; 0 before it, or when there was none to make.
	SwitchedAfter time.Duration
	// Err is the background compile's failure: the module keeps serving
	// on its fast tier. Nil otherwise.
	Err error
}

// Tiered is a Module that started on a fast tier (Config.Tiered).
type Tiered interface {
	Module
	// TierStatus reports the module's tiers now.
	TierStatus() TierStatus
	// Optimized is closed when the background compile has ended, with
	// optimized code serving new sandboxes or with TierStatus().Err set,
	// or when the module was closed first.
	Optimized() <-chan struct{}
}

// Engine compiles guest modules.
type Engine interface {
	// Name is the engine's flag value ("wazero", "wasmtime").
	Name() string
	// Compile validates, compiles and links wasm. Errors: ErrInvalidModule
	// (wrapped) for bytes that are not a valid module; a link error naming
	// the import for an unknown module or a mistyped import.
	Compile(ctx context.Context, wasm []byte, link Linker) (Module, error)
	// Close releases the engine.
	Close(ctx context.Context) error
}

// Module is a compiled, linked guest, ready to instantiate.
type Module interface {
	// Run instantiates a fresh sandbox and runs its _start export to the
	// end. It returns nil when the guest returned or exited 0, an
	// *ExitError for a non-zero exit, ErrTimeout when ctx ended first, or
	// a trap error.
	Run(ctx context.Context, rc RunConfig) error
	// Close releases the compiled code.
	Close(ctx context.Context) error
}

// Trimmer is a Module that keeps, beside its compiled code, resources for
// its next sandboxes (wazero: reset instances and memory reservations,
// README.md "Engines") and can release them.
type Trimmer interface {
	Module
	// Trim releases what the module keeps for its next sandboxes and keeps
	// its compiled code: the next sandbox is made as the first one was.
	// Call it when no sandbox runs on the module (a version replaced and
	// drained whose module is kept for a re-activation).
	Trim(ctx context.Context)
}

// RunConfig is the WASI view of one sandbox.
type RunConfig struct {
	Args           []string
	Env            [][2]string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// ExitError is a guest's non-zero proc_exit.
type ExitError struct{ Code uint32 }

func (e *ExitError) Error() string { return fmt.Sprintf("guest exited with code %d", e.Code) }

// Errors returned by engines.
var (
	// ErrInvalidModule wraps a compile failure of bytes that are not a
	// valid Wasm module.
	ErrInvalidModule = errors.New("invalid wasm module")
	// ErrTimeout is returned by Run when the sandbox's context ended
	// (wall-clock limit or shutdown) before the guest did.
	ErrTimeout = errors.New("sandbox wall-clock limit reached")
	// ErrNoStart is returned by Compile for a module without a _start export.
	ErrNoStart = errors.New("module has no _start export")
)
