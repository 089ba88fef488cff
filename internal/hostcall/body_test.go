package hostcall

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

// knownLength returns the body's known_length status and value.
func (h *harness) knownLength(b uint32) (abi.Status, uint64) {
	h.t.Helper()
	o := h.out()
	st := h.call(abi.ModuleHTTPBody, "known_length", uint64(b), o)
	return st, uint64(h.i64(o))
}

func TestBodyWriteRead(t *testing.T) {
	for _, chunk := range []uint32{1, 3, 64} {
		h := newHarness(t, harnessOpts{})
		b := h.newHandle(kindBody)
		if st, n := h.knownLength(b); st != abi.OK || n != 0 {
			t.Fatalf("new body known_length = %v %d, want ok 0", st, n)
		}
		h.writeBody(b, "middle ", abi.BodyWriteBack)
		h.writeBody(b, "end", abi.BodyWriteBack)
		h.writeBody(b, "start ", abi.BodyWriteFront)
		const want = "start middle end"
		if st, n := h.knownLength(b); st != abi.OK || n != uint64(len(want)) {
			t.Fatalf("known_length = %v %d, want ok %d", st, n, len(want))
		}
		if got := h.readBody(b, chunk); got != want {
			t.Fatalf("read with %d-byte buffer = %q, want %q", chunk, got, want)
		}
		if st, n := h.knownLength(b); st != abi.OK || n != 0 {
			t.Fatalf("known_length after reading = %v %d, want ok 0", st, n)
		}
	}
}

func TestBodyPartialReadKnownLength(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	b := h.newHandle(kindBody)
	h.writeBody(b, "0123456789", abi.BodyWriteBack)
	buf, n := uint64(h.alloc(4)), h.out()
	h.want(abi.OK, abi.ModuleHTTPBody, "read", uint64(b), buf, 4, n)
	if got := string(h.bytesAt(buf, h.u32(n))); got != "0123" {
		t.Fatalf("first read = %q", got)
	}
	if st, l := h.knownLength(b); st != abi.OK || l != 6 {
		t.Fatalf("known_length after reading 4 of 10 = %v %d, want 6", st, l)
	}
}

func TestBodyWriteBadEnd(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	b := h.newHandle(kindBody)
	p, l := h.str("x")
	h.want(abi.Inval, abi.ModuleHTTPBody, "write", uint64(b), p, l, 2, h.out())
	if got := h.readBody(b, 8); got != "" {
		t.Fatalf("a refused write left %q in the body", got)
	}
}

func TestBodyAppend(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	dst, src := h.newHandle(kindBody), h.newHandle(kindBody)
	h.writeBody(dst, "ab", abi.BodyWriteBack)
	h.writeBody(src, "cd", abi.BodyWriteBack)
	h.want(abi.OK, abi.ModuleHTTPBody, "append", uint64(dst), uint64(src))
	if st, n := h.knownLength(dst); st != abi.OK || n != 4 {
		t.Fatalf("known_length after append = %v %d, want 4", st, n)
	}
	// The source handle is consumed.
	h.want(abi.Badf, abi.ModuleHTTPBody, "read", uint64(src), uint64(h.alloc(8)), 8, h.out())
	// Appending a body to itself is refused and leaves it intact.
	h.want(abi.Inval, abi.ModuleHTTPBody, "append", uint64(dst), uint64(dst))
	h.writeBody(dst, "e", abi.BodyWriteBack)
	if got := h.readBody(dst, 3); got != "abcde" {
		t.Fatalf("appended body = %q, want abcde", got)
	}
}

func TestBodyCloseAbandon(t *testing.T) {
	for _, fn := range []string{"close", "abandon"} {
		h := newHarness(t, harnessOpts{})
		b := h.newHandle(kindBody)
		h.writeBody(b, "data", abi.BodyWriteBack)
		h.want(abi.OK, abi.ModuleHTTPBody, fn, uint64(b))
		h.want(abi.Badf, abi.ModuleHTTPBody, "read", uint64(b), uint64(h.alloc(8)), 8, h.out())
		h.want(abi.Badf, abi.ModuleHTTPBody, fn, uint64(b))
	}
}

func TestBodyBufferLimit(t *testing.T) {
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{Limits: Limits{MaxBufferedBodyBytes: 10}}})
	a, b := h.newHandle(kindBody), h.newHandle(kindBody)
	h.writeBody(a, "123456", abi.BodyWriteBack)
	p, l := h.str("12345")
	// The limit is per sandbox: 6 + 5 bytes over two bodies is over 10.
	h.want(abi.LimitExceeded, abi.ModuleHTTPBody, "write", uint64(b), p, l, 0, h.out())
	// Reading frees buffer space.
	if got := h.readBody(a, 64); got != "123456" {
		t.Fatalf("read %q", got)
	}
	h.want(abi.OK, abi.ModuleHTTPBody, "write", uint64(b), p, l, 0, h.out())
}

func TestBodyTrailers(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	b := h.newHandle(kindBody)
	for _, kv := range [][2]string{{"x-t1", "a"}, {"x-t2", "b"}, {"x-t1", "c"}} {
		np, nl := h.str(kv[0])
		vp, vl := h.str(kv[1])
		h.want(abi.OK, abi.ModuleHTTPBody, "trailer_append", uint64(b), np, nl, vp, vl)
	}
	if names, st := h.multi(abi.ModuleHTTPBody, "trailer_names_get", 16, uint64(b)); st != abi.OK || strings.Join(names, ",") != "x-t1,x-t2" {
		t.Fatalf("trailer names = %v %q", st, names)
	}
	np, nl := h.str("x-t1")
	if vals, st := h.multi(abi.ModuleHTTPBody, "trailer_values_get", 2, uint64(b), np, nl); st != abi.OK || strings.Join(vals, ",") != "a,c" {
		t.Fatalf("trailer values = %v %q", st, vals)
	}
	if st, v, _ := h.getBuf(abi.ModuleHTTPBody, "trailer_value_get", 8, uint64(b), np, nl); st != abi.OK || v != "a" {
		t.Fatalf("trailer_value_get = %v %q", st, v)
	}
	mp, ml := h.str("x-none")
	if st, _, _ := h.getBuf(abi.ModuleHTTPBody, "trailer_value_get", 8, uint64(b), mp, ml); st != abi.None {
		t.Fatalf("missing trailer = %v, want none", st)
	}
	for _, kv := range [][2]string{{"bad name", "v"}, {"x-ok", "bad\nvalue"}} {
		np, nl := h.str(kv[0])
		vp, vl := h.str(kv[1])
		h.want(abi.Inval, abi.ModuleHTTPBody, "trailer_append", uint64(b), np, nl, vp, vl)
	}
}

// TestBodyDownstream: body_downstream_get hands out the client's request
// (method, absolute URI, headers) and its body; a second call returns the
// same request with an empty body.
func TestBodyDownstream(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ro, bo := h.out(), h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "body_downstream_get", ro, bo)
	req, body := h.u32(ro), h.u32(bo)
	if st, l := h.knownLength(body); st != abi.OK || l != uint64(len(testDownBody)) {
		t.Fatalf("downstream body known_length = %v %d, want %d", st, l, len(testDownBody))
	}
	if got := h.readBody(body, 5); got != testDownBody {
		t.Fatalf("downstream body = %q, want %q", got, testDownBody)
	}
	if st, m, _ := h.getBuf(abi.ModuleHTTPReq, "method_get", 16, uint64(req)); st != abi.OK || m != http.MethodPost {
		t.Fatalf("method = %v %q", st, m)
	}
	if st, u, _ := h.getBuf(abi.ModuleHTTPReq, "uri_get", 128, uint64(req)); st != abi.OK || u != "http://example.test/path/x?q=1" {
		t.Fatalf("uri = %v %q", st, u)
	}
	np, nl := h.str("x-test")
	if vals, st := h.multi(abi.ModuleHTTPReq, "header_values_get", 64, uint64(req), np, nl); st != abi.OK || strings.Join(vals, ",") != "one,two" {
		t.Fatalf("x-test values = %v %q", st, vals)
	}
	hp, hl := h.str("host")
	if st, v, _ := h.getBuf(abi.ModuleHTTPReq, "header_value_get", 64, uint64(req), hp, hl); st != abi.OK || v != "example.test" {
		t.Fatalf("host header = %v %q", st, v)
	}
	ro2, bo2 := h.out(), h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "body_downstream_get", ro2, bo2)
	if h.u32(ro2) != req {
		t.Fatalf("second body_downstream_get request handle %d, want %d", h.u32(ro2), req)
	}
	if h.u32(bo2) == body {
		t.Fatal("second body_downstream_get reused the body handle")
	}
	if got := h.readBody(h.u32(bo2), 8); got != "" {
		t.Fatalf("second downstream body = %q, want empty", got)
	}
}

// TestBodyDownstreamChunked: a downstream body of unknown length has no
// known_length (none) and is still read whole.
func TestBodyDownstreamChunked(t *testing.T) {
	r := httptest.NewRequest(http.MethodPut, "http://example.test/", strings.NewReader("chunked body"))
	r.ContentLength = -1
	r.Body = struct {
		*strings.Reader
		closer
	}{strings.NewReader("chunked body"), closer{}}
	h := newHarness(t, harnessOpts{req: r})
	ro, bo := h.out(), h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "body_downstream_get", ro, bo)
	if st, _ := h.knownLength(h.u32(bo)); st != abi.None {
		t.Fatalf("known_length of a chunked body = %v, want none", st)
	}
	if got := h.readBody(h.u32(bo), 4); got != "chunked body" {
		t.Fatalf("body = %q", got)
	}
}

type closer struct{}

func (closer) Close() error { return nil }
