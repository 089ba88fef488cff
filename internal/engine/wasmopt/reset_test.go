package wasmopt_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/edgehost/edgehost/internal/engine/wasmopt"
)

// resetModule assembles a module from its sections (id, body), in order.
func resetModule(secs ...[]byte) []byte {
	m := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	for _, s := range secs {
		m = append(m, s[0], byte(len(s)-1))
		m = append(m, s[1:]...)
	}
	return m
}

// The sections the cases below combine. The code section's one function
// (type 0, () -> ()) runs body.
var (
	secType    = []byte{1, 0x01, 0x60, 0x00, 0x00}
	secFunc    = []byte{3, 0x01, 0x00}
	secTable   = []byte{4, 0x01, 0x70, 0x00, 0x01}
	secMemory  = []byte{5, 0x01, 0x00, 0x01}
	secGlobals = []byte{6, 0x02, 0x7f, 0x01, 0x41, 0x2a, 0x0b, 0x7e, 0x00, 0x42, 0x05, 0x0b} // mut i32 42, i64 5
	secExport  = []byte{7, 0x01, 0x01, 'f', 0x00, 0x00}
	secStart   = []byte{8, 0x00}
)

func secCode(body ...byte) []byte {
	b := append([]byte{0x00}, body...)
	b = append(b, 0x0b)
	return append([]byte{10, 0x01, byte(len(b))}, b...)
}

func TestExportGlobalsForReset(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		wasm  []byte
		ok    bool
		names []string
	}{
		{"globals, no exports", resetModule(secType, secFunc, secMemory, secGlobals, secCode()), true,
			[]string{wasmopt.ResetGlobalPrefix + "0"}},
		{"globals and exports", resetModule(secType, secFunc, secMemory, secGlobals, secExport, secCode(0x23, 0x00, 0x1a)), true,
			[]string{wasmopt.ResetGlobalPrefix + "0"}},
		{"no mutable global", resetModule(secType, secFunc, secCode()), true, nil},
		{"passive data", resetModule(secType, secFunc, secMemory, secCode(), []byte{11, 0x01, 0x01, 0x01, 'x'}), true, nil},
		{"start function", resetModule(secType, secFunc, secGlobals, secStart, secCode()), false, nil},
		{"active data", resetModule(secType, secFunc, secMemory, secCode(), []byte{11, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x01, 'x'}), false, nil},
		{"table.set", resetModule(secType, secFunc, secTable, secCode(0x41, 0x00, 0xd0, 0x70, 0x26, 0x00)), false, nil},
		{"table.grow", resetModule(secType, secFunc, secTable, secCode(0xd0, 0x70, 0x41, 0x01, 0xfc, 0x0f, 0x00, 0x1a)), false, nil},
		{"data.drop", resetModule(secType, secFunc, secMemory, []byte{12, 0x01}, secCode(0xfc, 0x09, 0x00), []byte{11, 0x01, 0x01, 0x01, 'x'}), false, nil},
		{"imported global", resetModule(secType, []byte{2, 0x01, 0x01, 'm', 0x01, 'g', 0x03, 0x7f, 0x00}, secFunc, secCode()), false, nil},
		{"mutable funcref global", resetModule(secType, secFunc, []byte{6, 0x01, 0x70, 0x01, 0xd0, 0x70, 0x0b}, secCode()), false, nil},
		{"export with the prefix", resetModule(secType, secFunc, secGlobals,
			append([]byte{7, 0x01, byte(len(wasmopt.ResetGlobalPrefix) + 1)},
				append([]byte(wasmopt.ResetGlobalPrefix+"0"), 0x03, 0x00)...), secCode()), false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vrt := wazero.NewRuntime(ctx)
			defer vrt.Close(ctx)
			if _, err := vrt.CompileModule(ctx, tc.wasm); err != nil {
				t.Fatalf("the case's module does not compile: %v", err)
			}
			out, names, ok, err := wasmopt.ExportGlobalsForReset(tc.wasm)
			if err != nil || ok != tc.ok || !slices.Equal(names, tc.names) {
				t.Fatalf("ExportGlobalsForReset = names %q, ok %v, %v; want %q, %v", names, ok, err, tc.names, tc.ok)
			}
			// RewriteForReuse decides the same (it adds the interrupt
			// counter, a mutable global of its own).
			if _, iok, _, rok, err := wasmopt.RewriteForReuse(tc.wasm); err != nil || !iok || rok != tc.ok {
				t.Errorf("RewriteForReuse: interrupt checks %v, resettable %v, %v; want true, %v", iok, rok, err, tc.ok)
			}
			if !ok {
				return
			}
			if got := wasmopt.ResetExports(out); !slices.Equal(got, tc.names) {
				t.Errorf("ResetExports = %q, want %q", got, tc.names)
			}
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			m, err := rt.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithStartFunctions())
			if err != nil {
				t.Fatalf("rewritten module: %v", err)
			}
			for _, n := range tc.names {
				g, ok := m.ExportedGlobal(n).(api.MutableGlobal)
				if !ok || g.Get() != 42 {
					t.Errorf("export %s: %v, want the mutable global holding 42", n, m.ExportedGlobal(n))
				}
			}
			if bytes.Contains(tc.wasm, secExport[1:]) && m.ExportedFunction("f") == nil {
				t.Error("the module's own export is gone")
			}
		})
	}
}
