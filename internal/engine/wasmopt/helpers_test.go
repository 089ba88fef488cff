package wasmopt_test

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

type nopFunc struct{}

func (nopFunc) Call(context.Context, api.Module, []uint64) {}

func groupImports(c wazero.CompiledModule) map[string][]api.FunctionDefinition {
	out := map[string][]api.FunctionDefinition{}
	for _, d := range c.ImportedFunctions() {
		mod, _, _ := d.Import()
		out[mod] = append(out[mod], d)
	}
	return out
}

// countData returns the number of data segments of wasm.
func countData(t *testing.T, wasm []byte) int {
	pos := 8
	for pos < len(wasm) {
		id := wasm[pos]
		size, n := binary.Uvarint(wasm[pos+1:])
		body := pos + 1 + n
		if id == 11 {
			c, _ := binary.Uvarint(wasm[body:])
			return int(c)
		}
		pos = body + int(size)
	}
	return 0
}
