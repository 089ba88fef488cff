package wazeroengine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
)

// Tiered compilation (engine.Config.Tiered; README.md, "Engines"): a
// module compiled for the first time is served by wazero's interpreter,
// which compiles an 11 MB JS SDK guest in about a second, while wazero's
// optimizing compiler makes its code in the background; new sandboxes then
// start on the optimized code, sandboxes already running finish on the
// interpreter. One background compile runs at a time per engine, on half
// the CPUs, so that serving keeps the rest.

// compiledMarkVersion names the folder of compiledBefore's marks; the
// wazero version is added to it, since a new wazero does not read an old
// one's cache.
const compiledMarkVersion = "edgehost-compiled-v1"

// compiledBefore reports whether the optimizing compiler's code of the
// module whose SHA-256 is sum (a module as prepareMemory split it) is in
// the cache directory, by the mark markCompiled left there. Without a
// cache directory nothing was. A mark whose cache entry was deleted costs
// one untiered compile.
func (e *Engine) compiledBefore(sum [sha256.Size]byte) bool {
	path := e.markPath(sum)
	if path == "" {
		return false
	}
	_, err := os.Stat(path)
	return err == nil
}

// markCompiled marks the module whose SHA-256 is sum as compiled
// optimized in the cache directory. Failing to write the mark is not an
// error (the next load is tiered).
func (e *Engine) markCompiled(sum [sha256.Size]byte) {
	path := e.markPath(sum)
	if path == "" {
		return
	}
	if os.MkdirAll(filepath.Dir(path), 0o700) == nil {
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			f.Close()
		}
	}
}

// markPath is the file marking the module whose SHA-256 is sum as
// compiled, "" without a cache directory: sum in hex, in a folder named
// for the mark version and the wazero version.
func (e *Engine) markPath(sum [sha256.Size]byte) string {
	if e.cfg.CacheDir == "" {
		return ""
	}
	return filepath.Join(e.cfg.CacheDir, compiledMarkVersion+"-wazero-"+wazeroVersion(), hex.EncodeToString(sum[:]))
}

// wazeroVersion is the version of wazero this binary was built with, from
// its build information ("unknown" without it).
func wazeroVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				if d.Replace != nil {
					d = d.Replace
				}
				if d.Version != "" {
					return d.Version
				}
			}
		}
	}
	return "unknown"
}

// backgroundWorkers is the number of goroutines a background compile
// uses: half the CPUs, at least one.
func backgroundWorkers() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// startTiered returns the tiered module serving fast, and starts the
// optimizing compile of wasm, binding the imports Compile resolved (links)
// again. start is when Compile began.
func (e *Engine) startTiered(fast *module, wasm []byte, links map[engine.Import]engine.HostFunc, start time.Time) *tieredModule {
	ctx, cancel := context.WithCancel(e.bg)
	t := &tieredModule{
		cur:    &tierRef{m: fast, tier: engine.TierInterpreter},
		start:  start,
		done:   make(chan struct{}),
		cancel: cancel,
	}
	t.compiling = true
	e.bgWG.Add(1)
	go func() {
		defer e.bgWG.Done()
		defer cancel()
		m, err := e.optimize(ctx, wasm, links)
		t.finish(m, err)
	}()
	return t
}

// optimize waits for the engine's background slot, then compiles wasm with
// the optimizing compiler and links it with links. Errors: ctx ended (the
// module or the engine was closed), or the compile's own.
func (e *Engine) optimize(ctx context.Context, wasm []byte, links map[engine.Import]engine.HostFunc) (*module, error) {
	select {
	case e.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-e.slot }()
	code, sum, mem, err := e.prepare(wasm)
	if err != nil {
		return nil, err
	}
	m, err := e.compileCode(ctx, e.runtimeConfig(false), wasm, code, sum, mem, func(imp engine.Import) (engine.HostFunc, error) {
		if fn, ok := links[imp]; ok {
			return fn, nil
		}
		return nil, fmt.Errorf("import %s was not linked by the first compile", imp)
	}, backgroundWorkers())
	if err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		m.Close(context.Background())
		return nil, ctx.Err()
	}
	e.markCompiled(sum)
	return m, nil
}

// tieredModule is an engine.Tiered: each Run starts on the tier current at
// its start, and a tier replaced while sandboxes run on it is closed when
// the last of them ends.
type tieredModule struct {
	start  time.Time
	done   chan struct{}
	cancel context.CancelFunc
	runs   [2]atomic.Uint64 // sandboxes started on the interpreter, on optimized code

	mu        sync.Mutex
	cur       *tierRef // nil once closed
	compiling bool
	switched  time.Duration
	err       error
}

// tierRef is one tier's module and the runs on it. Its fields are guarded
// by tieredModule.mu.
type tierRef struct {
	m       *module
	tier    string
	runs    int  // running now
	retired bool // replaced or closed: close m after the last run
}

var _ engine.Tiered = (*tieredModule)(nil)

// errModuleClosed is Run's error on a closed module.
var errModuleClosed = errors.New("module closed")

// Run runs a sandbox on the current tier (engine.Module.Run).
func (t *tieredModule) Run(ctx context.Context, rc engine.RunConfig) error {
	t.mu.Lock()
	r := t.cur
	if r == nil {
		t.mu.Unlock()
		return errModuleClosed
	}
	r.runs++
	t.mu.Unlock()
	if r.tier == engine.TierInterpreter {
		t.runs[0].Add(1)
	} else {
		t.runs[1].Add(1)
	}
	err := r.m.Run(ctx, rc)
	t.mu.Lock()
	r.runs--
	last := r.retired && r.runs == 0
	t.mu.Unlock()
	if last {
		r.m.Close(context.WithoutCancel(ctx))
	}
	return err
}

// finish ends the background compile: m (nil on failure, err set) becomes
// the tier of new sandboxes, unless the module was closed meanwhile.
func (t *tieredModule) finish(m *module, err error) {
	defer close(t.done)
	t.mu.Lock()
	t.compiling = false
	old := t.cur
	if err != nil || old == nil {
		if err == nil {
			err = errModuleClosed
		}
		t.err = err
		t.mu.Unlock()
		if m != nil {
			m.Close(context.Background())
		}
		return
	}
	t.cur = &tierRef{m: m, tier: engine.TierOptimized}
	t.switched = time.Since(t.start)
	old.retired = true
	idle := old.runs == 0
	t.mu.Unlock()
	if idle {
		old.m.Close(context.Background())
	}
}

// TierStatus reports the module's tiers (engine.Tiered).
func (t *tieredModule) TierStatus() engine.TierStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := engine.TierStatus{
		Tier:          engine.TierInterpreter,
		Compiling:     t.compiling,
		SwitchedAfter: t.switched,
		Err:           t.err,
		Runs: map[string]uint64{
			engine.TierInterpreter: t.runs[0].Load(),
			engine.TierOptimized:   t.runs[1].Load(),
		},
	}
	if t.switched > 0 {
		s.Tier = engine.TierOptimized
	}
	return s
}

// Optimized is closed when the background compile has ended
// (engine.Tiered).
func (t *tieredModule) Optimized() <-chan struct{} { return t.done }

// Close stops the background compile and closes the current tier, at once
// when no sandbox runs on it, else after the last.
func (t *tieredModule) Close(ctx context.Context) error {
	t.cancel()
	t.mu.Lock()
	r := t.cur
	t.cur = nil
	if r == nil {
		t.mu.Unlock()
		return nil
	}
	r.retired = true
	idle := r.runs == 0
	t.mu.Unlock()
	if idle {
		return r.m.Close(ctx)
	}
	return nil
}
