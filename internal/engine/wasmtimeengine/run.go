//go:build cgo

package wasmtimeengine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/edgehost/edgehost/internal/engine"
)

// module is a compiled guest with its Linker; both are safe for
// concurrent Runs (each Run has its own Store).
type module struct {
	e        *Engine
	mod      *wasmtime.Module
	linker   *wasmtime.Linker
	pre      *instancePre
	memLimit int64
}

// Close releases the compiled code and the linker's host functions.
func (m *module) Close(ctx context.Context) error {
	m.pre.close()
	m.linker.Close()
	m.mod.Close()
	return nil
}

// run is the per-Run state a Store carries as its data: host functions
// reach it through their Caller.
type run struct {
	ctx context.Context
	// mem is the guest's exported "memory", nil until instantiated.
	mem *wasmtime.Memory
	// view is reused by every host call of the run (a store runs one
	// host call at a time), so a call allocates no Memory.
	view memory
	// monoStart is when Wasmtime's WASI monotonic clock read zero (just
	// after, by microseconds): absolute monotonic poll_oneoff timeouts
	// count from it.
	monoStart time.Time
	// timer is poll_oneoff's, reused across its calls.
	timer *time.Timer
	// results holds a host call's results until wasmtime-go has copied
	// them out (it does before the call returns to the guest), so a host
	// call allocates no result slice.
	results [4]wasmtime.Val
}

// Run instantiates the module in a fresh Store and calls _start.
func (m *module) Run(ctx context.Context, rc engine.RunConfig) error {
	if ctx.Err() != nil {
		return timeoutError(ctx)
	}
	wasi, err := newWASI(rc)
	if err != nil {
		return err
	}
	r := &run{ctx: ctx}
	store := wasmtime.NewStoreWithData(m.e.eng, r)
	unwatch := watch(store, r)
	// Every guest write has reached rc.Stdout or rc.Stderr when its
	// fd_write returned; closing the store drops the streams, whose
	// finalizers release the writers' handles (stdio.go).
	defer func() {
		store.Close()
		unwatch()
		wasi.wait()
	}()
	store.Limiter(m.memLimit, -1, -1, -1, -1)
	store.SetWasi(wasi.cfg)
	r.monoStart = time.Now()

	inst, err := m.pre.instantiate(store)
	if err != nil {
		var exit *engine.ExitError
		switch {
		case errors.Is(err, errExitZeroAtStart):
			return nil
		case errors.As(err, &exit):
			return err
		}
		return runError(ctx, err)
	}
	if ex := inst.GetExport(store, "memory"); ex != nil {
		r.mem = ex.Memory()
	}
	start := inst.GetFunc(store, "_start")
	if start == nil {
		return engine.ErrNoStart
	}
	_, err = start.Call(store)
	return runError(ctx, err)
}

func timeoutError(ctx context.Context) error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = context.DeadlineExceeded
	}
	return fmt.Errorf("%w: %v", engine.ErrTimeout, cause)
}

// runError maps what Wasmtime returned onto the engine's errors: a WASI
// exit status (0 is success), a guest stopped because its context ended
// (ErrTimeout), any other trap.
func runError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var werr *wasmtime.Error
	if errors.As(err, &werr) {
		if code, ok := werr.ExitStatus(); ok {
			if code == 0 {
				return nil
			}
			return &engine.ExitError{Code: uint32(code)}
		}
	}
	if ctx.Err() != nil {
		return timeoutError(ctx)
	}
	return fmt.Errorf("guest trapped: %w", tidy(err))
}

// hostFunc adapts fn to a FuncNew callback of type ty: the parameters go
// on a uint64 stack (i32 zero-extended, floats as their bits), fn runs with
// the run's context and memory, the results come back from the stack. A
// call made after the run's context ended traps, so a cancelled sandbox
// stops at its next host call. A panic in fn becomes a trap.
func hostFunc(imp engine.Import, fn engine.HostFunc, ty *wasmtime.FuncType) func(*wasmtime.Caller, []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
	results := imp.Results
	n := max(len(imp.Params), len(results))
	name := imp.String()
	return func(c *wasmtime.Caller, params []wasmtime.Val) (out []wasmtime.Val, trap *wasmtime.Trap) {
		r, _ := c.Data().(*run)
		if r == nil {
			return nil, wasmtime.NewTrap(name + ": called outside a run")
		}
		if err := r.ctx.Err(); err != nil {
			return nil, wasmtime.NewTrap(name + ": sandbox context ended: " + err.Error())
		}
		var buf [16]uint64
		stack := buf[:0]
		if n <= len(buf) {
			stack = buf[:n]
		} else {
			stack = make([]uint64, n)
		}
		for i, p := range params {
			switch p.Kind() {
			case wasmtime.KindI32:
				stack[i] = uint64(uint32(p.I32()))
			case wasmtime.KindI64:
				stack[i] = uint64(p.I64())
			case wasmtime.KindF32:
				stack[i] = uint64(math.Float32bits(p.F32()))
			case wasmtime.KindF64:
				stack[i] = math.Float64bits(p.F64())
			}
		}
		r.view = memory{c: c, mem: r.mem}
		defer func() {
			r.view = memory{}
			if p := recover(); p != nil {
				out, trap = nil, wasmtime.NewTrap(fmt.Sprintf("%s: host function panicked: %v", name, p))
			}
		}()
		fn(r.ctx, &r.view, stack)
		if len(results) <= len(r.results) {
			out = r.results[:len(results)]
		} else {
			out = make([]wasmtime.Val, len(results))
		}
		for i := range results {
			switch engine.ValueType(results[i]) {
			case engine.I32:
				out[i] = wasmtime.ValI32(int32(uint32(stack[i])))
			case engine.I64:
				out[i] = wasmtime.ValI64(int64(stack[i]))
			case engine.F32:
				out[i] = wasmtime.ValF32(math.Float32frombits(uint32(stack[i])))
			case engine.F64:
				out[i] = wasmtime.ValF64(math.Float64frombits(stack[i]))
			}
		}
		return out, nil
	}
}

// memory is the guest's linear memory during one host call. The byte
// slice is fetched on first use: memory cannot grow or move while the
// guest waits for the host call.
type memory struct {
	c      *wasmtime.Caller
	mem    *wasmtime.Memory
	data   []byte
	loaded bool
}

func (m *memory) bytes() []byte {
	if !m.loaded {
		m.loaded = true
		if m.mem == nil && m.c != nil {
			// Called before instantiation finished (a start function).
			if ex := m.c.GetExport("memory"); ex != nil {
				m.mem = ex.Memory()
			}
		}
		if m.mem != nil {
			m.data = m.mem.UnsafeData(m.c)
		}
	}
	return m.data
}

// Read returns the n bytes at off, aliasing guest memory.
func (m *memory) Read(off, n uint32) ([]byte, bool) {
	b := m.bytes()
	end := uint64(off) + uint64(n)
	if end > uint64(len(b)) {
		return nil, false
	}
	return b[off:end:end], true
}

// Write copies p to off.
func (m *memory) Write(off uint32, p []byte) bool {
	b := m.bytes()
	end := uint64(off) + uint64(len(p))
	if end > uint64(len(b)) {
		return false
	}
	copy(b[off:end], p)
	return true
}

// Size is the memory's size in bytes.
func (m *memory) Size() uint32 {
	n := len(m.bytes())
	if n > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n)
}
