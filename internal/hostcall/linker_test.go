package hostcall

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/engine"
)

// TestTableMatchesABI: Table() builds (it panics on an implementation
// without a signature or implemented twice), takes every signature from
// abi.Funcs unchanged, and implements every function abi.Funcs lists.
func TestTableMatchesABI(t *testing.T) {
	var table []Hostcall
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("Table() panicked: %v", r)
			}
		}()
		table = Table()
	}()
	funcs := map[[2]string]abi.Func{}
	for _, f := range abi.Funcs() {
		k := [2]string{f.Module, f.Name}
		if _, dup := funcs[k]; dup {
			t.Errorf("abi.Funcs lists %s.%s twice", f.Module, f.Name)
		}
		funcs[k] = f
		if strings.Trim(f.Params, "iI") != "" {
			t.Errorf("abi.Funcs %s.%s has parameter letters %q", f.Module, f.Name, f.Params)
		}
	}
	seen := map[[2]string]bool{}
	for _, hc := range table {
		k := [2]string{hc.Module, hc.Name}
		if seen[k] {
			t.Errorf("%s.%s is in the table twice", hc.Module, hc.Name)
		}
		seen[k] = true
		f, ok := funcs[k]
		if !ok {
			t.Errorf("%s.%s has no signature in abi.Funcs", hc.Module, hc.Name)
		} else if f != hc.Func {
			t.Errorf("%s.%s signature %+v, abi.Funcs says %+v", hc.Module, hc.Name, hc.Func, f)
		}
		if !strings.HasPrefix(hc.Module, abi.ModulePrefix) {
			t.Errorf("%s.%s is not in a %s module", hc.Module, hc.Name, abi.ModulePrefix)
		}
		if hc.fn == nil {
			t.Errorf("%s.%s has no implementation", hc.Module, hc.Name)
		}
	}
	for k := range funcs {
		if !seen[k] {
			t.Errorf("abi.Funcs lists %s.%s but the table does not implement it", k[0], k[1])
		}
	}
}

// TestTableMatchesDescription: abi.Hostcalls marks as implemented exactly
// the hostcalls of Table(), with Table's signatures.
func TestTableMatchesDescription(t *testing.T) {
	table := map[[2]string]Hostcall{}
	for _, hc := range Table() {
		table[[2]string{hc.Module, hc.Name}] = hc
	}
	described := map[[2]string]bool{}
	for _, d := range abi.Hostcalls() {
		k := [2]string{d.Module, d.Name}
		described[k] = true
		hc, implemented := table[k]
		switch {
		case d.Implemented && !implemented:
			t.Errorf("abi.Hostcalls marks %s.%s implemented; Table() does not implement it", d.Module, d.Name)
		case !d.Implemented && implemented:
			t.Errorf("Table() implements %s.%s; abi.Hostcalls marks it not implemented", d.Module, d.Name)
		case implemented && d.WasmParams() != hc.Params:
			t.Errorf("%s.%s: Table() has (%s), abi.Hostcalls (%s)", d.Module, d.Name, hc.Params, d.WasmParams())
		}
	}
	for k := range table {
		if !described[k] {
			t.Errorf("Table() implements %s.%s, which abi.Hostcalls does not describe", k[0], k[1])
		}
	}
}

func TestLinkerErrors(t *testing.T) {
	link := NewLinker(slog.New(&logSink{})).Link()
	for _, tc := range []struct {
		name  string
		imp   engine.Import
		wants []string // substrings of the error
	}{
		{"unknown-module", engine.Import{Module: "env", Name: "do_thing", Signature: engine.Signature{Params: "i", Results: "i"}},
			[]string{"env", "do_thing"}},
		{"prefix-lookalike", engine.Import{Module: "fastlyx", Name: "f", Signature: engine.Signature{Results: "i"}},
			[]string{"fastlyx", "f"}},
		{"wasi-is-not-ours", engine.Import{Module: abi.ModuleWASI, Name: "fd_write", Signature: engine.Signature{Params: "iiii", Results: "i"}},
			[]string{abi.ModuleWASI, "fd_write"}},
		{"wrong-params", engine.Import{Module: abi.ModuleABI, Name: "init", Signature: engine.Signature{Params: "i", Results: "i"}},
			[]string{"fastly_abi.init", "(i)->(i)", "(I)->(i)"}},
		{"wrong-results", engine.Import{Module: abi.ModuleHTTPReq, Name: "new", Signature: engine.Signature{Params: "i", Results: ""}},
			[]string{"fastly_http_req.new"}},
		{"extra-param", engine.Import{Module: abi.ModuleHTTPBody, Name: "write", Signature: engine.Signature{Params: "iiiiii", Results: "i"}},
			[]string{"fastly_http_body.write"}},
		{"i64-for-i32", engine.Import{Module: abi.ModuleHTTPResp, Name: "status_set", Signature: engine.Signature{Params: "iI", Results: "i"}},
			[]string{"fastly_http_resp.status_set"}},
		// Functions edgehost stubs are checked against abi.Hostcalls too.
		{"stub-wrong-params", engine.Import{Module: "fastly_object_store", Name: "open", Signature: engine.Signature{Params: "ii", Results: "i"}},
			[]string{"fastly_object_store.open", "(ii)->(i)", "(iii)->(i)"}},
		{"stub-wrong-results", engine.Import{Module: "fastly_compute_runtime", Name: "get_vcpu_ms", Signature: engine.Signature{Params: "i", Results: ""}},
			[]string{"fastly_compute_runtime.get_vcpu_ms", "(i)->()", "(i)->(i)"}},
		{"stub-i32-for-i64", engine.Import{Module: "fastly_cache", Name: "get_body", Signature: engine.Signature{Params: "iiI", Results: "i"}},
			[]string{"fastly_cache.get_body", "(iiI)->(i)", "(iiii)->(i)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn, err := link(tc.imp)
			if err == nil || fn != nil {
				t.Fatalf("link(%v) = %v, %v; want an error", tc.imp, fn != nil, err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestLinkerStub: an unimplemented fastly_* import links to a stub with its
// own signature that returns unsupported, and logs its first call once per
// module (per Link call).
func TestLinkerStub(t *testing.T) {
	sink := &logSink{}
	l := NewLinker(slog.New(sink))
	env, _ := newTestEnv(t, EnvConfig{})
	s := env.NewSession(context.Background(), "stub-req", nil)
	defer s.Close()
	ctx := WithSession(context.Background(), s)
	mem := newFakeMem(1024)

	link := l.Link()
	for _, tc := range []struct {
		imp        engine.Import
		stackLen   int
		wantStatus bool
	}{
		{engine.Import{Module: "fastly_http_req", Name: "pending_req_header_remove", Signature: engine.Signature{Params: "iiii", Results: "i"}}, 4, true},
		{engine.Import{Module: "fastly_object_store", Name: "open", Signature: engine.Signature{Params: "iii", Results: "i"}}, 3, true},
		{engine.Import{Module: "fastly_kv_store", Name: "not_described", Signature: engine.Signature{Params: "ii", Results: "iI"}}, 2, true},
		{engine.Import{Module: "fastly_http_req", Name: "not_a_real_call", Signature: engine.Signature{Params: "", Results: "iii"}}, 3, true},
		{engine.Import{Module: "fastly_compute_runtime", Name: "not_described", Signature: engine.Signature{Params: "i", Results: ""}}, 1, false},
		{engine.Import{Module: "fastly_x", Name: "nothing", Signature: engine.Signature{}}, 0, false},
	} {
		fn, err := link(tc.imp)
		if err != nil {
			t.Fatalf("link(%v): %v", tc.imp, err)
		}
		for call := range 3 {
			stack := make([]uint64, tc.stackLen)
			for i := range stack {
				stack[i] = 0xDEADBEEF
			}
			fn(ctx, mem, stack)
			if tc.wantStatus && abi.Status(stack[0]) != abi.Unsupported {
				t.Fatalf("%v call %d: status %d, want unsupported", tc.imp, call, stack[0])
			}
			for i := range min(len(tc.imp.Results), len(stack)) {
				if i > 0 && stack[i] != 0 {
					t.Fatalf("%v: result %d = %#x, want 0", tc.imp, i, stack[i])
				}
			}
			if len(tc.imp.Results) == 0 && len(stack) > 0 && stack[0] != 0xDEADBEEF {
				t.Fatalf("%v without results wrote its stack", tc.imp)
			}
		}
	}
	count := func(name string) int {
		n := 0
		for _, r := range sink.records() {
			if r.attrs["hostcall"] == name {
				n++
				if r.attrs["request_id"] != "stub-req" {
					t.Errorf("stub log line without the request id: %+v", r)
				}
			}
		}
		return n
	}
	if n := count("fastly_http_req.pending_req_header_remove"); n != 1 {
		t.Fatalf("stub logged %d times for 3 calls, want once", n)
	}
	// A described function's stub logs its description; another does not.
	docs := map[string]string{}
	for _, d := range abi.Hostcalls() {
		docs[d.Module+"."+d.Name] = d.Doc
	}
	for _, r := range sink.records() {
		name := r.attrs["hostcall"]
		if got := r.attrs["doc"]; got != docs[name] {
			t.Errorf("stub log for %s has doc %q, want %q", name, got, docs[name])
		}
	}
	if count("fastly_object_store.open") != 1 || docs["fastly_object_store.open"] == "" {
		t.Errorf("no stub log line for the described fastly_object_store.open")
	}
	// A new module (a new Link) logs again.
	fn, _ := l.Link()(engine.Import{Module: "fastly_http_req", Name: "pending_req_header_remove", Signature: engine.Signature{Params: "iiii", Results: "i"}})
	fn(ctx, mem, make([]uint64, 4))
	if n := count("fastly_http_req.pending_req_header_remove"); n != 2 {
		t.Fatalf("second module's stub logged %d lines in all, want 2", n)
	}
	// A stub works without a session too.
	st := make([]uint64, 1)
	fn(context.Background(), mem, st)
	if abi.Status(st[0]) != abi.Unsupported {
		t.Fatalf("stub without a session: %d", st[0])
	}
}

// TestBindWithoutSession: a hostcall called with no session in its
// context (an engine bug) answers unsupported rather than panicking.
func TestBindWithoutSession(t *testing.T) {
	link := NewLinker(slog.New(&logSink{})).Link()
	mem := newFakeMem(1024)
	for _, hc := range Table() {
		fn, err := link(engine.Import{Module: hc.Module, Name: hc.Name, Signature: engine.Signature{Params: hc.Params, Results: "i"}})
		if err != nil {
			t.Fatalf("link %s.%s: %v", hc.Module, hc.Name, err)
		}
		stack := make([]uint64, max(len(hc.Params), 1))
		fn(context.Background(), mem, stack)
		if abi.Status(stack[0]) != abi.Unsupported {
			t.Errorf("%s.%s without a session = %v, want unsupported", hc.Module, hc.Name, abi.Status(stack[0]))
		}
	}
}

// TestStatusFor: the error-to-status mapping the guest sees.
func TestStatusFor(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want abi.Status
	}{
		{nil, abi.OK},
		{errNone, abi.None},
		{statusErr(abi.Badalign, "x %d", 1), abi.Badalign},
		{context.Canceled, abi.Error},
		{wrapErr(statusErr(abi.LimitExceeded, "deep")), abi.LimitExceeded},
	} {
		if got := statusFor(tc.err); got != tc.want {
			t.Errorf("statusFor(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

type wrapped struct{ err error }

func (w wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func wrapErr(err error) error { return wrapped{err} }

// TestLinkerNilLogger: NewLinker(nil) discards the stub notice instead of
// panicking on a stub's first call, and the stub still answers
// unsupported.
func TestLinkerNilLogger(t *testing.T) {
	fn, err := NewLinker(nil).Link()(engine.Import{Module: "fastly_kv_store", Name: "open", Signature: engine.Signature{Params: "iii", Results: "i"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		stack := []uint64{0, 0, 0}
		fn(context.Background(), newFakeMem(64), stack)
		if abi.Status(stack[0]) != abi.Unsupported {
			t.Fatalf("stub answered %v, want unsupported", abi.Status(stack[0]))
		}
	}
}
