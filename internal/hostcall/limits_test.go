package hostcall

import (
	"context"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

// TestHeaderAppendIsLinear: one header_append on a block of 20,000 fields
// costs what one field costs, not a copy of the block (it cloned the
// whole block before: 10,000 appends took 23 s, issue 13).
func TestHeaderAppendIsLinear(t *testing.T) {
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{Limits: Limits{MaxHeaderBytes: 1 << 20}}})
	resp := uint64(h.newHandle(kindResp))
	np, nl := h.str("x-h")
	vp, vl := h.str("v")
	for range 20000 {
		h.want(abi.OK, abi.ModuleHTTPResp, "header_append", resp, np, nl, vp, vl)
	}
	allocs := testing.AllocsPerRun(200, func() {
		h.call(abi.ModuleHTTPResp, "header_append", resp, np, nl, vp, vl)
	})
	if allocs > 8 {
		t.Errorf("header_append on a 20,000-field block: %v allocations per call, want a few", allocs)
	}
	if got := len(respOf(h.s, uint32(resp)).hdr.get("x-h")); got != 20201 { // AllocsPerRun runs once more
		t.Errorf("%d values, want 20201", got)
	}
}

// TestHandleCap: a sandbox holds at most MaxHandles handles; the hostcall
// that would make one more answers limitexceeded and makes nothing; a
// closed handle makes room.
func TestHandleCap(t *testing.T) {
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{Limits: Limits{MaxHandles: 32}}})
	var made []uint32
	for range 32 {
		made = append(made, h.newHandle(kindReq))
	}
	for _, k := range []struct{ module, name string }{
		{abi.ModuleHTTPReq, "new"}, {abi.ModuleHTTPResp, "new"}, {abi.ModuleHTTPBody, "new"},
	} {
		h.want(abi.LimitExceeded, k.module, k.name, h.out())
	}
	p, n := h.str("other-endpoint")
	h.want(abi.LimitExceeded, abi.ModuleLog, "endpoint_get", p, n, h.out())
	if live := h.s.liveHandles(); live != 32 {
		t.Fatalf("%d handles after refusals, want 32", live)
	}
	h.want(abi.OK, abi.ModuleHTTPReq, "close", uint64(made[0]))
	h.newHandle(kindResp)
}

// TestLogEndpointAndStoreHandlesPerName: opening the same log endpoint or
// store again gives the same handle, so a reused sandbox opening them per
// request holds one each.
func TestLogEndpointAndStoreHandlesPerName(t *testing.T) {
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{ConfigStores: map[string]map[string]string{"settings": {"k": "v"}}}})
	for _, k := range []handleKind{kindLog, kindStore} {
		first := h.newHandle(k)
		for range 100 {
			if again := h.newHandle(k); again != first {
				t.Fatalf("%v: handle %d, then %d", k, first, again)
			}
		}
	}
	if live := h.s.liveHandles(); live != 2 {
		t.Fatalf("%d handles, want 2", live)
	}
}

// TestFieldBytes: a trailer block has the header cap (limitexceeded
// beyond), and the blocks a sandbox changed have the sandbox's total,
// headers and trailers together; a closed block gives its bytes back.
func TestFieldBytes(t *testing.T) {
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{Limits: Limits{MaxHeaderBytes: 1000, MaxSandboxHeaderBytes: 2500}}})
	value := strings.Repeat("v", 93) // a field of 100 bytes: "x-a", the value and 4
	np, nl := h.str("x-a")
	vp, vl := h.str(value)
	fill := func(module, name string, handle uint64, want abi.Status) int {
		n := 0
		for ; n < 100; n++ {
			if st := h.call(module, name, handle, np, nl, vp, vl); st != abi.OK {
				if st != want {
					t.Fatalf("%s.%s after %d fields: %v, want %v", module, name, n, st, want)
				}
				return n
			}
		}
		t.Fatalf("%s.%s: 100 fields of 100 bytes passed", module, name)
		return n
	}
	body := uint64(h.newHandle(kindBody))
	if n := fill(abi.ModuleHTTPBody, "trailer_append", body, abi.LimitExceeded); n != 10 {
		t.Fatalf("%d trailers of 100 bytes under a 1000-byte cap, want 10", n)
	}
	r1 := uint64(h.newHandle(kindResp))
	if n := fill(abi.ModuleHTTPResp, "header_append", r1, abi.HTTPHeadTooLarge); n != 10 {
		t.Fatalf("%d headers, want 10", n)
	}
	// 2000 bytes held; the sandbox's 2500 leave room for 5 more fields.
	r2 := uint64(h.newHandle(kindResp))
	if n := fill(abi.ModuleHTTPResp, "header_append", r2, abi.LimitExceeded); n != 5 {
		t.Fatalf("%d headers on a second response, want 5 (the sandbox total)", n)
	}
	h.want(abi.OK, abi.ModuleHTTPResp, "close", r1)
	r3 := uint64(h.newHandle(kindResp))
	if n := fill(abi.ModuleHTTPResp, "header_append", r3, abi.HTTPHeadTooLarge); n != 10 {
		t.Fatalf("%d headers after closing a response, want 10", n)
	}
}

// TestLogLimits: a record over MaxLogRecordBytes and records beyond
// LogBytesPerSecond answer limitexceeded and are not logged; the first
// refusal for the rate is one warning.
func TestLogLimits(t *testing.T) {
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{Limits: Limits{MaxLogRecordBytes: 100, LogBytesPerSecond: 1000}}})
	ep := uint64(h.newHandle(kindLog))
	write := func(n int) abi.Status {
		p, l := h.str(strings.Repeat("l", n))
		return h.call(abi.ModuleLog, "write", ep, p, l, h.out())
	}
	if st := write(101); st != abi.LimitExceeded {
		t.Fatalf("a 101-byte record: %v", st)
	}
	logged := func() int {
		n := 0
		for _, r := range h.logs.records() {
			if strings.HasPrefix(r.msg, "lll") {
				n++
			}
		}
		return n
	}
	for i := range 10 {
		if st := write(100); st != abi.OK {
			t.Fatalf("record %d: %v", i, st)
		}
	}
	for range 3 {
		if st := write(100); st != abi.LimitExceeded {
			t.Fatalf("a record beyond 1000 bytes/s: %v", st)
		}
	}
	if n := logged(); n != 10 {
		t.Fatalf("%d records logged, want 10", n)
	}
	warned := 0
	for _, r := range h.logs.records() {
		if strings.Contains(r.msg, "log records dropped") {
			warned++
		}
	}
	if warned != 1 {
		t.Fatalf("%d warnings, want 1", warned)
	}
	time.Sleep(150 * time.Millisecond) // refills about 150 bytes
	if st := write(100); st != abi.OK {
		t.Fatalf("after a refill: %v", st)
	}
}

// manyReuse hands the session n more downstream requests.
type manyReuse struct{ n int }

func (r *manyReuse) Done(Outcome) {}

func (r *manyReuse) Next(context.Context, time.Duration) (string, *Downstream, bool) {
	if r.n == 0 {
		return "", nil, false
	}
	r.n--
	return "req-next", &Downstream{Request: newDownstreamRequest(), Writer: httptest.NewRecorder(),
		ClientIP: net.ParseIP("192.0.2.8"), ServerIP: net.ParseIP("127.0.0.1")}, true
}

// TestReusedSandboxReleasesRequestHandles: a sandbox serving many
// requests in turn (next_request) does not keep each finished request's
// handles, so the handle cap does not end it.
func TestReusedSandboxReleasesRequestHandles(t *testing.T) {
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{Limits: Limits{MaxHandles: 16}}})
	h.s.SetReuse(&manyReuse{n: 100})
	h.newHandle(kindDownReq)
	for i := range 100 {
		resp, body := h.newHandle(kindResp), h.newHandle(kindBody)
		h.want(abi.OK, abi.ModuleHTTPResp, "send_downstream", uint64(resp), uint64(body), 0)
		promise := h.out()
		h.want(abi.OK, abi.ModuleHTTPDownstream, "next_request", 0, 0, promise)
		rq, bd := h.out(), h.out()
		if st := h.call(abi.ModuleHTTPDownstream, "next_request_wait", uint64(h.u32(promise)), rq, bd); st != abi.OK {
			t.Fatalf("request %d: next_request_wait %v with %d handles held", i, st, h.s.liveHandles())
		}
	}
	if live := h.s.liveHandles(); live > 4 {
		t.Fatalf("%d handles held after 100 requests", live)
	}
}

// respOf is the response handle h of s holds (nil for none).
func respOf(s *Session, h uint32) *response { r, _ := s.resps.lookup(h); return r }

// bodyOf is the body handle h of s holds (nil for none).
func bodyOf(s *Session, h uint32) *body { b, _ := s.bodies.lookup(h); return b }
