// Package wazeroengine runs guests on wazero (github.com/tetratelabs/wazero),
// edgehost's default, pure-Go engine.
package wazeroengine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/edgehost/edgehost/internal/cachefile"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/engine/wasmopt"
)

const wasiModule = "wasi_snapshot_preview1"

// Engine is the wazero engine. Each compiled module gets its own
// wazero.Runtime (so host modules export exactly what that guest imports,
// stubs included), sharing one compilation cache. With cfg.Tiered, a module
// compiled for the first time runs on wazero's interpreter while the
// optimizing compiler runs in the background (tiered.go).
type Engine struct {
	cfg   engine.Config
	cache wazero.CompilationCache
	// slot holds the one background compile that runs at a time.
	slot chan struct{}
	// bg ends with Close: it cancels the background compiles.
	bg       context.Context
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup
}

// New returns a wazero engine. With cfg.CacheDir set, compiled code is
// cached on disk there. Errors: the cache directory cannot be created.
func New(cfg engine.Config) (*Engine, error) {
	e := &Engine{cfg: cfg, slot: make(chan struct{}, 1)}
	if cfg.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wazero compilation cache %s: %w", cfg.CacheDir, err)
		}
		e.cache = c
	} else {
		e.cache = wazero.NewCompilationCache()
	}
	e.bg, e.bgCancel = context.WithCancel(context.Background())
	return e, nil
}

// Name returns "wazero".
func (e *Engine) Name() string { return "wazero" }

// Close stops the background compiles, waits for them, and releases the
// compilation cache.
func (e *Engine) Close(ctx context.Context) error {
	e.bgCancel()
	e.bgWG.Wait()
	return e.cache.Close(ctx)
}

// Compile compiles wasm and binds its imports: WASI preview 1 from wazero,
// every other function import through link. With Config.Tiered, a module
// of at least Config.TieredMinBytes whose code this engine's cache
// directory has not seen compiled (compiledBefore) comes back as an
// engine.Tiered on the interpreter, and is compiled optimized in the
// background.
func (e *Engine) Compile(ctx context.Context, wasm []byte, link engine.Linker) (engine.Module, error) {
	start := time.Now()
	// Data segments become a copy-on-write memory image where the
	// platform allows (Go guests carry tens of thousands of segments).
	code, sum, mem, err := e.prepare(wasm)
	if err != nil {
		return nil, err
	}
	if !e.cfg.Tiered || len(wasm) < e.cfg.TieredMinBytes || e.compiledBefore(sum) {
		// Functions compile on every CPU: an 11 MB JS SDK guest takes seconds.
		m, err := e.compileCode(ctx, e.runtimeConfig(false), wasm, code, sum, mem, link, runtime.GOMAXPROCS(0))
		if err == nil {
			e.markCompiled(sum)
		}
		return m, err
	}
	links := map[engine.Import]engine.HostFunc{}
	fast, err := e.compileCode(ctx, e.runtimeConfig(true), wasm, code, sum, mem, func(imp engine.Import) (engine.HostFunc, error) {
		fn, err := link(imp)
		if err == nil {
			links[imp] = fn
		}
		return fn, err
	}, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	return e.startTiered(fast, bytes.Clone(wasm), links, start), nil
}

// runtimeConfig is the runtime configuration of a module: the
// interpreter or the optimizing compiler, with the memory limit.
func (e *Engine) runtimeConfig(interpreter bool) wazero.RuntimeConfig {
	limit := e.cfg.MemoryLimitBytes
	if limit == 0 {
		limit = 128 << 20
	}
	pages := uint32(limit / 65536)
	if pages == 0 || pages > 65536 {
		pages = 65536
	}
	rc := wazero.NewRuntimeConfig()
	if interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	return rc.WithCompilationCache(e.cache).WithMemoryLimitPages(pages)
}

// compileCode compiles code (wasm split from its memory image mem by
// prepareMemory; sum its SHA-256, or zero without a cache directory) with
// rc on workers goroutines; should the split module not validate, it
// compiles wasm as it is.
func (e *Engine) compileCode(ctx context.Context, rc wazero.RuntimeConfig, wasm, code []byte, sum [sha256.Size]byte, mem *memAllocator, link engine.Linker, workers int) (*module, error) {
	cctx := experimental.WithCompilationWorkers(ctx, workers)
	m, err := e.compileInterruptible(ctx, cctx, rc, code, sum, link)
	if err != nil && errors.Is(err, engine.ErrInvalidModule) && len(code) != len(wasm) {
		// The split module may not validate (a data count section whose
		// segments an instruction refers to): compile wasm as it is.
		if mem != nil {
			mem.close()
		}
		mem = plainMemory()
		if e.cfg.CacheDir != "" {
			sum = sha256.Sum256(wasm)
		}
		m, err = e.compileInterruptible(ctx, cctx, rc, wasm, sum, link)
	}
	if err != nil {
		if mem != nil {
			mem.close()
		}
		return nil, err
	}
	m.mem = mem
	return m, nil
}

// interruptBudget is the number of steps (function entries and loop
// iterations) between two context checks of a guest rewritten by
// wasmopt.InsertInterruptChecks: a check costs a call into Go (about 0.1
// µs), a step at least a few instructions.
const interruptBudget = 1 << 14

// compileInterruptible compiles wasm in a runtime of its own, with
// wasmopt.InsertInterruptChecks' checks when the module allows them, and
// else with wazero's WithCloseOnContextDone (a call into Go at every loop
// iteration, several times slower in loops). Either way a guest that
// never calls the host is stopped once ctx ends. A module that has the
// checks and that wasmopt.ExportGlobalsForReset finds resettable has its
// instances reset and reused (reuse.go). sum is the SHA-256 of wasm
// (zero without a cache directory).
func (e *Engine) compileInterruptible(ctx, cctx context.Context, rc wazero.RuntimeConfig, wasm []byte, sum [sha256.Size]byte, link engine.Linker) (*module, error) {
	checked, ok, reset, err := e.rewrite(wasm, sum)
	if err != nil || !ok {
		checked, reset = wasm, false
		rc = rc.WithCloseOnContextDone(true)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if ok {
		_, err := rt.NewHostModuleBuilder(wasmopt.InterruptModule).
			NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(interruptCheck), nil, []api.ValueType{api.ValueTypeI32}).
			Export(wasmopt.InterruptName).
			Instantiate(ctx)
		if err != nil {
			_ = rt.Close(ctx)
			return nil, fmt.Errorf("instantiate %s: %w", wasmopt.InterruptModule, err)
		}
	}
	var globals []string
	if reset {
		globals = wasmopt.ResetExports(checked)
	}
	m, err := e.compile(cctx, rt, checked, link, reset, globals)
	if err != nil {
		_ = rt.Close(ctx)
		if ok && errors.Is(err, engine.ErrInvalidModule) {
			// Should the rewrite ever yield a module that does not
			// validate, compile wasm as it is, with wazero's own checks.
			rt = wazero.NewRuntimeWithConfig(ctx, rc.WithCloseOnContextDone(true))
			if m, err = e.compile(cctx, rt, wasm, link, false, nil); err == nil {
				return m, nil
			}
			_ = rt.Close(ctx)
		}
		return nil, err
	}
	return m, nil
}

// rewriteVersion names the rewrites' output in the cache directory.
const rewriteVersion = wasmopt.InterruptVersion + "-" + wasmopt.ResetVersion

// rewriteFolder is the folder of Engine.rewrite's entries in the cache
// directory ("-crc": entries checked by a CRC-32C; those of before, under
// the name without it, were checked by a SHA-256 and are not read).
const rewriteFolder = "edgehost-" + rewriteVersion + "-crc"

// rewrite is wasmopt.InsertInterruptChecks(wasm) (ok reports it was
// made) followed by wasmopt.ExportGlobalsForReset (reset reports the
// module is resettable), kept in the engine's cache directory (when it
// has one) beside wazero's compiled code, so that a restart or
// re-activation does not rewrite the module again (0.17 s of CPU for an
// 11 MB JS SDK guest; host/bench/README.md). An entry is the CRC-32C of
// the rest (4 bytes, little endian; cachefile.Checksum), then a byte (1:
// resettable), then the rewritten module, in a file named for key, the
// SHA-256 of wasm, under rewriteFolder; one that is short or does not
// match its checksum is rewritten again. Failing to write the cache is
// not an error.
func (e *Engine) rewrite(wasm []byte, key [sha256.Size]byte) (out []byte, ok, reset bool, err error) {
	if e.cfg.CacheDir == "" {
		return rewriteModule(wasm)
	}
	dir := filepath.Join(e.cfg.CacheDir, rewriteFolder)
	path := filepath.Join(dir, hex.EncodeToString(key[:]))
	if b, err := os.ReadFile(path); err == nil && len(b) > 4+1 {
		if cachefile.Checksum(b[4:]) == binary.LittleEndian.Uint32(b) {
			return b[4+1:], true, b[4] == 1, nil
		}
	}
	out, ok, reset, err = rewriteModule(wasm)
	if err != nil || !ok {
		return out, ok, reset, err
	}
	entry := make([]byte, 4+1, 4+1+len(out))
	if reset {
		entry[4] = 1
	}
	entry = append(entry, out...)
	binary.LittleEndian.PutUint32(entry, cachefile.Checksum(entry[4:]))
	cachefile.Write(path, entry)
	return out, true, reset, nil
}

// rewriteModule is rewrite without the cache.
func rewriteModule(wasm []byte) (out []byte, ok, reset bool, err error) {
	out, ok, _, reset, err = wasmopt.RewriteForReuse(wasm)
	return out, ok, reset, err
}

// interruptCheck is wasmopt.InterruptName: it stops the guest when its
// run's context has ended (runError reports that as engine.ErrTimeout),
// else grants it interruptBudget more steps.
func interruptCheck(ctx context.Context, _ api.Module, stack []uint64) {
	select {
	case <-ctx.Done():
		panic(sys.NewExitError(sys.ExitCodeContextCanceled))
	default:
	}
	stack[0] = interruptBudget
}

// compile compiles wasm in rt and binds its imports. With reset (wasm is
// resettable: wasmopt.ExportGlobalsForReset, whose exports globals names),
// the module's instances are reused, each unless its sandbox called a WASI
// function that can change its WASI state (reuse.go).
func (e *Engine) compile(ctx context.Context, rt wazero.Runtime, wasm []byte, link engine.Linker, reset bool, globals []string) (*module, error) {
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", engine.ErrInvalidModule, err)
	}
	if _, ok := compiled.ExportedFunctions()["_start"]; !ok {
		return nil, engine.ErrNoStart
	}
	// Group the function imports by module, WASI aside.
	byModule := map[string][]api.FunctionDefinition{}
	var order []string
	for _, def := range compiled.ImportedFunctions() {
		mod, _, _ := def.Import()
		if mod == wasiModule || mod == wasmopt.InterruptModule {
			continue
		}
		if _, seen := byModule[mod]; !seen {
			order = append(order, mod)
		}
		byModule[mod] = append(byModule[mod], def)
	}
	for _, mod := range order {
		b := rt.NewHostModuleBuilder(mod)
		for _, def := range byModule[mod] {
			_, name, _ := def.Import()
			imp := engine.Import{Module: mod, Name: name, Signature: engine.Signature{
				Params: valueTypes(def.ParamTypes()), Results: valueTypes(def.ResultTypes()),
			}}
			fn, err := link(imp)
			if err != nil {
				return nil, err
			}
			b.NewFunctionBuilder().
				WithGoModuleFunction(goFunc(fn), def.ParamTypes(), def.ResultTypes()).
				Export(name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return nil, fmt.Errorf("link module %q: %w", mod, err)
		}
	}
	if err := instantiateWASI(ctx, rt); err != nil {
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	// Non-function imports (memory, table, global) can only come from
	// modules we do not provide.
	for _, def := range compiled.ImportedMemories() {
		mod, name, _ := def.Import()
		return nil, fmt.Errorf("unsupported import %s.%s: memory imports are not provided", mod, name)
	}
	// What every sandbox's WASI view shares is configured once: each
	// wazero ModuleConfig setter copies the whole configuration. Its
	// arguments and environment are not in it (wasi.go).
	base := wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	m := &module{rt: rt, compiled: compiled, base: base, ios: make(chan *runIO, keepRunIOs)}
	if reset {
		m.reuse = &instances{globals: globals}
	}
	return m, nil
}

func valueTypes(ts []api.ValueType) string {
	b := make([]byte, len(ts))
	for i, t := range ts {
		switch t {
		case api.ValueTypeI32:
			b[i] = byte(engine.I32)
		case api.ValueTypeI64:
			b[i] = byte(engine.I64)
		case api.ValueTypeF32:
			b[i] = byte(engine.F32)
		case api.ValueTypeF64:
			b[i] = byte(engine.F64)
		default:
			b[i] = '?'
		}
	}
	return string(b)
}

// goFunc binds fn. wazero's api.Memory has engine.Memory's methods with
// the same meaning (bounds-checked, views alias guest memory), so it is
// passed as it is: a hostcall allocates no adapter. A hostcall that
// returns after the run's context ended (a wait cut short by the
// wall-clock limit) stops the guest there, as wasmtime's epoch
// interruption does: otherwise the guest could act on the answer (send a
// response) before wazero notices the context.
func goFunc(fn engine.HostFunc) api.GoModuleFunc {
	return func(ctx context.Context, m api.Module, stack []uint64) {
		// wazero's Memory is a typed nil (a nil *wasm.MemoryInstance in a
		// non-nil interface) for a guest without a memory: calling it
		// would panic.
		var mem engine.Memory = noMemory{}
		if am := m.Memory(); am != nil && !reflect.ValueOf(am).IsNil() {
			mem = am
		}
		fn(ctx, mem, stack)
		select {
		case <-ctx.Done():
			panic(sys.NewExitError(sys.ExitCodeContextCanceled))
		default:
		}
	}
}

var _ engine.Memory = api.Memory(nil)

// noMemory is the memory of a guest without one: every access is refused.
type noMemory struct{}

func (noMemory) Read(off, n uint32) ([]byte, bool) { return nil, false }
func (noMemory) Write(off uint32, b []byte) bool   { return false }
func (noMemory) Size() uint32                      { return 0 }

type module struct {
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	mem      *memAllocator // nil: wazero's allocator
	base     wazero.ModuleConfig
	// ios keeps runIOs for the next runs (a bounded list, not a
	// sync.Pool, whose entries would keep a closed module reachable
	// until two collections later).
	ios chan *runIO
	// reuse keeps reset instances for the next sandboxes; nil when the
	// module's instances cannot be reset (reuse.go).
	reuse *instances
}

// keepRunIOs bounds a module's kept runIOs: about the sandboxes that
// start at once.
const keepRunIOs = 64

func (m *module) Close(ctx context.Context) error {
	if m.reuse != nil {
		m.reuse.close()
	}
	err := m.rt.Close(ctx)
	if m.mem != nil {
		m.mem.close()
	}
	return err
}

// Run instantiates an anonymous instance and calls _start; for a module
// whose instances are reused and a run with writers for stdout and stderr
// and no stdin (the server's sandboxes), it takes a reset instance instead
// when one is kept (runReused). Errors: those of engine.Module, and an
// invalid argument or environment variable (an empty name, a name with
// '=', a NUL).
func (m *module) Run(ctx context.Context, rc engine.RunConfig) error {
	vars, err := newRunVars(rc.Args, rc.Env)
	if err != nil {
		return err
	}
	ctx = context.WithValue(ctx, runVarsKey{}, vars)
	plain := rc.Stdin == nil && plainWriter(rc.Stdout) && plainWriter(rc.Stderr)
	if plain && m.reuse != nil && m.mem != nil {
		return m.runReused(ctx, rc, vars)
	}
	var cfg wazero.ModuleConfig
	if plain {
		// The server's sandboxes: a configuration made earlier, its
		// writers pointed at this run's.
		var rio *runIO
		select {
		case rio = <-m.ios:
		default:
			rio = newRunIO(m.base)
		}
		rio.ctx, rio.stdout.w, rio.stderr.w = ctx, rc.Stdout, rc.Stderr
		defer func() {
			rio.ctx, rio.stdout.w, rio.stderr.w = nil, nil, nil
			select {
			case m.ios <- rio:
			default:
			}
		}()
		cfg = rio.cfg
	} else {
		// wazero gives a file (edgehost run's terminal) and no writer
		// WASI semantics of their own, and stdin is rare: configured
		// for this run alone.
		cfg = m.base.WithNanosleep(func(ns int64) { sleep(ctx, ns) })
		if rc.Stdin != nil {
			cfg = cfg.WithStdin(rc.Stdin)
		}
		if rc.Stdout != nil {
			cfg = cfg.WithStdout(rc.Stdout)
		}
		if rc.Stderr != nil {
			cfg = cfg.WithStderr(rc.Stderr)
		}
	}
	ictx := ctx
	if m.mem != nil {
		ictx = experimental.WithMemoryAllocator(ctx, m.mem)
	}
	inst, err := m.rt.InstantiateModule(ictx, m.compiled, cfg)
	if err != nil {
		return runError(ctx, err)
	}
	defer inst.Close(context.WithoutCancel(ctx))
	_, err = inst.ExportedFunction("_start").Call(ctx)
	return runError(ctx, err)
}

// sleep is WASI's nanosleep for a run with context ctx: it ends early
// when ctx does.
func sleep(ctx context.Context, ns int64) {
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// runIO is a ModuleConfig made once and used by one run at a time (a
// wazero ModuleConfig setter copies the whole configuration): its stdout,
// stderr and nanosleep reach the run's writers and context through it.
// An instance keeps what its configuration gave it until it is closed,
// and a runIO is reused only after that.
type runIO struct {
	cfg            wazero.ModuleConfig
	ctx            context.Context
	stdout, stderr swapWriter
}

func newRunIO(base wazero.ModuleConfig) *runIO {
	r := &runIO{}
	r.cfg = base.WithNanosleep(func(ns int64) { sleep(r.ctx, ns) }).
		WithStdout(&r.stdout).
		WithStderr(&r.stderr)
	return r
}

// plainWriter reports whether wazero treats w as a plain writer: not
// nil (no output), not an *os.File (a file descriptor of its own).
func plainWriter(w io.Writer) bool {
	_, file := w.(*os.File)
	return w != nil && !file
}

// swapWriter writes to w; with w nil, it discards (as wazero does
// without a writer).
type swapWriter struct{ w io.Writer }

func (s *swapWriter) Write(p []byte) (int, error) {
	if s.w == nil {
		return len(p), nil
	}
	return s.w.Write(p)
}

func runError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case 0:
			return nil
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			if ctx.Err() != nil {
				return fmt.Errorf("%w: %v", engine.ErrTimeout, context.Cause(ctx))
			}
		}
		return &engine.ExitError{Code: exit.ExitCode()}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %v", engine.ErrTimeout, context.Cause(ctx))
	}
	return fmt.Errorf("guest trapped: %w", err)
}
