package hostcall

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/pool"
)

// gatedOrigin is a loopback origin whose answers wait for the test:
//
//	/fast       answers "fast" at once
//	/hold       answers "held" once gate is opened
//	/drip       sends "first|" at once, "second" once gate is opened
//	/slowread   reads its request body only once gate is opened, then
//	            answers the number of bytes it got
type gatedOrigin struct {
	*httptest.Server
	gate     chan struct{}
	openOnce sync.Once
	got      chan int // /slowread: bytes received
}

func newGatedOrigin(t *testing.T) *gatedOrigin {
	o := &gatedOrigin{gate: make(chan struct{}), got: make(chan int, 1)}
	wait := func(r *http.Request) bool {
		select {
		case <-o.gate:
			return true
		case <-r.Context().Done():
			return false
		}
	}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fast":
			io.WriteString(w, "fast")
		case "/hold":
			if wait(r) {
				io.WriteString(w, "held")
			}
		case "/drip":
			io.WriteString(w, "first|")
			w.(http.Flusher).Flush()
			if wait(r) {
				io.WriteString(w, "second")
			}
		case "/slowread":
			if !wait(r) {
				return
			}
			n, _ := io.Copy(io.Discard, r.Body)
			o.got <- int(n)
			fmt.Fprintf(w, "%d", n)
		}
	}))
	t.Cleanup(func() { o.open(); o.Close() })
	return o
}

func (o *gatedOrigin) open() { o.openOnce.Do(func() { close(o.gate) }) }

func (o *gatedOrigin) env() EnvConfig {
	return EnvConfig{Backends: []StaticBackend{{Name: "origin", Settings: pool.Settings{Scheme: "http", Addr: o.Listener.Addr().String()}}}}
}

// sendAsync starts a GET of path on backend "origin" and returns the
// pending request handle.
func (h *harness) sendAsync(path string) uint32 {
	h.t.Helper()
	r := h.newHandle(kindReq)
	up, ul := h.str(path)
	h.want(abi.OK, abi.ModuleHTTPReq, "uri_set", uint64(r), up, ul)
	bp, bl := h.str("origin")
	po := h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "send_async", uint64(r), uint64(abi.NoHandle), bp, bl, po)
	return h.u32(po)
}

// wait collects pending request p and returns its response body handle.
func (h *harness) wait(p uint32) uint32 {
	h.t.Helper()
	ro, bo := h.out(), h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "pending_req_wait", uint64(p), ro, bo)
	return h.u32(bo)
}

// isReady calls is_ready and returns its answer.
func (h *harness) isReady(handle uint32) bool {
	h.t.Helper()
	o := h.out()
	h.want(abi.OK, abi.ModuleAsyncIO, "is_ready", uint64(handle), o)
	switch v := h.u32(o); v {
	case 0, 1:
		return v == 1
	default:
		h.t.Fatalf("is_ready wrote %d, want 0 or 1", v)
		return false
	}
}

// selectOn calls select over handles with timeout ms and returns the
// status and the index written.
func (h *harness) selectOn(timeoutMs uint32, handles ...uint32) (abi.Status, uint32) {
	h.t.Helper()
	list := h.alloc(uint32(4 * max(len(handles), 1)))
	for i, x := range handles {
		binary.LittleEndian.PutUint32(h.mem.b[list+uint32(4*i):], x)
	}
	o := h.out()
	st := h.call(abi.ModuleAsyncIO, "select", uint64(list), uint64(len(handles)), uint64(timeoutMs), o)
	return st, h.u32(o)
}

// mustSelect fails unless select answers ok with index want.
func (h *harness) mustSelect(want uint32, timeoutMs uint32, handles ...uint32) {
	h.t.Helper()
	if st, got := h.selectOn(timeoutMs, handles...); st != abi.OK || got != want {
		h.t.Fatalf("select(%v, %d ms) = %v %#x, want ok %#x", handles, timeoutMs, st, got, want)
	}
}

// TestSelectEmpty: no handles and no timeout is inval (it could never
// return); no handles with a timeout sleeps for it and reports none ready.
func TestSelectEmpty(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if st, _ := h.selectOn(0); st != abi.Inval {
		t.Fatalf("select([], 0) = %v, want inval", st)
	}
	start := time.Now()
	h.mustSelect(abi.SelectNoneReady, 30)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("select([], 30 ms) returned after %v", d)
	}
}

// TestSelectPending: select returns the index (not the handle) of the
// first request to finish; is_ready follows the requests; a timeout with
// nothing ready is ok with u32::MAX; the handles stay usable.
func TestSelectPending(t *testing.T) {
	o := newGatedOrigin(t)
	h := newHarness(t, harnessOpts{envCfg: o.env()})
	held, fast := h.sendAsync("/hold"), h.sendAsync("/fast")
	h.mustSelect(1, 0, held, fast)
	if !h.isReady(fast) || h.isReady(held) {
		t.Fatalf("is_ready fast %v held %v, want true false", h.isReady(fast), h.isReady(held))
	}
	if got := h.readBody(h.wait(fast), 16); got != "fast" {
		t.Fatalf("fast body %q", got)
	}
	start := time.Now()
	h.mustSelect(abi.SelectNoneReady, 40, held)
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Fatalf("select timed out after %v, want >= 40ms", d)
	}
	// A handle may be listed twice; the first ready index wins.
	o.open()
	h.mustSelect(0, 0, held, held)
	if !h.isReady(held) {
		t.Fatal("is_ready after select chose it = false")
	}
	if got := h.readBody(h.wait(held), 16); got != "held" {
		t.Fatalf("held body %q", got)
	}
}

// TestSelectBodyRead: a response body is ready to read when bytes are
// there or at its end, not while the origin sends nothing; being asked
// does not consume anything.
func TestSelectBodyRead(t *testing.T) {
	o := newGatedOrigin(t)
	h := newHarness(t, harnessOpts{envCfg: o.env()})
	b := h.wait(h.sendAsync("/drip"))
	h.mustSelect(0, 10000, b) // "first|" arrives
	if !h.isReady(b) {
		t.Fatal("is_ready after select = false")
	}
	buf, n := uint64(h.alloc(64)), h.out()
	h.want(abi.OK, abi.ModuleHTTPBody, "read", uint64(b), buf, 64, n)
	if got := string(h.bytesAt(buf, h.u32(n))); got != "first|" {
		t.Fatalf("first read %q, want %q", got, "first|")
	}
	if h.isReady(b) {
		t.Fatal("is_ready while the origin holds the rest = true")
	}
	h.mustSelect(abi.SelectNoneReady, 30, b)
	o.open()
	h.mustSelect(0, 10000, b)
	if got := h.readBody(b, 4); got != "second" {
		t.Fatalf("rest %q, want %q", got, "second")
	}
	// At the end a read returns 0 bytes at once: ready.
	if !h.isReady(b) {
		t.Fatal("is_ready at the end of the body = false")
	}
}

// TestSelectBodyBuilt: a body the guest wrote, or an empty one, never
// waits; a body holding bytes and then a stream is ready for the bytes.
func TestSelectBodyBuilt(t *testing.T) {
	o := newGatedOrigin(t)
	h := newHarness(t, harnessOpts{envCfg: o.env()})
	empty, full := h.newHandle(kindBody), h.newHandle(kindBody)
	h.writeBody(full, "abc", abi.BodyWriteBack)
	h.mustSelect(0, 0, empty, full)
	h.mustSelect(1, 0, h.sendAsync("/hold"), full)
	// bytes, then an origin body that holds: ready for the bytes, then not.
	drip := h.wait(h.sendAsync("/drip"))
	buf, n := uint64(h.alloc(8)), h.out()
	h.mustSelect(0, 10000, drip)
	h.want(abi.OK, abi.ModuleHTTPBody, "read", uint64(drip), buf, 8, n)
	if got := string(h.bytesAt(buf, h.u32(n))); got != "first|" {
		t.Fatalf("drip read %q", got)
	}
	mixed := h.newHandle(kindBody)
	h.writeBody(mixed, "xy", abi.BodyWriteBack)
	h.want(abi.OK, abi.ModuleHTTPBody, "append", uint64(mixed), uint64(drip))
	if !h.isReady(mixed) {
		t.Fatal("body with bytes in front not ready")
	}
	h.want(abi.OK, abi.ModuleHTTPBody, "read", uint64(mixed), buf, 8, n)
	if got := string(h.bytesAt(buf, h.u32(n))); got != "xy" {
		t.Fatalf("read %q", got)
	}
	h.mustSelect(abi.SelectNoneReady, 20, mixed)
	o.open()
	h.mustSelect(0, 10000, mixed)
	if got := h.readBody(mixed, 8); got != "second" {
		t.Fatalf("rest %q", got)
	}
}

// TestSelectDownstreamBody: the downstream request body is ready once the
// client sent bytes.
func TestSelectDownstreamBody(t *testing.T) {
	pr, pw := io.Pipe()
	req := httptest.NewRequest(http.MethodPost, "http://example.test/up", pr)
	h := newHarness(t, harnessOpts{req: req})
	ro, bo := h.out(), h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "body_downstream_get", ro, bo)
	b := h.u32(bo)
	if h.isReady(b) {
		t.Fatal("downstream body ready before the client sent anything")
	}
	go func() {
		io.WriteString(pw, "client bytes")
		pw.Close()
	}()
	h.mustSelect(0, 10000, b)
	if got := h.readBody(b, 5); got != "client bytes" {
		t.Fatalf("downstream body %q", got)
	}
}

// TestSelectStreamingWrite: a streaming request body is ready to write
// while the host's buffer has room. Against an origin that does not read,
// writes fill it and is_ready turns 0; once the origin reads, select
// wakes; everything written arrives, in order and complete.
func TestSelectStreamingWrite(t *testing.T) {
	o := newGatedOrigin(t)
	h := newHarness(t, harnessOpts{envCfg: o.env(), memSize: 1 << 20})
	r := h.newHandle(kindReq)
	up, ul := h.str("/slowread")
	h.want(abi.OK, abi.ModuleHTTPReq, "uri_set", uint64(r), up, ul)
	mp, ml := h.str("POST")
	h.want(abi.OK, abi.ModuleHTTPReq, "method_set", uint64(r), mp, ml)
	b := h.newHandle(kindBody)
	bp, bl := h.str("origin")
	po := h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "send_async_streaming", uint64(r), uint64(b), bp, bl, po)
	p := h.u32(po)

	const chunk = 16 << 10
	data, dl := h.str(strings.Repeat("z", chunk))
	nw := h.out()
	total := 0
	// Write while ready, until the body stays not ready for a quiet
	// window: the transport and the kernel's socket buffers take bytes
	// too, behind the host's own 64 KiB, and each time the transport takes
	// the host's queue the body is ready again. On a loaded machine the
	// transport can go unscheduled for far more than 50 ms (half of 100
	// runs at load 13 saw the body turn ready after 50 ms of quiet), so
	// the window is seconds: it bounds how long the test waits for the
	// pipeline to fill, not what it asserts. 64 MiB without back-pressure
	// is a bug.
	const quietMs = 2000
	for {
		for h.isReady(b) {
			if total > 64<<20 {
				t.Fatalf("still ready after %d bytes to an origin that does not read", total)
			}
			h.want(abi.OK, abi.ModuleHTTPBody, "write", uint64(b), data, dl, 0, nw)
			if n := h.u32(nw); n == 0 || n > chunk {
				t.Fatalf("write took %d of %d bytes", n, chunk)
			}
			total += int(h.u32(nw))
		}
		st, idx := h.selectOn(quietMs, b)
		if st != abi.OK || idx != 0 && idx != abi.SelectNoneReady {
			t.Fatalf("select([%d], %d ms) = %v %#x, want ok, 0 or none ready", b, quietMs, st, idx)
		}
		if idx == abi.SelectNoneReady {
			break
		}
	}
	h.mustSelect(abi.SelectNoneReady, 20, b)
	o.open()
	h.mustSelect(0, 10000, b)
	h.writeBody(b, "tail", abi.BodyWriteBack)
	total += 4
	h.want(abi.OK, abi.ModuleHTTPBody, "close", uint64(b))
	if got := h.readBody(h.wait(p), 16); got != fmt.Sprint(total) {
		t.Fatalf("origin read %s bytes, guest wrote %d", got, total)
	}
}

// TestSelectStreamingDownstream: the streaming downstream body is ready
// to write; what is written after select reaches the client on close.
func TestSelectStreamingDownstream(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r, b := h.respWithBody(200, "head|")
	h.want(abi.OK, abi.ModuleHTTPResp, "send_downstream", uint64(r), uint64(b), 1)
	h.mustSelect(0, 10000, b)
	h.writeBody(b, "after select|", abi.BodyWriteBack)
	src := h.newHandle(kindBody)
	h.writeBody(src, "appended", abi.BodyWriteBack)
	h.want(abi.OK, abi.ModuleHTTPBody, "append", uint64(b), uint64(src))
	h.want(abi.OK, abi.ModuleHTTPBody, "close", uint64(b))
	if got, want := h.rec.Body.String(), "head|after select|appended"; got != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
}

// TestSelectErrors: handles that are not async items are badf (for
// select, anywhere in the list); a misaligned list is badalign; a list
// outside memory is inval.
func TestSelectErrors(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	body := h.newHandle(kindBody)
	for _, k := range []handleKind{kindReq, kindResp, kindLog, kindStore} {
		other := h.newHandle(k)
		if st, _ := h.selectOn(0, body, other); st != abi.Badf {
			t.Errorf("select with a %v handle = %v, want badf", k, st)
		}
		h.want(abi.Badf, abi.ModuleAsyncIO, "is_ready", uint64(other), h.out())
	}
	h.want(abi.Badf, abi.ModuleAsyncIO, "is_ready", uint64(abi.NoHandle), h.out())
	list := h.alloc(8)
	binary.LittleEndian.PutUint32(h.mem.b[list+1:], body)
	h.want(abi.Badalign, abi.ModuleAsyncIO, "select", uint64(list+1), 1, 0, h.out())
	h.want(abi.Inval, abi.ModuleAsyncIO, "select", uint64(h.mem.size-4), 2, 0, h.out())
	h.want(abi.Inval, abi.ModuleAsyncIO, "select", uint64(list), 1<<30, 0, h.out())
	// A closed body is no longer an item.
	h.want(abi.OK, abi.ModuleHTTPBody, "close", uint64(body))
	h.want(abi.Badf, abi.ModuleAsyncIO, "is_ready", uint64(body), h.out())
}

// TestSelectEndsWithSandbox: select without a timeout returns (error)
// when the sandbox's context ends, e.g. at its wall-clock limit.
func TestSelectEndsWithSandbox(t *testing.T) {
	o := newGatedOrigin(t)
	env, _ := newTestEnv(t, o.env())
	h := newHarness(t, harnessOpts{env: env})
	ctx, cancel := context.WithTimeout(h.ctx, 50*time.Millisecond)
	defer cancel()
	held := h.sendAsync("/hold")
	h.ctx = ctx
	start := time.Now()
	if st, _ := h.selectOn(0, held); st != abi.Error {
		t.Fatalf("select past the sandbox's end = %v, want error", st)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("select returned %v after the sandbox ended", d)
	}
}

// aHandleList is a select handle list holding hs: its pointer (broken as
// an input pointer) and its entry count (broken as its length).
func (h *harness) aHandleList(hs ...uint32) []arg {
	p := h.alloc(uint32(4 * len(hs)))
	for i, x := range hs {
		binary.LittleEndian.PutUint32(h.mem.b[p+uint32(4*i):], x)
	}
	return []arg{{v: uint64(p), kind: aIn}, {v: uint64(len(hs)), kind: aInLen}}
}

// TestSelectDownstreamReadStops: a read-ahead of the downstream request
// body still waiting for the client when the sandbox ends is interrupted,
// so that no read outlives the handler (a real server: the recorder of the
// other tests has no read deadline).
func TestSelectDownstreamReadStops(t *testing.T) {
	env, _ := newTestEnv(t, EnvConfig{})
	type result struct {
		readyBefore bool
		took        time.Duration
		inFlight    bool
	}
	done := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := env.NewSession(r.Context(), "stop", &Downstream{Request: r, Writer: w})
		_, bh, _ := s.down.takeRequest()
		ready, _, err := s.readiness(bh)
		if err != nil {
			t.Error(err)
		}
		ra := bodyOf(s, bh).parts[0].r.(*readahead)
		start := time.Now()
		s.Close()
		ra.mu.Lock()
		inFlight := ra.fill != nil
		ra.mu.Unlock()
		done <- result{ready, time.Since(start), inFlight}
	}))
	defer srv.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, pr) // chunked, and nothing sent
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case r := <-done:
		if r.readyBefore {
			t.Error("the body was ready before the client sent anything")
		}
		if r.inFlight || r.took > 5*time.Second {
			t.Errorf("Close took %v, read still in flight: %v", r.took, r.inFlight)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Session.Close did not return while the client held its body")
	}
}
