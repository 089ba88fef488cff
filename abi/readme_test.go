//go:build !wasip1

package abi

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var updateREADME = flag.Bool("update", false, "rewrite the generated hostcall reference in README.md")

// paramNotation renders p in README.md's notation ("Conventions").
func paramNotation(p Param) string {
	n := "`" + p.Name + "` "
	switch p.Kind {
	case KindHandle:
		return n + "h(" + string(p.Handle) + ")"
	case KindHandleList:
		return n + "list of h(" + string(p.Handle) + ")"
	case KindScalar:
		t := p.Type
		switch p.Unit {
		case UnitEnum, UnitMask:
			return n + t + " (" + string(p.Unit) + ")"
		}
		return n + t + " " + string(p.Unit)
	case KindIn:
		return n + "str"
	case KindInStruct:
		return n + "*" + p.Type + " (" + itoa(p.Size) + " bytes, read)"
	case KindOut:
		switch {
		case p.Handle != "":
			return n + "*h(" + string(p.Handle) + ")"
		case p.Unit == UnitBytes && p.Type == "u8":
			return n + "*u8[" + itoa(p.Size) + "]"
		case p.Unit != "":
			return n + "*" + p.Type + " " + string(p.Unit)
		}
		return n + "*" + p.Type + " (" + itoa(p.Size) + " bytes)"
	case KindOutBuf:
		return n + "buf"
	case KindCursorBuf:
		return n + "mbuf"
	}
	return n + "?"
}

// referenceSection renders the per-hostcall reference of README.md from
// the description: one table per module, in Hostcalls order.
func referenceSection(hs []Hostcall) string {
	var modules []string
	byModule := map[string][]Hostcall{}
	for _, h := range hs {
		if _, ok := byModule[h.Module]; !ok {
			modules = append(modules, h.Module)
		}
		byModule[h.Module] = append(byModule[h.Module], h)
	}
	var b strings.Builder
	for _, m := range modules {
		impl := 0
		for _, h := range byModule[m] {
			if h.Implemented {
				impl++
			}
		}
		b.WriteString("\n### `" + m + "`\n\n")
		b.WriteString(itoa(uint32(len(byModule[m]))) + " functions, " + itoa(uint32(impl)) + " implemented.\n\n")
		b.WriteString("| function | Wasm | parameters | edgehost answers | imported by | what it does |\n|---|---|---|---|---|---|\n")
		for _, h := range byModule[m] {
			ps := make([]string, len(h.Params))
			for i, p := range h.Params {
				ps[i] = paramNotation(p)
			}
			answers := "stub: `unsupported`"
			if h.Implemented {
				var sts []string
				for _, st := range h.Statuses.List() {
					sts = append(sts, "`"+st.String()+"`")
				}
				answers = strings.Join(sts, ", ")
			}
			sdks := strings.ReplaceAll(h.SDKs.String(), "|", ", ")
			if h.SDKs == 0 {
				sdks = "(witx only)"
			}
			b.WriteString("| `" + h.Name + "` | `(" + h.WasmParams() + ")` | " + strings.Join(ps, ", ") + " | " +
				answers + " | " + sdks + " | " + h.Doc + " |\n")
		}
	}
	return b.String()
}

// TestREADMEReference keeps README.md's generated hostcall reference equal
// to Hostcalls. `go generate` (or -update) rewrites it.
func TestREADMEReference(t *testing.T) {
	const path = "README.md"
	const begin, end = "<!-- hostcalls:begin (generated from abi.Hostcalls by go generate; do not edit) -->\n", "<!-- hostcalls:end -->"
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the %q ... %q markers", begin, end)
	}
	want := referenceSection(Hostcalls()) + "\n"
	if got := s[i+len(begin) : j]; got != want {
		if *updateREADME {
			if err := os.WriteFile(path, []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Fatalf("README.md's hostcall reference is out of date; run go generate ./abi (go test ./abi -run TestREADMEReference -update)")
	}
}

// TestParamNotation pins the notation of each parameter kind.
func TestParamNotation(t *testing.T) {
	for _, tc := range []struct {
		p    Param
		want string
	}{
		{handleP("h", HandleRequest), "`h` h(request)"},
		{handlesP("hs", HandlePendingRequest), "`hs` list of h(pending_request)"},
		{scalarP("ttl", "u32", UnitSec), "`ttl` u32 s"},
		{scalarP("mode", "framing_headers_mode", UnitEnum), "`mode` framing_headers_mode (enum)"},
		{scalar64P("abi_version", "u64", UnitNumber), "`abi_version` u64 number"},
		{inP("name"), "`name` str"},
		{inStructP("options", "next_request_options", 8, 8), "`options` *next_request_options (8 bytes, read)"},
		{outHandleP("resp_out", HandleResponse), "`resp_out` *h(response)"},
		{outP("nwritten_out", "num_bytes", UnitBytes, 4), "`nwritten_out` *num_bytes bytes"},
		{outBytesP("addr_out", 16), "`addr_out` *u8[16]"},
		{outStructP("error_detail", "send_error_detail", 20, 4), "`error_detail` *send_error_detail (20 bytes)"},
		{outBufP("value"), "`value` buf"},
		{cursorBufP("buf"), "`buf` mbuf"},
	} {
		if got := paramNotation(tc.p); got != tc.want {
			t.Errorf("paramNotation(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
