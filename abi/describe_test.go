package abi

import (
	"strings"
	"testing"
)

var knownUnits = map[Unit]bool{
	UnitMs: true, UnitSec: true, UnitNs: true, UnitBytes: true, UnitMiB: true, UnitCount: true,
	UnitPerSecond: true, UnitIndex: true, UnitBool: true, UnitEnum: true, UnitMask: true,
	UnitHTTPStatus: true, UnitNumber: true,
}

var knownHandles = map[HandleKind]bool{
	HandleRequest: true, HandleResponse: true, HandleBody: true, HandlePendingRequest: true,
	HandleRequestPromise: true, HandleEndpoint: true, HandleDictionary: true, HandleConfigStore: true,
	HandleKVStore: true, HandleKVLookup: true, HandleKVInsert: true, HandleKVDelete: true, HandleKVList: true,
	HandleObjectStore: true, HandleObjectStoreLookup: true, HandleObjectStoreInsert: true,
	HandleObjectStoreDelete: true, HandleSecretStore: true, HandleSecret: true, HandleACL: true,
	HandleAsyncItem: true, HandleCache: true, HandleCacheBusy: true, HandleCacheReplace: true, HandleHTTPCache: true,
}

// checkParam returns what is wrong with p, or "".
func checkParam(p Param) string {
	switch {
	case p.Name == "":
		return "unnamed"
	case p.Wasm() == "":
		return "no Wasm lowering (kind " + p.Kind.String() + ", size " + itoa(p.Size) + ")"
	}
	handleOnly := func() string {
		if !knownHandles[p.Handle] {
			return "unknown handle kind " + string(p.Handle)
		}
		if p.Unit != "" || p.Type != string(p.Handle)+"_handle" {
			return "a handle with a unit or a type other than " + string(p.Handle) + "_handle"
		}
		return ""
	}
	switch p.Kind {
	case KindHandle, KindHandleList:
		if p.Size != 0 || p.Align != 0 {
			return "a handle with a size"
		}
		return handleOnly()
	case KindScalar:
		if !knownUnits[p.Unit] || p.Type == "" || p.Handle != "" || p.Align != 0 {
			return "a scalar needs a known unit and a type, and no handle or alignment"
		}
		wide := p.Type == "u64" || p.Type == "s64"
		if wide != (p.Size == 8) {
			return "type " + p.Type + " lowered to " + p.Wasm()
		}
	case KindIn, KindOutBuf, KindCursorBuf:
		if p.Handle != "" || p.Unit != "" || p.Type != "" || p.Size != 0 || p.Align != 0 {
			return "a " + p.Kind.String() + " carries no handle, unit, type or size"
		}
	case KindInStruct:
		if p.Type == "" || p.Handle != "" || p.Unit != "" {
			return "a struct pointer needs its record type and no handle or unit"
		}
		return checkLayout(p)
	case KindOut:
		if bad := checkLayout(p); bad != "" {
			return bad
		}
		switch {
		case p.Handle != "":
			if p.Size != 4 || p.Align != 4 {
				return "a handle out-pointer is 4 bytes, 4-aligned"
			}
			return handleOnly()
		case p.Unit != "":
			if !knownUnits[p.Unit] || p.Type == "" {
				return "unknown unit " + string(p.Unit) + " or no type"
			}
			if p.Unit == UnitBytes && p.Type == "u8" {
				if p.Align != 1 {
					return "raw bytes are 1-aligned"
				}
				return ""
			}
			if p.Align != p.Size || (p.Size != 2 && p.Size != 4 && p.Size != 8) {
				return "a number out-pointer is 2, 4 or 8 bytes, aligned to its size"
			}
			if want := map[string]uint32{"u16": 2, "u32": 4, "u64": 8}[p.Type]; want != 0 && want != p.Size {
				return "type " + p.Type + " is not " + itoa(p.Size) + " bytes"
			}
		default:
			if p.Type == "" {
				return "an out-pointer needs a handle kind, a unit or a record type"
			}
		}
	default:
		return "unknown kind " + p.Kind.String()
	}
	return ""
}

func checkLayout(p Param) string {
	if p.Size == 0 || p.Align == 0 || p.Align > 8 || p.Align&(p.Align-1) != 0 || p.Size%p.Align != 0 {
		return "size " + itoa(p.Size) + " / alignment " + itoa(p.Align) + " is not a layout"
	}
	return ""
}

// TestHostcallsWellFormed: every description is unique, in a fastly_*
// module, documented, with named parameters whose kind, unit, size and
// alignment agree with each other and with the Wasm lowering, and with the
// statuses its implementation state allows.
func TestHostcallsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, h := range Hostcalls() {
		key := h.Module + "." + h.Name
		if seen[key] {
			t.Errorf("%s described twice", key)
		}
		seen[key] = true
		if !strings.HasPrefix(h.Module, ModulePrefix) || len(h.Module) == len(ModulePrefix) || h.Name == "" {
			t.Errorf("%q: want a name in a %s* module", key, ModulePrefix)
		}
		if h.Doc == "" || !strings.HasSuffix(h.Doc, ".") || strings.Contains(h.Doc, "\n") {
			t.Errorf("%s: doc %q is not one sentence", key, h.Doc)
		}
		if h.SDKs&^(GoSDK|JSSDK) != 0 {
			t.Errorf("%s: unknown SDK bits %#x", key, h.SDKs)
		}
		names := map[string]bool{}
		for i, p := range h.Params {
			if names[p.Name] {
				t.Errorf("%s: parameter %q twice", key, p.Name)
			}
			names[p.Name] = true
			if bad := checkParam(p); bad != "" {
				t.Errorf("%s: parameter %d (%s): %s", key, i, p.Name, bad)
			}
		}
		// Inputs come first, then what the host writes, as the witx
		// lowering puts the results last.
		out := false
		for _, p := range h.Params {
			isOut := p.Kind == KindOut || p.Kind == KindOutBuf || p.Kind == KindCursorBuf
			if out && !isOut {
				t.Errorf("%s: input %s after an output", key, p.Name)
			}
			out = out || isOut
		}
		if h.Statuses == 0 || h.Statuses>>(Again+1) != 0 {
			t.Errorf("%s: statuses %v outside ok..again", key, h.Statuses.List())
		}
		if !h.Implemented && h.Statuses != StatusesOf(Unsupported) {
			t.Errorf("%s: not implemented, so its stub answers only unsupported, not %v", key, h.Statuses.List())
		}
		if h.Implemented && h.Statuses.Has(Unsupported) && len(h.Statuses.List()) == 1 {
			t.Errorf("%s: implemented, but described as answering only unsupported", key)
		}
	}
}

// TestHostcallsAgreeWithFuncs: the implemented descriptions are exactly
// Funcs, with the same Wasm signatures.
func TestHostcallsAgreeWithFuncs(t *testing.T) {
	desc := map[string]Hostcall{}
	for _, h := range Hostcalls() {
		desc[h.Module+"."+h.Name] = h
	}
	inFuncs := map[string]bool{}
	for _, f := range Funcs() {
		key := f.Module + "." + f.Name
		inFuncs[key] = true
		h, ok := desc[key]
		switch {
		case !ok:
			t.Errorf("%s is in Funcs but not described", key)
		case !h.Implemented:
			t.Errorf("%s is in Funcs but described as not implemented", key)
		case h.Func() != f:
			t.Errorf("%s: described as (%s), Funcs says (%s)", key, h.WasmParams(), f.Params)
		}
	}
	for key, h := range desc {
		if h.Implemented && !inFuncs[key] {
			t.Errorf("%s is described as implemented but is not in Funcs", key)
		}
	}
}

// TestHostcallsSDKCounts: both SDKs' import sets are fully described (each
// imports well over 150 hostcalls).
func TestHostcallsSDKCounts(t *testing.T) {
	var goSDK, jsSDK, witxOnly, implemented int
	for _, h := range Hostcalls() {
		if h.SDKs&GoSDK != 0 {
			goSDK++
		}
		if h.SDKs&JSSDK != 0 {
			jsSDK++
		}
		if h.SDKs == 0 {
			witxOnly++
		}
		if h.Implemented {
			implemented++
		}
	}
	t.Logf("described: %d Go SDK imports, %d JS SDK imports, %d witx only, %d implemented", goSDK, jsSDK, witxOnly, implemented)
	if goSDK <= 150 || jsSDK <= 150 {
		t.Errorf("Go SDK imports %d, JS SDK imports %d described; each SDK imports over 150", goSDK, jsSDK)
	}
}

// TestHostcallsKnownSignatures spot-checks lowerings that are easy to get
// wrong: results as trailing out-pointers, a record passed by value as a
// pointer, handle lists, 64-bit scalars and out-values.
func TestHostcallsKnownSignatures(t *testing.T) {
	desc := map[string]Hostcall{}
	for _, h := range Hostcalls() {
		desc[h.Module+"."+h.Name] = h
	}
	for _, tc := range []struct {
		key, params string
		sdks        SDK
	}{
		{"fastly_abi.init", "I", GoSDK | JSSDK},
		{"fastly_http_req.send_v2", "iiiiiii", GoSDK},
		{"fastly_http_req.send", "iiiiii", JSSDK},
		{"fastly_http_req.pending_req_select", "iiiii", JSSDK},
		{"fastly_http_req.downstream_client_ip_addr", "ii", 0},
		{"fastly_async_io.select", "iiii", JSSDK},
		{"fastly_cache.get_body", "iiii", GoSDK | JSSDK},
		{"fastly_kv_store.open", "iii", GoSDK | JSSDK},
		{"fastly_kv_store.lookup_wait_v2", "iiiiiii", GoSDK | JSSDK},
		{"fastly_erl.check_rate", "iiiiiiiiiii", GoSDK | JSSDK},
		{"fastly_compute_runtime.get_vcpu_ms", "i", GoSDK | JSSDK},
		{"fastly_uap.parse", "iiiiiiiiiiiiii", 0},
		{"fastly_http_downstream.next_request", "iii", GoSDK | JSSDK},
	} {
		h, ok := desc[tc.key]
		if !ok {
			t.Errorf("%s not described", tc.key)
			continue
		}
		if h.WasmParams() != tc.params || h.SDKs != tc.sdks {
			t.Errorf("%s: (%s) imported by %v, want (%s) by %v", tc.key, h.WasmParams(), h.SDKs, tc.params, tc.sdks)
		}
	}
	// The struct sizes agree with the layouts this package defines.
	for _, tc := range []struct {
		key  string
		idx  int
		size uint32
	}{
		{"fastly_http_req.register_dynamic_backend", 3, CfgSize},
		{"fastly_http_req.send_v3", 3, SendErrDetailSize},
		{"fastly_http_req.pending_req_wait_v2", 1, SendErrDetailSize},
	} {
		if p := desc[tc.key].Params[tc.idx]; p.Size != tc.size {
			t.Errorf("%s parameter %s: %d bytes, want %d", tc.key, p.Name, p.Size, tc.size)
		}
	}
	if p := desc["fastly_cache.get_body"].Params[2]; p.Kind != KindInStruct || p.Size != 16 || p.Align != 8 {
		t.Errorf("fastly_cache.get_body options: %+v, want a pointer to a 16-byte 8-aligned record", p)
	}
}

func TestStatusSet(t *testing.T) {
	s := StatusesOf(OK, Badf, Again)
	if !s.Has(OK) || !s.Has(Badf) || !s.Has(Again) || s.Has(Inval) || s.Has(Status(40)) {
		t.Errorf("StatusesOf(ok, badf, again) = %#x", s)
	}
	if got := s.List(); len(got) != 3 || got[0] != OK || got[1] != Badf || got[2] != Again {
		t.Errorf("List() = %v", got)
	}
	if got := (GoSDK | JSSDK).String(); got != "go|js" {
		t.Errorf("SDK string %q", got)
	}
	if got := SDK(0).String(); got != "none" {
		t.Errorf("SDK(0) string %q", got)
	}
}
