package hostcall

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/pool"
)

func TestABIInit(t *testing.T) {
	for _, tc := range []struct {
		version uint64
		want    abi.Status
	}{{1, abi.OK}, {0, abi.Error}, {2, abi.Error}, {1 << 32, abi.Error}, {1<<32 | 1, abi.Error}, {^uint64(0), abi.Error}} {
		h := newHarness(t, harnessOpts{})
		if got := h.call(abi.ModuleABI, "init", tc.version); got != tc.want {
			t.Errorf("init(%d) = %v, want %v", tc.version, got, tc.want)
		}
	}
}

func TestLogEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name string
		want abi.Status
	}{
		{"stdout", abi.Inval}, {"stderr", abi.Inval}, {"fst_managed_x", abi.Inval}, {"fst_managed_", abi.Inval},
		{"", abi.Inval}, {"my-endpoint", abi.OK}, {"fst_manage", abi.OK}, {"stdout2", abi.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			p, n := h.str(tc.name)
			o := h.out()
			h.want(tc.want, abi.ModuleLog, "endpoint_get", p, n, o)
			if tc.want != abi.OK {
				return
			}
			mp, ml := h.str("a log line")
			nw := h.out()
			h.want(abi.OK, abi.ModuleLog, "write", uint64(h.u32(o)), mp, ml, nw)
			if h.u32(nw) != uint32(ml) {
				t.Fatalf("log write nwritten = %d, want %d", h.u32(nw), ml)
			}
			found := false
			for _, r := range h.logs.records() {
				if r.msg == "a log line" && r.attrs["log_endpoint"] == tc.name && r.attrs["request_id"] == testReqID {
					found = true
				}
			}
			if !found {
				t.Fatalf("log line not in the host log with endpoint and request id: %+v", h.logs.records())
			}
		})
	}
}

func TestRequestMethodURIVersion(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := uint64(h.newHandle(kindReq))
	if st, m, _ := h.getBuf(abi.ModuleHTTPReq, "method_get", 8, r); st != abi.OK || m != "GET" {
		t.Fatalf("default method = %v %q", st, m)
	}
	mp, ml := h.str("PATCH")
	h.want(abi.OK, abi.ModuleHTTPReq, "method_set", r, mp, ml)
	if st, _, n := h.getBuf(abi.ModuleHTTPReq, "method_get", 4, r); st != abi.Buflen || n != 5 {
		t.Fatalf("method_get into 4 bytes = %v nwritten %d, want buflen 5", st, n)
	}
	if st, m, _ := h.getBuf(abi.ModuleHTTPReq, "method_get", 5, r); st != abi.OK || m != "PATCH" {
		t.Fatalf("method exact fit = %v %q", st, m)
	}
	for _, bad := range []string{"", "GE T", "GET\n", "G(T", "M\u00e9"} {
		p, l := h.str(bad)
		h.want(abi.HTTPInvalid, abi.ModuleHTTPReq, "method_set", r, p, l)
	}

	const uri = "http://example.test/a/b?c=d"
	up, ul := h.str(uri)
	h.want(abi.OK, abi.ModuleHTTPReq, "uri_set", r, up, ul)
	if st, _, n := h.getBuf(abi.ModuleHTTPReq, "uri_get", 10, r); st != abi.Buflen || n != uint32(len(uri)) {
		t.Fatalf("uri_get into 10 bytes = %v nwritten %d, want buflen %d", st, n, len(uri))
	}
	if st, u, _ := h.getBuf(abi.ModuleHTTPReq, "uri_get", uint32(len(uri)), r); st != abi.OK || u != uri {
		t.Fatalf("uri = %v %q", st, u)
	}
	ep, el := h.str("")
	h.want(abi.HTTPInvalid, abi.ModuleHTTPReq, "uri_set", r, ep, el)

	for _, m := range hdrModules {
		hd := uint64(h.newHandle(m.kind))
		o := h.out()
		h.want(abi.OK, m.module, "version_get", hd, o)
		if v := h.u32(o); v != abi.HTTP11 {
			t.Fatalf("%s default version %d, want HTTP/1.1", m.module, v)
		}
		h.want(abi.OK, m.module, "version_set", hd, uint64(abi.HTTP2))
		h.want(abi.OK, m.module, "version_get", hd, o)
		if v := h.u32(o); v != abi.HTTP2 {
			t.Fatalf("%s version %d after set, want h2", m.module, v)
		}
		h.want(abi.Inval, m.module, "version_set", hd, uint64(abi.HTTP3+1))
		h.want(abi.Inval, m.module, "framing_headers_mode_set", hd, 2)
		h.want(abi.OK, m.module, "close", hd)
		h.want(abi.Badf, m.module, "version_get", hd, o)
	}
}

func TestStatusSet(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r := uint64(h.newHandle(kindResp))
	o := uint64(h.alloc(2))
	h.want(abi.OK, abi.ModuleHTTPResp, "status_get", r, o)
	if s := h.u16(o); s != 200 {
		t.Fatalf("default status %d, want 200", s)
	}
	for _, tc := range []struct {
		status uint64
		want   abi.Status
	}{
		{0, abi.HTTPInvalidStatus}, {99, abi.HTTPInvalidStatus}, {1000, abi.HTTPInvalidStatus},
		{0xFFFFFFFF, abi.HTTPInvalidStatus}, {1<<31 | 200, abi.HTTPInvalidStatus},
		{100, abi.OK}, {204, abi.OK}, {999, abi.OK},
	} {
		h.mem.b[o], h.mem.b[o+1] = 0xEE, 0xEE
		h.want(abi.OK, abi.ModuleHTTPResp, "status_set", r, 404)
		if got := h.call(abi.ModuleHTTPResp, "status_set", r, tc.status); got != tc.want {
			t.Errorf("status_set(%d) = %v, want %v", tc.status, got, tc.want)
			continue
		}
		h.want(abi.OK, abi.ModuleHTTPResp, "status_get", r, o)
		want := uint16(404)
		if tc.want == abi.OK {
			want = uint16(tc.status)
		}
		if s := h.u16(o); s != want {
			t.Errorf("after status_set(%d): status_get %d, want %d", tc.status, s, want)
		}
	}
}

// respWithBody builds a response with status, a header and a body.
func (h *harness) respWithBody(status uint64, body string) (uint32, uint32) {
	h.t.Helper()
	r, b := h.newHandle(kindResp), h.newHandle(kindBody)
	h.want(abi.OK, abi.ModuleHTTPResp, "status_set", uint64(r), status)
	if st := h.hdrSet(abi.ModuleHTTPResp, "header_insert", r, "X-Resp", "yes"); st != abi.OK {
		h.t.Fatalf("header_insert: %v", st)
	}
	if body != "" {
		h.writeBody(b, body, abi.BodyWriteBack)
	}
	return r, b
}

func TestSendDownstream(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r, b := h.respWithBody(201, "hello")
	h.hdrSet(abi.ModuleHTTPResp, "header_insert", r, "Transfer-Encoding", "chunked") // hop-by-hop: dropped
	h.want(abi.OK, abi.ModuleHTTPResp, "send_downstream", uint64(r), uint64(b), 0)
	res := h.rec.Result()
	got, _ := io.ReadAll(res.Body)
	if res.StatusCode != 201 || string(got) != "hello" || res.Header.Get("X-Resp") != "yes" ||
		res.Header.Get("Content-Length") != "5" || res.Header.Get("Transfer-Encoding") != "" {
		t.Fatalf("client got %d %q %v", res.StatusCode, got, res.Header)
	}
	// Response and body handles are consumed.
	h.want(abi.Badf, abi.ModuleHTTPResp, "status_get", uint64(r), uint64(h.alloc(2)))
	h.want(abi.Badf, abi.ModuleHTTPBody, "close", uint64(b))
	// A second response is an error and does not reach the client.
	r2, b2 := h.respWithBody(500, "again")
	h.want(abi.Error, abi.ModuleHTTPResp, "send_downstream", uint64(r2), uint64(b2), 0)
	if h.rec.Code != 201 || h.rec.Body.String() != "hello" {
		t.Fatalf("second send changed the response: %d %q", h.rec.Code, h.rec.Body.String())
	}
	if out := h.s.Finish(nil, 502); !out.Sent || out.Status != 201 || out.Aborted {
		t.Fatalf("Finish = %+v", out)
	}
}

func TestSendDownstreamNoBody(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r, _ := h.respWithBody(204, "")
	h.want(abi.HTTPInvalidStatus, abi.ModuleHTTPResp, "status_set", uint64(r), 42)
	h.want(abi.OK, abi.ModuleHTTPResp, "http_keepalive_mode_set", uint64(r), uint64(abi.KeepaliveNone))
	h.want(abi.Inval, abi.ModuleHTTPResp, "http_keepalive_mode_set", uint64(r), 2)
	h.want(abi.OK, abi.ModuleHTTPResp, "send_downstream", uint64(r), uint64(abi.NoHandle), 0)
	if h.rec.Code != 204 || h.rec.Body.Len() != 0 || h.rec.Header().Get("Connection") != "close" {
		t.Fatalf("client got %d %q %v", h.rec.Code, h.rec.Body.String(), h.rec.Header())
	}
}

func TestSendDownstreamStreaming(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r, b := h.respWithBody(200, "first ")
	h.want(abi.OK, abi.ModuleHTTPResp, "send_downstream", uint64(r), uint64(b), 1)
	if h.rec.Body.String() != "first " {
		t.Fatalf("after streaming send: %q", h.rec.Body.String())
	}
	// A hostcall other than a body write, append or close flushes what
	// waits (the guest may block there).
	h.want(abi.None, abi.ModuleHTTPBody, "known_length", uint64(b), h.out())
	if !h.flushed() {
		t.Fatal("head and first bytes not flushed before the next hostcall")
	}
	// The body handle stays open: writes go to the client at once.
	h.writeBody(b, "second", abi.BodyWriteBack)
	if h.rec.Body.String() != "first second" {
		t.Fatalf("streamed so far: %q", h.rec.Body.String())
	}
	p, l := h.str("x")
	h.want(abi.Inval, abi.ModuleHTTPBody, "write", uint64(b), p, l, uint64(abi.BodyWriteFront), h.out())
	h.want(abi.Inval, abi.ModuleHTTPBody, "read", uint64(b), uint64(h.alloc(8)), 8, h.out())
	h.want(abi.None, abi.ModuleHTTPBody, "known_length", uint64(b), h.out())
	h.want(abi.OK, abi.ModuleHTTPBody, "close", uint64(b))
	if out := h.s.Finish(nil, 502); !out.Sent || out.Status != 200 || out.Aborted {
		t.Fatalf("Finish = %+v", out)
	}
}

// flushed reports whether the client's recorder was flushed, read under
// the streamed response's flushWriter lock: its flushDelay timer flushes
// the recorder under that lock from a goroutine of its own, and may fire
// while a test runs its next hostcalls.
func (h *harness) flushed() bool {
	fw := h.s.down.flush
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return h.rec.Flushed
}

// TestSendDownstreamFlushTimer: a streamed head and body the guest
// leaves without another hostcall (computing, or in a WASI call) still
// reach the client, flushDelay later.
func TestSendDownstreamFlushTimer(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r, b := h.respWithBody(200, "first ")
	h.want(abi.OK, abi.ModuleHTTPResp, "send_downstream", uint64(r), uint64(b), 1)
	deadline := time.Now().Add(5 * time.Second)
	for !h.flushed() {
		if time.Now().After(deadline) {
			t.Fatal("the streamed head was never flushed")
		}
		time.Sleep(time.Millisecond)
	}
	h.writeBody(b, "second", abi.BodyWriteBack)
	h.want(abi.OK, abi.ModuleHTTPBody, "close", uint64(b))
	if out := h.s.Finish(nil, 502); !out.Sent || out.Status != 200 || out.Aborted {
		t.Fatalf("Finish = %+v", out)
	}
	if got := h.rec.Body.String(); got != "first second" {
		t.Fatalf("client got %q", got)
	}
}

func TestNoDownstream(t *testing.T) {
	h := newHarness(t, harnessOpts{noDownstream: true})
	h.want(abi.Unsupported, abi.ModuleHTTPReq, "body_downstream_get", h.out(), h.out())
	r, b := h.respWithBody(200, "x")
	h.want(abi.Unsupported, abi.ModuleHTTPResp, "send_downstream", uint64(r), uint64(b), 0)
	h.want(abi.None, abi.ModuleHTTPReq, "downstream_client_ip_addr", uint64(h.alloc(16)), h.out())
	h.want(abi.None, abi.ModuleHTTPReq, "downstream_client_request_id", uint64(h.alloc(64)), 64, h.out())
	h.want(abi.None, abi.ModuleHTTPReq, "downstream_tls_protocol", uint64(h.alloc(64)), 64, h.out())
	if out := h.s.Finish(nil, 502); out != (Outcome{}) {
		t.Fatalf("Finish without downstream = %+v", out)
	}
}

func TestDownstreamIPAddr(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client string
		want   []byte
	}{
		{"ipv4", "192.0.2.7", []byte{192, 0, 2, 7}},
		{"ipv4-in-ipv6", "::ffff:192.0.2.8", []byte{192, 0, 2, 8}},
		{"ipv6", "2001:db8::1", net.ParseIP("2001:db8::1").To16()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{clientIP: net.ParseIP(tc.client), serverIP: net.ParseIP("::1")})
			down := uint64(h.newHandle(kindDownReq))
			for _, call := range []struct {
				module string
				args   []uint64
			}{{abi.ModuleHTTPReq, nil}, {abi.ModuleHTTPDownstream, []uint64{down}}} {
				buf, nw := uint64(h.alloc(17)), h.out()
				h.want(abi.OK, call.module, "downstream_client_ip_addr", append(call.args, buf, nw)...)
				if n := h.u32(nw); n != uint32(len(tc.want)) || string(h.bytesAt(buf, n)) != string(tc.want) {
					t.Fatalf("%s client address = %x (%d bytes), want %x", call.module, h.bytesAt(buf, n), n, tc.want)
				}
				if n := h.u32(nw); h.mem.b[buf+uint64(n)] != 0xEE {
					t.Fatalf("%s wrote past the address", call.module)
				}
				h.want(abi.OK, call.module, "downstream_server_ip_addr", append(call.args, buf, nw)...)
				if n := h.u32(nw); n != 16 || !net.IP(h.bytesAt(buf, 16)).Equal(net.IPv6loopback) {
					t.Fatalf("%s server address = %x", call.module, h.bytesAt(buf, n))
				}
			}
		})
	}
}

func TestDownstreamRequestIDAndTLS(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	down := uint64(h.newHandle(kindDownReq))
	other := uint64(h.newHandle(kindReq))
	for _, args := range [][]uint64{nil, {down}} {
		mod := abi.ModuleHTTPReq
		if args != nil {
			mod = abi.ModuleHTTPDownstream
		}
		if st, _, n := h.getBuf(mod, "downstream_client_request_id", 3, args...); st != abi.Buflen || n != uint32(len(testReqID)) {
			t.Fatalf("%s request id into 3 bytes = %v %d", mod, st, n)
		}
		if st, id, _ := h.getBuf(mod, "downstream_client_request_id", 64, args...); st != abi.OK || id != testReqID {
			t.Fatalf("%s request id = %v %q", mod, st, id)
		}
		if st, _, _ := h.getBuf(mod, "downstream_tls_protocol", 64, args...); st != abi.None {
			t.Fatalf("%s downstream_tls_protocol on plain HTTP = %v, want none", mod, st)
		}
	}
	// A request that is not the downstream one is badf in fastly_http_downstream.
	if st, _, _ := h.getBuf(abi.ModuleHTTPDownstream, "downstream_client_request_id", 64, other); st != abi.Badf {
		t.Fatalf("request id of another request = %v, want badf", st)
	}
}

func TestPromiseHandles(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	o := h.out()
	h.want(abi.Unsupported, abi.ModuleHTTPDownstream, "next_request", 0, 0, o)
	for _, k := range []handleKind{kindReq, kindResp, kindBody, kindLog, kindStore, kindDownReq} {
		hd := uint64(h.newHandle(k))
		h.want(abi.Badf, abi.ModuleHTTPDownstream, "next_request_wait", hd, h.out(), h.out())
		h.want(abi.Badf, abi.ModuleHTTPDownstream, "next_request_abandon", hd)
	}
	h.want(abi.Badf, abi.ModuleHTTPDownstream, "next_request_abandon", uint64(abi.NoHandle))
}

func TestStores(t *testing.T) {
	cfg := EnvConfig{
		ConfigStores: map[string]map[string]string{"cs": {"key": "config value", "empty": ""}},
		Dictionaries: map[string]map[string]string{"dict": {"key": "dict value"}},
	}
	for _, tc := range []struct{ module, store, value string }{
		{abi.ModuleConfigStore, "cs", "config value"},
		{abi.ModuleDictionary, "dict", "dict value"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			h := newHarness(t, harnessOpts{envCfg: cfg})
			o := h.out()
			for _, unknown := range []string{"nope", "", strings.ToUpper(tc.store)} {
				p, l := h.str(unknown)
				h.want(abi.Badf, tc.module, "open", p, l, o)
			}
			p, l := h.str(tc.store)
			h.want(abi.OK, tc.module, "open", p, l, o)
			st := uint64(h.u32(o))
			kp, kl := h.str("key")
			if s, _, n := h.getBuf(tc.module, "get", 4, st, kp, kl); s != abi.Buflen || n != uint32(len(tc.value)) {
				t.Fatalf("get into 4 bytes = %v %d, want buflen %d", s, n, len(tc.value))
			}
			if s, v, _ := h.getBuf(tc.module, "get", uint32(len(tc.value)), st, kp, kl); s != abi.OK || v != tc.value {
				t.Fatalf("get = %v %q", s, v)
			}
			mp, ml := h.str("missing")
			if s, _, _ := h.getBuf(tc.module, "get", 64, st, mp, ml); s != abi.None {
				t.Fatalf("missing key = %v, want none", s)
			}
			// Config stores and dictionaries are one namespace: each
			// module opens the other's stores too.
			other, otherValue := "cs", "config value"
			if tc.module == abi.ModuleConfigStore {
				other, otherValue = "dict", "dict value"
			}
			op, ol := h.str(other)
			h.want(abi.OK, tc.module, "open", op, ol, o)
			if s, v, _ := h.getBuf(tc.module, "get", 64, uint64(h.u32(o)), kp, kl); s != abi.OK || v != otherValue {
				t.Fatalf("get from %q through %s = %v %q, want %q", other, tc.module, s, v, otherValue)
			}
		})
	}
	h := newHarness(t, harnessOpts{envCfg: cfg})
	o := h.out()
	p, l := h.str("cs")
	h.want(abi.OK, abi.ModuleConfigStore, "open", p, l, o)
	ep, el := h.str("empty")
	if s, v, n := h.getBuf(abi.ModuleConfigStore, "get", 0, uint64(h.u32(o)), ep, el); s != abi.OK || v != "" || n != 0 {
		t.Fatalf("empty value into a 0-byte buffer = %v %q %d", s, v, n)
	}
}

// testOrigin is a loopback origin that records what it received.
type testOrigin struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []originReq
}

type originReq struct {
	method, uri, host, body string
	header                  http.Header
}

func newTestOrigin(t *testing.T) *testOrigin {
	o := &testOrigin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		o.mu.Lock()
		o.reqs = append(o.reqs, originReq{r.Method, r.RequestURI, r.Host, string(b), r.Header.Clone()})
		o.mu.Unlock()
		w.Header().Set("X-Origin", "yes")
		w.WriteHeader(202)
		fmt.Fprintf(w, "echo:%s", b)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *testOrigin) received() []originReq {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]originReq(nil), o.reqs...)
}

// originRequest builds a request with a header and a body.
func (h *harness) originRequest(method, uri, body string) (uint64, uint64) {
	h.t.Helper()
	r, b := h.newHandle(kindReq), h.newHandle(kindBody)
	mp, ml := h.str(method)
	h.want(abi.OK, abi.ModuleHTTPReq, "method_set", uint64(r), mp, ml)
	up, ul := h.str(uri)
	h.want(abi.OK, abi.ModuleHTTPReq, "uri_set", uint64(r), up, ul)
	h.hdrSet(abi.ModuleHTTPReq, "header_insert", r, "X-Guest", "g")
	h.writeBody(b, body, abi.BodyWriteBack)
	return uint64(r), uint64(b)
}

// checkOriginResponse checks a response from testOrigin for body want.
func (h *harness) checkOriginResponse(resp, body uint32, want string) {
	h.t.Helper()
	o := uint64(h.alloc(2))
	h.want(abi.OK, abi.ModuleHTTPResp, "status_get", uint64(resp), o)
	if s := h.u16(o); s != 202 {
		h.t.Fatalf("origin status %d, want 202", s)
	}
	np, nl := h.str("x-origin")
	if st, v, _ := h.getBuf(abi.ModuleHTTPResp, "header_value_get", 16, uint64(resp), np, nl); st != abi.OK || v != "yes" {
		h.t.Fatalf("origin header = %v %q", st, v)
	}
	if got := h.readBody(body, 7); got != "echo:"+want {
		h.t.Fatalf("origin body = %q, want %q", got, "echo:"+want)
	}
}

// TestSend sends through every send hostcall to a loopback origin.
func TestSend(t *testing.T) {
	origin := newTestOrigin(t)
	cfg := EnvConfig{Backends: []StaticBackend{{Name: "origin", Settings: pool.Settings{Scheme: "http", Addr: origin.Listener.Addr().String()}}}}
	for i, name := range []string{"send", "send_v2", "send_v3", "send_async", "send_async_streaming", "send_async_v2"} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{envCfg: cfg})
			body := fmt.Sprintf("payload-%d", i)
			r, b := h.originRequest(http.MethodPut, "http://guest.test/p?x=1", body)
			bp, bl := h.str("origin")
			ro, bo, detail := h.out(), h.out(), uint64(h.alloc(abi.SendErrDetailSize))
			var resp, rbody uint32
			switch name {
			case "send":
				h.want(abi.OK, abi.ModuleHTTPReq, name, r, b, bp, bl, ro, bo)
			case "send_v2", "send_v3":
				h.want(abi.OK, abi.ModuleHTTPReq, name, r, b, bp, bl, detail, ro, bo)
				if tag := h.u32(detail); tag != abi.SendErrOK {
					t.Fatalf("send_error_detail tag %d, want ok", tag)
				}
			default:
				po := h.out()
				args := []uint64{r, b, bp, bl, po}
				if name == "send_async_v2" {
					args = []uint64{r, b, bp, bl, 0, po}
				}
				h.want(abi.OK, abi.ModuleHTTPReq, name, args...)
				p := uint64(h.u32(po))
				if name == "send_async_streaming" {
					// The body stays open for streaming; closing it ends the request.
					h.writeBody(uint32(b), "+more", abi.BodyWriteBack)
					body += "+more"
					h.want(abi.OK, abi.ModuleHTTPBody, "close", b)
				}
				h.want(abi.OK, abi.ModuleHTTPReq, "pending_req_wait_v2", p, detail, ro, bo)
				if tag := h.u32(detail); tag != abi.SendErrOK {
					t.Fatalf("send_error_detail tag %d, want ok", tag)
				}
				h.want(abi.Badf, abi.ModuleHTTPReq, "pending_req_wait", p, ro, bo)
			}
			resp, rbody = h.u32(ro), h.u32(bo)
			h.checkOriginResponse(resp, rbody, body)
			got := origin.received()
			if len(got) != i+1 {
				t.Fatalf("origin saw %d requests, want %d", len(got), i+1)
			}
			last := got[i]
			if last.method != http.MethodPut || last.uri != "/p?x=1" || last.host != "guest.test" || last.body != body || last.header.Get("X-Guest") != "g" {
				t.Fatalf("origin received %+v", last)
			}
			if name != "send_async_streaming" {
				// A sent body is consumed.
				h.want(abi.Badf, abi.ModuleHTTPBody, "close", b)
			}
		})
	}
}

// TestPendingPoll polls a request until it is done.
func TestPendingPoll(t *testing.T) {
	origin := newTestOrigin(t)
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{Backends: []StaticBackend{{Name: "origin", Settings: pool.Settings{Scheme: "http", Addr: origin.Listener.Addr().String()}}}}})
	r, b := h.originRequest(http.MethodPost, "/polled", "poll me")
	bp, bl := h.str("origin")
	po, done, ro, bo, detail := h.out(), h.out(), h.out(), h.out(), uint64(h.alloc(abi.SendErrDetailSize))
	h.want(abi.OK, abi.ModuleHTTPReq, "send_async", r, b, bp, bl, po)
	p := uint64(h.u32(po))
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.want(abi.OK, abi.ModuleHTTPReq, "pending_req_poll_v2", p, detail, done, ro, bo)
		if h.u32(done) == 1 {
			break
		}
		if h.u32(ro) != abi.NoHandle || h.u32(bo) != abi.NoHandle {
			t.Fatalf("not done, but handles %d %d written", h.u32(ro), h.u32(bo))
		}
		if time.Now().After(deadline) {
			t.Fatal("request to a loopback origin not done after 10s")
		}
		time.Sleep(time.Millisecond) // poll interval, not an assertion
	}
	h.checkOriginResponse(h.u32(ro), h.u32(bo), "poll me")
	h.want(abi.Badf, abi.ModuleHTTPReq, "pending_req_poll", p, done, ro, bo)
}

// TestSendErrors: an unknown backend is inval (no request made); a
// refused connection is error with a send_error_detail tag.
func TestSendErrors(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{Backends: []StaticBackend{{Name: "closed", Settings: pool.Settings{Scheme: "http", Addr: closedAddr}}}}})
	for _, name := range []string{"send", "send_v2", "send_v3", "send_async", "send_async_streaming", "send_async_v2"} {
		r, b := h.originRequest(http.MethodGet, "/", "x")
		for _, backend := range []string{"unknown", "", "Closed"} {
			bp, bl := h.str(backend)
			ro, bo, det := h.out(), h.out(), uint64(h.alloc(abi.SendErrDetailSize))
			var args []uint64
			switch name {
			case "send":
				args = []uint64{r, b, bp, bl, ro, bo}
			case "send_v2", "send_v3":
				args = []uint64{r, b, bp, bl, det, ro, bo}
			case "send_async_v2":
				args = []uint64{r, b, bp, bl, 0, ro}
			default:
				args = []uint64{r, b, bp, bl, ro}
			}
			if st := h.call(abi.ModuleHTTPReq, name, args...); st != abi.Inval {
				t.Errorf("%s to backend %q = %v, want inval", name, backend, st)
			}
		}
		// The body was not consumed by the refused sends.
		if got := h.readBody(uint32(b), 8); got != "x" {
			t.Errorf("%s: body after refused sends = %q", name, got)
		}
	}
	r, b := h.originRequest(http.MethodGet, "/", "x")
	bp, bl := h.str("closed")
	ro, bo, det := h.out(), h.out(), uint64(h.alloc(abi.SendErrDetailSize))
	h.want(abi.Error, abi.ModuleHTTPReq, "send_v2", r, b, bp, bl, det, ro, bo)
	if tag := h.u32(det); tag != abi.SendErrConnectionRefused {
		t.Fatalf("send_error_detail tag for a refused connection = %d, want %d", tag, abi.SendErrConnectionRefused)
	}
}

// TestFinishWithoutResponse: a guest that sent nothing gets errStatus with
// a plain-text body naming the cause and the request id.
func TestFinishWithoutResponse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		runErr error
		want   string
	}{
		{"no-error", nil, "guest sent no response"},
		{"run-error", errors.New("guest trapped: unreachable"), "guest trapped: unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			out := h.s.Finish(tc.runErr, http.StatusBadGateway)
			if out.Sent || out.Status != http.StatusBadGateway {
				t.Fatalf("Finish = %+v", out)
			}
			body := h.rec.Body.String()
			if h.rec.Code != http.StatusBadGateway || !strings.Contains(body, tc.want) || !strings.Contains(body, testReqID) ||
				!strings.HasPrefix(h.rec.Header().Get("Content-Type"), "text/plain") {
				t.Fatalf("client got %d %q %v", h.rec.Code, body, h.rec.Header())
			}
		})
	}
}

// TestStreamingAppendAndAbort: a body appended to a streaming downstream
// body goes to the client; a guest that fails with the stream open gets
// an aborted outcome (the server cuts the connection).
func TestStreamingAppendAndAbort(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	r, b := h.respWithBody(200, "head|")
	h.want(abi.OK, abi.ModuleHTTPResp, "send_downstream", uint64(r), uint64(b), 1)
	src := h.newHandle(kindBody)
	h.writeBody(src, "appended|", abi.BodyWriteBack)
	h.want(abi.OK, abi.ModuleHTTPBody, "append", uint64(b), uint64(src))
	// The downstream request body can be streamed through as well.
	ro, bo := h.out(), h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "body_downstream_get", ro, bo)
	h.want(abi.OK, abi.ModuleHTTPBody, "append", uint64(b), uint64(h.u32(bo)))
	if got, want := h.rec.Body.String(), "head|appended|"+testDownBody; got != want {
		t.Fatalf("client got %q, want %q", got, want)
	}
	// A streaming body cannot be appended elsewhere.
	other := h.newHandle(kindBody)
	h.want(abi.Inval, abi.ModuleHTTPBody, "append", uint64(other), uint64(b))
	if out := h.s.Finish(errors.New("trap"), 502); !out.Sent || out.Status != 200 || !out.Aborted {
		t.Fatalf("Finish after a failed streaming guest = %+v, want sent, 200, aborted", out)
	}
}

// TestPendingLimit: beyond Limits.MaxPendingRequests requests not yet
// collected, send_async is limitexceeded; collecting one frees a slot.
func TestPendingLimit(t *testing.T) {
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "done")
	}))
	defer origin.Close()
	defer close(release)
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{
		Limits:   Limits{MaxPendingRequests: 2},
		Backends: []StaticBackend{{Name: "origin", Settings: pool.Settings{Scheme: "http", Addr: origin.Listener.Addr().String()}}},
	}})
	bp, bl := h.str("origin")
	send := func(path string) (abi.Status, uint64) {
		r := h.newHandle(kindReq)
		up, ul := h.str(path)
		h.want(abi.OK, abi.ModuleHTTPReq, "uri_set", uint64(r), up, ul)
		po := h.out()
		st := h.call(abi.ModuleHTTPReq, "send_async", uint64(r), uint64(abi.NoHandle), bp, bl, po)
		return st, uint64(h.u32(po))
	}
	st, fast := send("/fast")
	if st != abi.OK {
		t.Fatalf("first send_async = %v", st)
	}
	if st, _ := send("/hold"); st != abi.OK {
		t.Fatalf("second send_async = %v", st)
	}
	if st, _ := send("/fast"); st != abi.LimitExceeded {
		t.Fatalf("third send_async with 2 pending = %v, want limitexceeded", st)
	}
	ro, bo := h.out(), h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "pending_req_wait", fast, ro, bo)
	if got := h.readBody(h.u32(bo), 16); got != "done" {
		t.Fatalf("collected body %q", got)
	}
	if st, _ := send("/fast"); st != abi.OK {
		t.Fatalf("send_async after collecting one = %v, want ok", st)
	}
}
