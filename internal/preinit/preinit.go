// Package preinit pre-initializes guests at deploy time: for a module
// that is a pre-initialized guest (wasmopt.IsPreinit: a WASI reactor
// exporting _initialize and edgehost_serve, such as a Go program built
// with -buildmode=c-shared and guestsdk/preinit), it runs _initialize once
// on wazero's interpreter and turns the state it leaves (linear memory
// and globals) into a WASI command that starts there
// (wasmopt.Snapshot). Every engine then runs that command as it runs any
// other, so a fresh sandbox skips the runtime's start-up and the package
// initializers (abi/README.md, "Pre-initialized modules").
package preinit

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/edgehost/edgehost/internal/cachefile"
	"github.com/edgehost/edgehost/internal/engine/wasmopt"
)

// ErrInit wraps every failure of a pre-initialized guest's _initialize:
// a trap, an exit, a hostcall other than WASI's, the time limit.
var ErrInit = errors.New("pre-initialization failed")

// Options bounds and keeps snapshots.
type Options struct {
	// CacheDir, when set, keeps each snapshot made, under a folder named
	// for wasmopt.PreinitVersion, in a file named for the SHA-256 of the
	// module: a restart or a re-deploy of the same module loads the same
	// snapshot (and so the same compiled code) instead of making another.
	CacheDir string
	// MemoryLimitBytes caps the guest's linear memory during
	// _initialize; 0 means 128 MiB, the engines' default.
	MemoryLimitBytes uint64
	// Timeout bounds _initialize's wall-clock time; 0 means 10 s.
	Timeout time.Duration
}

// stdioLimit bounds the guest's output kept for an error message, bytes.
const stdioLimit = 4 << 10

// Prepare returns wasm as it is when it is not a pre-initialized guest
// (made false), and else the snapshot command made from it (made true),
// read from opts.CacheDir when a snapshot of the same module is kept
// there. The snapshot's _initialize runs with no arguments but the
// program name "main", an empty environment, stdout and stderr kept for
// the error message, random bytes from crypto/rand, the wall clock, and
// a monotonic clock that starts at 0 and advances 1 ns per reading: the
// engines' monotonic clocks (the host's CLOCK_MONOTONIC) read later than
// any value the snapshot holds, so the guest's clock never goes back.
// Errors: ErrInit (wrapped) when _initialize traps, exits, calls a
// function of a module other than WASI's or does not return in time;
// wasmopt.ErrNotSnapshottable (wrapped) for a module whose state is more
// than its memory and its globals; an invalid module.
func Prepare(ctx context.Context, wasm []byte, opts Options) (out []byte, made bool, err error) {
	if !wasmopt.IsPreinit(wasm) {
		return wasm, false, nil
	}
	sum := sha256.Sum256(wasm)
	var path string
	if opts.CacheDir != "" {
		path = filepath.Join(opts.CacheDir, "edgehost-"+wasmopt.PreinitVersion, hex.EncodeToString(sum[:]))
		if b, err := os.ReadFile(path); err == nil && len(b) > 4 && cachefile.Checksum(b[4:]) == binary.LittleEndian.Uint32(b) {
			return b[4:], true, nil
		}
	}
	out, err = snapshot(ctx, wasm, opts)
	if err != nil {
		return nil, false, err
	}
	if path != "" {
		entry := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(out)), cachefile.Checksum(out))
		cachefile.Write(path, append(entry, out...))
	}
	return out, true, nil
}

// snapshot is Prepare without the cache.
func snapshot(ctx context.Context, wasm []byte, opts Options) ([]byte, error) {
	exported, names, err := wasmopt.ExportForSnapshot(wasm)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	limit := opts.MemoryLimitBytes
	if limit == 0 {
		limit = 128 << 20
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(uint32(min(limit/(1<<16), 1<<16))))
	defer rt.Close(context.WithoutCancel(ctx))
	compiled, err := rt.CompileModule(ctx, exported)
	if err != nil {
		return nil, fmt.Errorf("pre-initialization: invalid module: %w", err)
	}
	if err := stubImports(ctx, rt, compiled); err != nil {
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, fmt.Errorf("pre-initialization: WASI: %w", err)
	}
	var stdio limitedBuffer
	var tick int64
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithArgs("main").
		WithStdout(&stdio).
		WithStderr(&stdio).
		WithSysWalltime().
		WithNanotime(func() int64 { tick++; return tick }, 1).
		WithRandSource(rand.Reader)
	mod, err := rt.InstantiateModule(ctx, compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: instantiate: %v", ErrInit, err)
	}
	if _, err := mod.ExportedFunction(wasmopt.PreinitInit).Call(ctx); err != nil {
		return nil, initError(ctx, err, stdio.String())
	}
	values := make([]uint64, len(names))
	for i, name := range names {
		g := mod.ExportedGlobal(name)
		if g == nil {
			return nil, fmt.Errorf("pre-initialization: global export %s missing", name)
		}
		values[i] = g.Get()
	}
	mem, ok := mod.Memory().Read(0, mod.Memory().Size())
	if !ok {
		return nil, errors.New("pre-initialization: linear memory unreadable")
	}
	return wasmopt.Snapshot(wasm, mem, values)
}

// hostcallError is the panic of a stub import: the guest called a
// function the host gives only while serving.
type hostcallError struct{ module, name string }

func (e *hostcallError) Error() string {
	return fmt.Sprintf("_initialize called %s.%s: only WASI is available at deploy time (abi/README.md, \"Pre-initialized modules\")", e.module, e.name)
}

// stubImports gives every function import of compiled from a module other
// than WASI's a function that stops the guest with a *hostcallError.
func stubImports(ctx context.Context, rt wazero.Runtime, compiled wazero.CompiledModule) error {
	byModule := map[string]wazero.HostModuleBuilder{}
	var order []string
	for _, def := range compiled.ImportedFunctions() {
		mod, name, _ := def.Import()
		if mod == wasi_snapshot_preview1.ModuleName {
			continue
		}
		b, ok := byModule[mod]
		if !ok {
			b = rt.NewHostModuleBuilder(mod)
			byModule[mod] = b
			order = append(order, mod)
		}
		e := &hostcallError{mod, name}
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) { panic(e) }), def.ParamTypes(), def.ResultTypes()).
			Export(name)
	}
	for _, mod := range order {
		if _, err := byModule[mod].Instantiate(ctx); err != nil {
			return fmt.Errorf("pre-initialization: import module %q: %w", mod, err)
		}
	}
	return nil
}

// initError describes a failed _initialize: err is the call's error,
// output what the guest wrote to stdout and stderr.
func initError(ctx context.Context, err error, output string) error {
	var why string
	var hc *hostcallError
	var exit *sys.ExitError
	switch {
	case errors.As(err, &hc):
		why = hc.Error()
	case ctx.Err() != nil:
		why = "_initialize did not return in time"
	case errors.As(err, &exit):
		why = fmt.Sprintf("_initialize exited with code %d", exit.ExitCode())
	default:
		why = fmt.Sprintf("_initialize trapped: %v", err)
	}
	if output != "" {
		why += "; its output: " + output
	}
	return fmt.Errorf("%w: %s", ErrInit, why)
}

// limitedBuffer keeps the first stdioLimit bytes written to it.
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := stdioLimit - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(bytes.TrimSpace(l.b.Bytes())) }
