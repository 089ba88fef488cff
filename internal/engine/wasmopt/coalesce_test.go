package wasmopt_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/edgehost/edgehost/internal/engine/wasmopt"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// memoryAfterInstantiation returns the linear memory of wasm right after
// instantiation (data segments applied, nothing run), and the number of
// data segments the module has.
func memoryAfterInstantiation(t *testing.T, wasm []byte) []byte {
	t.Helper()
	ctx := context.Background()
	// The interpreter: nothing is compiled, which keeps the test quick under -race.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	// Satisfy imports with empty host modules of the right shape.
	for mod, defs := range groupImports(compiled) {
		b := rt.NewHostModuleBuilder(mod)
		for _, d := range defs {
			_, name, _ := d.Import()
			b.NewFunctionBuilder().WithGoModuleFunction(nopFunc{}, d.ParamTypes(), d.ResultTypes()).Export(name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	m, err := rt.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	mem, ok := m.Memory().Read(0, m.Memory().Size())
	if !ok {
		t.Fatal("read memory")
	}
	return bytes.Clone(mem)
}

func TestCoalesceDataKeepsMemoryImage(t *testing.T) {
	wasm, err := guesttest.Build("examples/hello", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opt, err := wasmopt.CoalesceData(wasm)
	if err != nil {
		t.Fatal(err)
	}
	before, after := countData(t, wasm), countData(t, opt)
	t.Logf("data segments: %d before, %d after; module %d -> %d bytes", before, after, len(wasm), len(opt))
	if after >= before/10 {
		t.Fatalf("coalescing left %d of %d segments", after, before)
	}
	if !bytes.Equal(memoryAfterInstantiation(t, wasm), memoryAfterInstantiation(t, opt)) {
		t.Fatal("the coalesced module's initial memory differs from the original's")
	}
}

func TestCoalesceDataLeavesOtherModulesAlone(t *testing.T) {
	for name, wasm := range map[string][]byte{
		"no data":         guesttest.TrapModule(),
		"one segment":     guesttest.NopModule(),
		"memory, no data": guesttest.GrowModule(),
	} {
		opt, err := wasmopt.CoalesceData(wasm)
		if err != nil || !bytes.Equal(opt, wasm) {
			t.Errorf("%s: changed (%v)", name, err)
		}
	}
	if _, err := wasmopt.CoalesceData([]byte("nope")); err == nil {
		t.Error("not-wasm input gave no error")
	}
}
