package wasmopt_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/edgehost/edgehost/internal/engine/wasmopt"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// runChecked runs the _start of wasm rewritten by InsertInterruptChecks,
// with a check import that grants budget steps and stops the guest (exit
// code 99) at its stopAt-th call. It returns the calls made and _start's
// error.
func runChecked(t *testing.T, wasm []byte, budget uint32, stopAt int) (int, error) {
	t.Helper()
	ctx := context.Background()
	out, ok, err := wasmopt.InsertInterruptChecks(wasm)
	if err != nil || !ok {
		t.Fatalf("InsertInterruptChecks: ok %v, %v", ok, err)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(64))
	defer rt.Close(ctx)
	calls := 0
	check := func(ctx context.Context, _ api.Module, stack []uint64) {
		calls++
		if calls == stopAt {
			panic(sys.NewExitError(99))
		}
		stack[0] = uint64(budget)
	}
	if _, err := rt.NewHostModuleBuilder(wasmopt.InterruptModule).NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(check), nil, []api.ValueType{api.ValueTypeI32}).
		Export(wasmopt.InterruptName).Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.ExportedFunction("_start").Call(ctx)
	return calls, err
}

func exitCode(err error) (uint32, bool) {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), true
	}
	return 0, false
}

func TestInsertInterruptChecksStopsGuests(t *testing.T) {
	for name, tc := range map[string]struct {
		wasm   []byte
		budget uint32
	}{
		// A loop that never calls anything: checked at each iteration.
		"infinite loop": {guesttest.LoopModule(), 1000},
		// _start calls itself with no loop: checked at each entry, so
		// the guest is stopped before its stack overflows.
		"infinite recursion": {moduleWithCode([]byte{0x10, 0x00}), 10},
	} {
		t.Run(name, func(t *testing.T) {
			calls, err := runChecked(t, tc.wasm, tc.budget, 4)
			if code, ok := exitCode(err); !ok || code != 99 || calls != 4 {
				t.Fatalf("calls %d, error %v: want the 4th check to stop the guest", calls, err)
			}
		})
	}
}

func TestInsertInterruptChecksKeepsMeaning(t *testing.T) {
	// GrowModule grows its memory in a loop until the cap, then traps:
	// with the checks it still does exactly that.
	calls, err := runChecked(t, guesttest.GrowModule(), 1<<14, -1)
	if _, isExit := exitCode(err); err == nil || isExit || calls == 0 {
		t.Fatalf("calls %d, error %v: want the trap after the memory cap", calls, err)
	}
	calls, err = runChecked(t, guesttest.NopModule(), 1<<14, -1)
	if err != nil || calls != 1 {
		t.Fatalf("nop: calls %d, error %v", calls, err)
	}
}

func TestInsertInterruptChecksGoModule(t *testing.T) {
	wasm, err := guesttest.Build("examples/hello", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out, ok, err := wasmopt.InsertInterruptChecks(wasm)
	if err != nil || !ok {
		t.Fatalf("ok %v, %v", ok, err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	before, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	after, err := rt.CompileModule(ctx, out)
	if err != nil {
		t.Fatalf("the rewritten module does not compile: %v", err)
	}
	if n, m := len(before.ImportedFunctions()), len(after.ImportedFunctions()); m != n+1 {
		t.Errorf("imported functions: %d before, %d after", n, m)
	}
	for name, def := range before.ExportedFunctions() {
		got := after.ExportedFunctions()[name]
		if got == nil || got.DebugName() != def.DebugName() {
			t.Errorf("export %s: %v, want the function named %s", name, got, def.DebugName())
		}
	}
	// A rewritten module imports InterruptModule: it is left alone.
	again, ok, err := wasmopt.InsertInterruptChecks(out)
	if err != nil || ok || !bytes.Equal(again, out) {
		t.Errorf("second rewrite: ok %v, %v", ok, err)
	}
}

// moduleWithCode is guesttest's hand-made module shape: one function,
// _start, whose body is code.
func moduleWithCode(code []byte) []byte {
	body := append([]byte{0x00}, code...)
	body = append(body, 0x0b)
	b := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	b = append(b, 1, 4, 0x01, 0x60, 0x00, 0x00) // type: () -> ()
	b = append(b, 3, 2, 0x01, 0x00)             // func 0: type 0
	b = append(b, 7, 10, 0x01, 0x06)
	b = append(b, "_start"...)
	b = append(b, 0x00, 0x00)
	b = append(b, 10, byte(len(body)+2), 0x01, byte(len(body)))
	return append(b, body...)
}
