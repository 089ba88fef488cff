//go:build cgo

// Package wasmtimeengine runs guests on Wasmtime through wasmtime-go
// (github.com/bytecodealliance/wasmtime-go, cgo, statically linked).
//
// It binds the same engine.Linker as the wazero adapter: each compiled
// module gets one wasmtime Linker with WASI preview 1 and one FuncNew per
// function import, defined once, and the module pre-linked against it
// (Wasmtime's InstancePre, instancepre.go) so that a sandbox's
// instantiation resolves no import; a Run creates a Store whose data holds
// the run's context, so host functions find the per-request state from
// their Caller. The wall-clock limit and cancellation use epoch
// interruption (one ticker per Engine; at each tick a running store checks
// its run's context), the memory cap the Store's limiter. A guest asleep in
// WASI's poll_oneoff runs no Wasm for an epoch tick to stop, so that one
// WASI function is edgehost's own, which sleeps until the run's context
// ends (poll.go).
package wasmtimeengine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/edgehost/edgehost/internal/engine"
)

const (
	wasiModule = "wasi_snapshot_preview1"
	modulePath = "github.com/bytecodealliance/wasmtime-go/v39"

	// epochTick is how often the engine's epoch advances, and so how
	// often a running guest checks its context: a guest stops within a
	// tick of its context ending.
	epochTick = 10 * time.Millisecond
)

// Available reports whether this binary includes the wasmtime engine: it
// needs cgo (a C compiler when edgehost is built).
const Available = true

// Engine is the wasmtime engine: one wasmtime.Engine with epoch
// interruption, shared by every module it compiles, and the goroutine that
// advances its epoch.
type Engine struct {
	cfg      engine.Config
	eng      *wasmtime.Engine
	cacheDir string // versioned cache directory, "" without a cache

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// New returns a wasmtime engine. With cfg.CacheDir set, compiled modules
// are kept there as serialized Wasmtime artifacts, in a subdirectory named
// for the engine version, OS and architecture
// ("wasmtime-v39.0.1-amd64-linux"), one file per module's sha256. Errors:
// the cache directory cannot be created.
func New(cfg engine.Config) (*Engine, error) {
	if err := storeLayoutOK(); err != nil {
		return nil, err
	}
	if err := wasiConfigLayoutOK(); err != nil {
		return nil, err
	}
	if err := preLayoutOK(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.CacheDir != "" {
		e.cacheDir = filepath.Join(cfg.CacheDir, "wasmtime-"+Version()+"-"+runtime.GOARCH+"-"+runtime.GOOS)
		if err := os.MkdirAll(e.cacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("wasmtime compilation cache: %w", err)
		}
	}
	wc := wasmtime.NewConfig()
	wc.SetEpochInterruption(true)
	e.eng = wasmtime.NewEngineWithConfig(wc)
	go e.tick()
	return e, nil
}

// Version is the wasmtime-go module version this binary is built with
// (e.g. "v39.0.1", from the build info), or "v39" when it is unknown.
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				if d.Replace != nil {
					d = d.Replace
				}
				return d.Version
			}
		}
	}
	return "v39"
}

// tick advances the epoch every epochTick until Close.
func (e *Engine) tick() {
	defer close(e.done)
	t := time.NewTicker(epochTick)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.eng.IncrementEpoch()
		case <-e.stop:
			return
		}
	}
}

// Name returns "wasmtime".
func (e *Engine) Name() string { return "wasmtime" }

// Close stops the epoch ticker. Modules already compiled stay usable
// until closed, but their wall-clock limit is no longer enforced.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		close(e.stop)
		<-e.done
	})
	return nil
}

// Compile compiles wasm (or loads it from the cache) and binds its
// imports: WASI preview 1 from Wasmtime, every other function import
// through link. Errors: engine.ErrInvalidModule (wrapped), engine.ErrNoStart,
// link's error for the first import it refuses, an error naming a
// non-function import.
func (e *Engine) Compile(ctx context.Context, wasm []byte, link engine.Linker) (engine.Module, error) {
	mod, err := e.module(wasm)
	if err != nil {
		return nil, err
	}
	m, err := e.link(mod, link)
	if err != nil {
		mod.Close()
		return nil, err
	}
	return m, nil
}

// module compiles wasm, going through the on-disk cache when there is one.
// A cache entry that does not load (another engine build, a truncated
// file) is replaced.
func (e *Engine) module(wasm []byte) (*wasmtime.Module, error) {
	var path string
	if e.cacheDir != "" {
		sum := sha256.Sum256(wasm)
		path = filepath.Join(e.cacheDir, hex.EncodeToString(sum[:]))
		if _, err := os.Stat(path); err == nil {
			if mod, err := wasmtime.NewModuleDeserializeFile(e.eng, path); err == nil {
				return mod, nil
			}
		}
	}
	mod, err := wasmtime.NewModule(e.eng, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", engine.ErrInvalidModule, tidy(err))
	}
	if path != "" {
		// The cache is an optimisation: failing to fill it is not an error.
		if b, err := mod.Serialize(); err == nil {
			_ = writeFileAtomic(path, b)
		}
	}
	return mod, nil
}

func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// link builds mod's Linker: WASI, then the function imports grouped by
// module in first-seen order (the order the wazero adapter asks link in, so
// both report the same first error).
func (e *Engine) link(mod *wasmtime.Module, link engine.Linker) (*module, error) {
	hasStart := false
	for _, ex := range mod.Exports() {
		if ex.Name() == "_start" && ex.Type().FuncType() != nil {
			hasStart = true
		}
	}
	if !hasStart {
		return nil, engine.ErrNoStart
	}
	type fnImport struct {
		name string
		ty   *wasmtime.FuncType
	}
	byModule := map[string][]fnImport{}
	var order []string
	var other []string // non-function imports
	for _, imp := range mod.Imports() {
		name := ""
		if n := imp.Name(); n != nil {
			name = *n
		}
		ft := imp.Type().FuncType()
		if ft == nil {
			kind := "table"
			switch {
			case imp.Type().MemoryType() != nil:
				kind = "memory"
			case imp.Type().GlobalType() != nil:
				kind = "global"
			}
			other = append(other, fmt.Sprintf("unsupported import %s.%s: %s imports are not provided", imp.Module(), name, kind))
			continue
		}
		if imp.Module() == wasiModule {
			continue
		}
		if _, seen := byModule[imp.Module()]; !seen {
			order = append(order, imp.Module())
		}
		// A module may import one function twice (Go does when two
		// packages declare the same wasmimport); the linker defines it once.
		dup := false
		for _, fi := range byModule[imp.Module()] {
			if fi.name == name {
				if valueTypes(fi.ty.Params()) != valueTypes(ft.Params()) || valueTypes(fi.ty.Results()) != valueTypes(ft.Results()) {
					other = append(other, fmt.Sprintf("import %s.%s is imported twice with different signatures", imp.Module(), name))
				}
				dup = true
			}
		}
		if dup {
			continue
		}
		byModule[imp.Module()] = append(byModule[imp.Module()], fnImport{name, ft})
	}
	l := wasmtime.NewLinker(e.eng)
	if err := l.DefineWasi(); err != nil {
		l.Close()
		return nil, fmt.Errorf("define WASI: %w", tidy(err))
	}
	// poll_oneoff replaces Wasmtime's, so that a sleeping guest stops
	// when its context ends (see poll.go).
	l.AllowShadowing(true)
	err := l.FuncNew(wasiModule, "poll_oneoff", pollFuncType(), pollOneoff)
	l.AllowShadowing(false)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("define WASI poll_oneoff: %w", tidy(err))
	}
	for _, modName := range order {
		for _, fi := range byModule[modName] {
			imp := engine.Import{Module: modName, Name: fi.name, Signature: engine.Signature{
				Params: valueTypes(fi.ty.Params()), Results: valueTypes(fi.ty.Results()),
			}}
			fn, err := link(imp)
			if err != nil {
				l.Close()
				return nil, err
			}
			if err := l.FuncNew(modName, fi.name, fi.ty, hostFunc(imp, fn, fi.ty)); err != nil {
				l.Close()
				return nil, fmt.Errorf("link %s: %w", imp, tidy(err))
			}
		}
	}
	if len(other) > 0 {
		l.Close()
		return nil, errors.New(other[0])
	}
	limit := e.cfg.MemoryLimitBytes
	if limit == 0 {
		limit = 128 << 20
	}
	if limit > math.MaxInt64 {
		limit = math.MaxInt64
	}
	pre, err := newInstancePre(l, mod)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("link: %s", tidyMessage(err.Error()))
	}
	return &module{e: e, mod: mod, linker: l, pre: pre, memLimit: int64(limit)}, nil
}

func valueTypes(ts []*wasmtime.ValType) string {
	b := make([]byte, len(ts))
	for i, t := range ts {
		switch t.Kind() {
		case wasmtime.KindI32:
			b[i] = byte(engine.I32)
		case wasmtime.KindI64:
			b[i] = byte(engine.I64)
		case wasmtime.KindF32:
			b[i] = byte(engine.F32)
		case wasmtime.KindF64:
			b[i] = byte(engine.F64)
		default:
			b[i] = '?'
		}
	}
	return string(b)
}
