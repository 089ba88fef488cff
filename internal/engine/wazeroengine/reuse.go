package wazeroengine

import (
	"context"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/edgehost/edgehost/internal/engine"
)

// A fresh sandbox of a resettable module (wasmopt.ExportGlobalsForReset)
// runs on an instance that an earlier sandbox ran on and that was put back
// into the state instantiation leaves, when one is kept: instantiating
// costs a third of a TinyGo hello's engine time (resolving imports,
// filling the table, the WASI context, the _start function's call engine;
// host/bench/README.md), and a reset only what differs from it. After a
// sandbox that returned from _start with the memory at its initial size,
// the instance is reset:
//   - its linear memory, which the engine's allocator owns: the module's
//     memory image copied back and zeros after it; for a memory over
//     keepResident (the JS SDK's 7.3 MiB), the same done only to the
//     pages the kernel's page map shows written when they hold at most
//     keepResident bytes, else the memory handed back to the kernel with
//     madvise, which brings back the image's pages and zero pages
//     (memAllocator.reset);
//   - its mutable globals, all exported by the rewrite, set to the values
//     they had after instantiation;
//   - its tables hold what instantiation put there: the rewrite accepts
//     no instruction that changes them;
//   - its WASI state is the configuration it was made with (stdio pointed
//     at each run's writers, arguments and environment read from the
//     run's context: wasi.go) as long as the sandbox called no WASI
//     function that can change it (changesWASIState: fd_close,
//     fd_renumber, fd_fdstat_set_flags, path_open, sock_accept); the
//     run's context notes such a call.
// An instance whose sandbox trapped, exited (proc_exit closes it), was
// stopped, grew its memory (wazero's API cannot shrink a memory) or
// called one of those WASI functions is closed instead, and its memory
// reservation recycled as before. A module importing those functions
// (the JS SDK's imports fd_close and fd_fdstat_set_flags, and calls
// neither serving a request) is thus reused run by run.

// keepInstances bounds a module's kept instances: about the sandboxes
// that start at once. Each holds its memory (at most keepResident
// resident bytes once reset) and wazero's instance: a few tens of KiB
// for a TinyGo guest, about 340 KB of Go heap for the JS SDK's (README.md,
// Engines).
const keepInstances = 64

// instances is a module's kept reset instances.
type instances struct {
	globals []string // the export names of the mutable globals
	mu      sync.Mutex
	idle    []*instance
	closed  bool
	reused  uint64 // runs on a kept instance, for tests
}

// instance is one reusable instance and what its reset needs.
type instance struct {
	mod     api.Module
	start   api.Function
	mem     *linearMemory // nil: the module has no memory
	size    uint32        // the memory's size after instantiation, bytes
	globals []api.MutableGlobal
	initial []uint64 // the globals' values after instantiation
	rio     *runIO
}

func (k *instances) take() *instance {
	k.mu.Lock()
	defer k.mu.Unlock()
	if n := len(k.idle); n > 0 {
		in := k.idle[n-1]
		k.idle[n-1] = nil
		k.idle = k.idle[:n-1]
		k.reused++
		return in
	}
	return nil
}

// put keeps in, or reports false when the module is closed or enough are
// kept.
func (k *instances) put(in *instance) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || len(k.idle) >= keepInstances {
		return false
	}
	k.idle = append(k.idle, in)
	return true
}

// close stops keeping instances; closing the runtime closes those kept.
func (k *instances) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	k.idle = nil
}

// reusedRuns is how many runs took a kept instance.
func (k *instances) reusedRuns() uint64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reused
}

// recorder is the allocator of one instantiation: it notes the memory it
// hands wazero, so that the instance's reset can reach it.
type recorder struct {
	a   *memAllocator
	got *linearMemory
}

func (r *recorder) Allocate(cap, max uint64) experimental.LinearMemory {
	lm := r.a.Allocate(cap, max)
	if l, ok := lm.(*linearMemory); ok {
		r.got = l
	}
	return lm
}

// newInstance instantiates the module for reuse, with a runIO of its own
// (one a closed instance gave back, or a new one).
func (m *module) newInstance(ctx context.Context) (*instance, error) {
	rec := &recorder{a: m.mem}
	var rio *runIO
	select {
	case rio = <-m.ios:
	default:
		rio = newRunIO(m.base)
	}
	mod, err := m.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, rec), m.compiled, rio.cfg)
	if err != nil {
		m.putRunIO(rio)
		return nil, err
	}
	in := &instance{mod: mod, start: mod.ExportedFunction("_start"), rio: rio}
	// A module without memory has a nil *MemoryInstance in wazero's
	// api.Memory (not a nil interface): the allocator's call tells.
	if rec.got != nil {
		in.mem, in.size = rec.got, mod.Memory().Size()
	}
	for _, name := range m.reuse.globals {
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			mod.Close(context.WithoutCancel(ctx))
			m.putRunIO(rio)
			return nil, fmt.Errorf("global export %s missing", name)
		}
		in.globals = append(in.globals, g)
		in.initial = append(in.initial, g.Get())
	}
	return in, nil
}

// reset puts in back into its state after instantiation, or reports false
// when it cannot.
func (in *instance) reset() bool {
	if in.mod.IsClosed() {
		return false
	}
	if in.mem != nil {
		if in.mod.Memory().Size() != in.size || !in.mem.reset() {
			return false
		}
	}
	for i, g := range in.globals {
		g.Set(in.initial[i])
	}
	return true
}

// runReused runs a sandbox on a kept instance, or a new one, and keeps
// the instance for the next when it can be reset. vars is the run's, in
// ctx.
func (m *module) runReused(ctx context.Context, rc engine.RunConfig, vars *runVars) error {
	in := m.reuse.take()
	if in == nil {
		var err error
		if in, err = m.newInstance(ctx); err != nil {
			return runError(ctx, err)
		}
	}
	in.rio.ctx, in.rio.stdout.w, in.rio.stderr.w = ctx, rc.Stdout, rc.Stderr
	_, err := in.start.Call(ctx)
	in.rio.ctx, in.rio.stdout.w, in.rio.stderr.w = nil, nil, nil
	if err != nil || vars.wasiChanged || !in.reset() || !m.reuse.put(in) {
		in.mod.Close(context.WithoutCancel(ctx))
		m.putRunIO(in.rio) // the closed instance writes no more
	}
	return runError(ctx, err)
}

// putRunIO keeps rio, whose instance is closed, for a next run.
func (m *module) putRunIO(rio *runIO) {
	select {
	case m.ios <- rio:
	default:
	}
}
