package hostcall

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// The fuzz targets below each call the hostcalls of one family (module),
// as FuzzHostcalls calls the whole table: arbitrary argument words against
// a small memory and a session holding a handle of every kind. No panic
// may escape or be hidden by bind, nothing may be written outside memory,
// and every status must be one abi.Hostcalls lists for the hostcall. CI
// runs each for a fixed time (.ci/run).

func FuzzHTTPReq(f *testing.F)        { fuzzFamily(f, abi.ModuleHTTPReq) }
func FuzzHTTPResp(f *testing.F)       { fuzzFamily(f, abi.ModuleHTTPResp) }
func FuzzHTTPBody(f *testing.F)       { fuzzFamily(f, abi.ModuleHTTPBody) }
func FuzzHTTPDownstream(f *testing.F) { fuzzFamily(f, abi.ModuleHTTPDownstream) }
func FuzzBackend(f *testing.F)        { fuzzFamily(f, abi.ModuleBackend) }
func FuzzStores(f *testing.F)         { fuzzFamily(f, abi.ModuleConfigStore, abi.ModuleDictionary) }
func FuzzAsyncIO(f *testing.F)        { fuzzFamily(f, abi.ModuleAsyncIO, abi.ModuleHTTPReq) }
func FuzzKVSecretStores(f *testing.F) { fuzzFamily(f, abi.ModuleKVStore, abi.ModuleSecretStore) }
func FuzzServices(f *testing.F) {
	fuzzFamily(f, abi.ModuleACL, abi.ModuleGeo, abi.ModuleDeviceDetection, abi.ModuleERL, abi.ModuleShielding)
}
func FuzzLogABIRuntime(f *testing.F) {
	fuzzFamily(f, abi.ModuleLog, abi.ModuleABI, abi.ModuleComputeRuntime)
}

// fuzzFamily fuzzes the hostcalls of modules, seeded with every call of
// them given zero, small, all-ones and plausible arguments.
func fuzzFamily(f *testing.F, modules ...string) {
	var table []Hostcall
	for _, hc := range Table() {
		if slices.Contains(modules, hc.Module) {
			table = append(table, hc)
		}
	}
	if len(table) == 0 {
		f.Fatalf("no hostcall of %v in the table", modules)
	}
	addSeeds(f, table)
	f.Fuzz(func(t *testing.T, data []byte) {
		env, _ := newTestEnv(t, EnvConfig{
			Policy:       &Policy{Disabled: true},
			ConfigStores: map[string]map[string]string{"settings": {"greeting": "hello"}},
			Dictionaries: map[string]map[string]string{"settings": {"greeting": "hello"}},
			Limits:       Limits{MaxBufferedBodyBytes: 1 << 16, MaxHeaderBytes: 1 << 12, MaxHandles: 64},
		})
		h := newHarness(t, harnessOpts{env: env, memSize: fuzzMemSize})
		ctx, cancel := context.WithTimeout(h.ctx, time.Second)
		defer cancel()
		h.ctx = ctx
		for _, fs := range fuzzStrings {
			copy(h.mem.b[fs.off:], fs.s)
		}
		// Handles 1 to 7, as FuzzHostcalls makes them.
		for _, k := range []handleKind{kindReq, kindResp, kindBody, kindLog, kindStore, kindDownReq} {
			h.newHandle(k)
		}
		h.writeBody(3, "body bytes", abi.BodyWriteBack)
		h.hdrSet(abi.ModuleHTTPResp, "header_insert", 2, "x-a", "v")
		for _, c := range decodeFuzz(table, data) {
			if st := h.call(c.hc.Module, c.hc.Name, c.args...); st > abi.Again {
				t.Fatalf("%s.%s%v returned %d, not a fastly_status", c.hc.Module, c.hc.Name, c.args, st)
			}
		}
	})
}
