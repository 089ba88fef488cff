package wazeroengine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The WASI module is wazero's, except for the four functions that give a
// guest its arguments and environment: those read the sandbox's own
// (engine.RunConfig's Args and Env) from its run's context. wazero keeps
// them in the ModuleConfig instead, where each WithEnv copies the whole
// configuration (15 µs of a 175 µs TinyGo sandbox; host/bench/README.md)
// and a configuration cannot be shared between sandboxes whose
// environments differ.
//
// The functions that can change the WASI state wazero keeps per instance
// (changesWASIState) are wazero's own, called through a function that
// first notes in the run's context that the run called one: an instance
// whose sandbox did is not reused (reuse.go).

// errnoFault is WASI's errno `fault`: an out-pointer outside linear memory.
const errnoFault = 21

// runVars is one sandbox's arguments and environment, checked as
// wazero's ModuleConfig checks them, and whether the sandbox called a
// WASI function that can change its instance's WASI state.
type runVars struct {
	args []string
	env  [][2]string
	// wasiChanged is set by the functions changesWASIState names, before
	// they run. Only the run's own goroutine calls them.
	wasiChanged bool
}

type runVarsKey struct{}

// newRunVars checks args and env. Errors, as wazero's: an empty key, a
// key with '=', a NUL anywhere.
func newRunVars(args []string, env [][2]string) (*runVars, error) {
	for _, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, errors.New("args invalid: contains a NUL character")
		}
	}
	for _, kv := range env {
		switch {
		case kv[0] == "":
			return nil, errors.New("environ invalid: empty key")
		case strings.IndexByte(kv[0], '=') >= 0:
			return nil, fmt.Errorf("environ invalid: key %q contains '='", kv[0])
		case strings.IndexByte(kv[0], 0) >= 0 || strings.IndexByte(kv[1], 0) >= 0:
			return nil, fmt.Errorf("environ invalid: %q contains a NUL character", kv[0])
		}
	}
	return &runVars{args: args, env: env}, nil
}

func runVarsFrom(ctx context.Context) *runVars {
	if v, _ := ctx.Value(runVarsKey{}).(*runVars); v != nil {
		return v
	}
	return &runVars{}
}

func argLen(a string) int           { return len(a) }
func putArg(b []byte, a string) int { return copy(b, a) }
func envLen(kv [2]string) int       { return len(kv[0]) + 1 + len(kv[1]) }
func putEnv(b []byte, kv [2]string) int {
	n := copy(b, kv[0])
	b[n] = '='
	return n + 1 + copy(b[n+1:], kv[1])
}

// changesWASIState reports whether the WASI function name (wazero's) can
// change the WASI state wazero keeps per instance, given a sandbox's
// configuration: stdin, stdout and stderr only, no preopened directory or
// socket. That state is the file table and its files. The table changes
// with fd_close and fd_renumber, and with path_open and sock_accept (which
// open files only from a preopen, so they fail here; named all the same).
// A file changes with fd_fdstat_set_flags (its append and non-blocking
// flags; wazero's stdio files keep none, named all the same) and with the
// reads, writes, seeks and directory reads that move a file's position,
// which a stdio file does not have: the files a run can find at its start
// are stdio, and any other was opened by a call named here.
func changesWASIState(name string) bool {
	switch name {
	case "fd_close", "fd_renumber", "fd_fdstat_set_flags", "path_open", "sock_accept":
		return true
	}
	return false
}

// instantiateWASI instantiates WASI preview 1 in rt with edgehost's
// argument and environment functions, and wazero's functions that
// changesWASIState names called through one noting the call in the run's
// runVars. Errors: wazero's, and one of those functions is not an
// api.GoModuleFunction.
func instantiateWASI(ctx context.Context, rt wazero.Runtime) error {
	// wazero's functions, from their definitions in a compiled copy of
	// its module: a function definition gives a host function's Go code.
	orig := rt.NewHostModuleBuilder(wasiModule)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(orig)
	compiled, err := orig.Compile(ctx)
	if err != nil {
		return err
	}
	defs := compiled.ExportedFunctions()
	if err := compiled.Close(ctx); err != nil {
		return err
	}
	b := rt.NewHostModuleBuilder(wasiModule)
	wasi_snapshot_preview1.NewFunctionExporter().ExportFunctions(b)
	for name, def := range defs {
		if !changesWASIState(name) {
			continue
		}
		fn, ok := def.GoFunction().(api.GoModuleFunction)
		if !ok {
			return fmt.Errorf("WASI %s: wazero's function is a %T, not an api.GoModuleFunction", name, def.GoFunction())
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, st []uint64) {
				if v, _ := ctx.Value(runVarsKey{}).(*runVars); v != nil {
					v.wasiChanged = true
				}
				fn.Call(ctx, m, st)
			}), def.ParamTypes(), def.ResultTypes()).
			WithParameterNames(def.ParamNames()...).
			WithResultNames(def.ResultNames()...).
			Export(name)
	}
	i32 := api.ValueTypeI32
	for _, f := range []struct {
		name     string
		fn       api.GoModuleFunc
		in1, in2 string
	}{
		{"args_get", func(ctx context.Context, m api.Module, st []uint64) {
			st[0] = putStrings(m, runVarsFrom(ctx).args, st, argLen, putArg)
		}, "argv", "argv_buf"},
		{"args_sizes_get", func(ctx context.Context, m api.Module, st []uint64) {
			st[0] = putSizes(m, runVarsFrom(ctx).args, st, argLen)
		}, "result.argc", "result.argv_len"},
		{"environ_get", func(ctx context.Context, m api.Module, st []uint64) {
			st[0] = putStrings(m, runVarsFrom(ctx).env, st, envLen, putEnv)
		}, "environ", "environ_buf"},
		{"environ_sizes_get", func(ctx context.Context, m api.Module, st []uint64) {
			st[0] = putSizes(m, runVarsFrom(ctx).env, st, envLen)
		}, "result.environc", "result.environv_len"},
	} {
		b.NewFunctionBuilder().
			WithGoModuleFunction(f.fn, []api.ValueType{i32, i32}, []api.ValueType{i32}).
			WithParameterNames(f.in1, f.in2).
			WithResultNames("errno").
			Export(f.name)
	}
	_, err = b.Instantiate(ctx)
	return err
}

// putSizes is args_sizes_get and environ_sizes_get: the count of vals at
// st[0], the bytes they take with their NULs at st[1] (size is a value's
// length without its NUL).
func putSizes[T any](m api.Module, vals []T, st []uint64, size func(T) int) uint64 {
	n := 0
	for _, v := range vals {
		n += size(v) + 1
	}
	mem := m.Memory()
	if mem == nil || !mem.WriteUint32Le(uint32(st[0]), uint32(len(vals))) || !mem.WriteUint32Le(uint32(st[1]), uint32(n)) {
		return errnoFault
	}
	return 0
}

// putStrings is args_get and environ_get: an offset per value at st[0],
// the NUL-terminated values from st[1]. Nothing is written unless both
// ranges are inside linear memory.
func putStrings[T any](m api.Module, vals []T, st []uint64, size func(T) int, put func([]byte, T) int) uint64 {
	mem := m.Memory()
	if mem == nil {
		return errnoFault
	}
	offsets, at := uint32(st[0]), uint32(st[1])
	n := 0
	for _, v := range vals {
		n += size(v) + 1
	}
	offs, ok := mem.Read(offsets, uint32(4*len(vals)))
	if !ok {
		return errnoFault
	}
	buf, ok := mem.Read(at, uint32(n))
	if !ok {
		return errnoFault
	}
	j := 0
	for i, v := range vals {
		binary.LittleEndian.PutUint32(offs[4*i:], at+uint32(j))
		j += put(buf[j:], v)
		buf[j] = 0
		j++
	}
	return 0
}
