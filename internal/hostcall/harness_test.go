package hostcall

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/pool"
)

// fakeMem is a bounds-checked engine.Memory over a []byte. Views returned
// by Read have their capacity capped at the view, and the backing array
// carries a guard region past Size that a hostcall must never touch.
type fakeMem struct {
	b    []byte
	size uint32
}

const (
	guardLen  = 64
	guardByte = 0xA5
)

func newFakeMem(size uint32) *fakeMem {
	b := make([]byte, int(size)+guardLen)
	for i := int(size); i < len(b); i++ {
		b[i] = guardByte
	}
	return &fakeMem{b: b, size: size}
}

func (m *fakeMem) inside(off, n uint32) bool { return uint64(off)+uint64(n) <= uint64(m.size) }

func (m *fakeMem) Read(off, n uint32) ([]byte, bool) {
	if !m.inside(off, n) {
		return nil, false
	}
	return m.b[off : off+n : off+n], true
}

func (m *fakeMem) Write(off uint32, p []byte) bool {
	if uint64(len(p)) > uint64(^uint32(0)) || !m.inside(off, uint32(len(p))) {
		return false
	}
	copy(m.b[off:], p)
	return true
}

func (m *fakeMem) Size() uint32 { return m.size }

func (m *fakeMem) guardIntact() bool {
	for _, c := range m.b[m.size:] {
		if c != guardByte {
			return false
		}
	}
	return true
}

func TestFakeMemBounds(t *testing.T) {
	m := newFakeMem(16)
	for _, tc := range []struct {
		off, n uint32
		ok     bool
	}{
		{0, 16, true}, {16, 0, true}, {15, 1, true}, {15, 2, false}, {17, 0, false},
		{0xFFFFFFFF, 2, false}, {1, 0xFFFFFFFF, false},
	} {
		v, ok := m.Read(tc.off, tc.n)
		if ok != tc.ok || (ok && (len(v) != int(tc.n) || cap(v) != int(tc.n))) {
			t.Errorf("Read(%d, %d) = len %d cap %d ok %v, want ok %v", tc.off, tc.n, len(v), cap(v), ok, tc.ok)
		}
		if tc.n <= 16 {
			if ok := m.Write(tc.off, make([]byte, tc.n)); ok != tc.ok {
				t.Errorf("Write(%d, %d bytes) = %v, want %v", tc.off, tc.n, ok, tc.ok)
			}
		}
	}
	if !m.guardIntact() {
		t.Fatal("guard region changed")
	}
}

// logSink is a slog.Handler that keeps every record, for assertions on
// what the hostcalls log (and to catch panics bind turns into statuses).
type logSink struct {
	mu   sync.Mutex
	recs []logRec
}

type logRec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) WithAttrs(as []slog.Attr) slog.Handler    { return &attrSink{l, as} }
func (l *logSink) WithGroup(string) slog.Handler            { return l }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	return l.handle(r, nil)
}

func (l *logSink) handle(r slog.Record, pre []slog.Attr) error {
	rec := logRec{level: r.Level, msg: r.Message, attrs: map[string]string{}}
	for _, a := range pre {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { rec.attrs[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	l.recs = append(l.recs, rec)
	l.mu.Unlock()
	return nil
}

func (l *logSink) records() []logRec { return l.since(0) }

// since returns the records from index i on.
func (l *logSink) since(i int) []logRec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logRec(nil), l.recs[i:]...)
}

func (l *logSink) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

type attrSink struct {
	l  *logSink
	as []slog.Attr
}

func (a *attrSink) Enabled(context.Context, slog.Level) bool { return true }
func (a *attrSink) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrSink{a.l, append(append([]slog.Attr(nil), a.as...), as...)}
}
func (a *attrSink) WithGroup(string) slog.Handler { return a }
func (a *attrSink) Handle(_ context.Context, r slog.Record) error {
	return a.l.handle(r, a.as)
}

// newTestEnv builds an Env whose logger records into the returned sink and
// whose pool manager is closed when the test ends.
func newTestEnv(t testing.TB, cfg EnvConfig) (*Env, *logSink) {
	t.Helper()
	sink := &logSink{}
	cfg.Logger = slog.New(sink)
	if cfg.ConfigStores == nil && cfg.Dictionaries == nil {
		// newHandle(kindStore) opens config store "settings".
		cfg.ConfigStores = map[string]map[string]string{"settings": {"greeting": "hello"}}
	}
	if cfg.Pools == nil {
		cfg.Pools = pool.NewManager(cfg.Logger)
		t.Cleanup(cfg.Pools.Close)
	}
	if cfg.Policy == nil {
		// The tests' origins are on loopback: local development's policy.
		cfg.Policy = guardPolicy(pool.GuardConfig{AllowPrivate: true})
	}
	env, err := NewEnv(cfg)
	if err != nil {
		t.Fatalf("NewEnv: %v", err)
	}
	return env, sink
}

// guardPolicy is a Policy with the Guard of cfg; it panics on a bad cfg
// (tests write them literally).
func guardPolicy(cfg pool.GuardConfig) *Policy {
	g, err := pool.NewGuard(cfg)
	if err != nil {
		panic(err)
	}
	return &Policy{Guard: g}
}

// harness runs hostcalls the way an engine does: by module and name,
// through the engine.HostFunc the Linker binds, with the session attached
// to the context, the parameters on a []uint64 stack and the status read
// back from stack[0].
type harness struct {
	t    testing.TB
	env  *Env
	logs *logSink
	s    *Session
	ctx  context.Context
	mem  *fakeMem
	link engine.Linker
	sigs map[[2]string]string
	desc map[[2]string]abi.Hostcall // abi.Hostcalls, for the statuses
	fns  map[[2]string]engine.HostFunc
	rec  *httptest.ResponseRecorder
	next uint32 // bump allocator in mem

	downReq uint32 // the downstream request handle, once taken
}

// harnessOpts configures newHarness; zero values are the defaults.
type harnessOpts struct {
	env          *Env // shared env; nil builds one from envCfg
	envCfg       EnvConfig
	memSize      uint32 // default 64 KiB
	noDownstream bool
	req          *http.Request  // downstream request; default a POST with a body
	clientIP     net.IP         // default 192.0.2.7
	serverIP     net.IP         // default 127.0.0.1
	downTLS      *DownstreamTLS // the downstream connection's TLS; default plain HTTP
	h2fp         func() string  // the downstream connection's HTTP/2 fingerprint
}

const (
	testReqID    = "req-0123456789"
	testDownBody = "downstream request body"
)

func newDownstreamRequest() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://example.test/path/x?q=1", strings.NewReader(testDownBody))
	r.Header.Set("X-Test", "one")
	r.Header.Add("X-Test", "two")
	r.Header.Set("Content-Type", "text/plain")
	return r
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	env, logs := o.env, (*logSink)(nil)
	if env == nil {
		env, logs = newTestEnv(t, o.envCfg)
	} else {
		logs = env.Logger.Handler().(*logSink)
	}
	if o.memSize == 0 {
		o.memSize = 64 << 10
	}
	h := &harness{
		t: t, env: env, logs: logs, mem: newFakeMem(o.memSize),
		link: NewLinker(env.Logger).Link(),
		sigs: map[[2]string]string{}, desc: map[[2]string]abi.Hostcall{}, fns: map[[2]string]engine.HostFunc{},
		next: 1024,
	}
	for _, hc := range Table() {
		h.sigs[[2]string{hc.Module, hc.Name}] = hc.Params
	}
	for _, d := range abi.Hostcalls() {
		h.desc[[2]string{d.Module, d.Name}] = d
	}
	var d *Downstream
	if !o.noDownstream {
		req := o.req
		if req == nil {
			req = newDownstreamRequest()
		}
		h.rec = httptest.NewRecorder()
		d = &Downstream{Request: req, Writer: h.rec, ClientIP: o.clientIP, ServerIP: o.serverIP, TLS: o.downTLS, H2Fingerprint: o.h2fp}
		if d.ClientIP == nil {
			d.ClientIP = net.ParseIP("192.0.2.7")
		}
		if d.ServerIP == nil {
			d.ServerIP = net.ParseIP("127.0.0.1")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.s = env.NewSession(ctx, testReqID, d)
	h.ctx = WithSession(ctx, h.s)
	t.Cleanup(func() {
		cancel()
		h.s.Close()
	})
	return h
}

// call invokes module.name with args and returns the status. It fails the
// test when the call has the wrong arity, when the hostcall panicked (bind
// logs and hides a panic), when anything was written past the memory or
// when the status is not one abi.Hostcalls lists for the hostcall (for
// those it marks implemented; TestTableMatchesDescription covers the rest).
func (h *harness) call(module, name string, args ...uint64) abi.Status {
	h.t.Helper()
	k := [2]string{module, name}
	params, ok := h.sigs[k]
	if !ok {
		h.t.Fatalf("%s.%s is not in Table()", module, name)
	}
	if len(args) != len(params) {
		h.t.Fatalf("%s.%s takes %d parameters, test passed %d", module, name, len(params), len(args))
	}
	fn, ok := h.fns[k]
	if !ok {
		var err error
		fn, err = h.link(engine.Import{Module: module, Name: name, Signature: engine.Signature{Params: params, Results: "i"}})
		if err != nil {
			h.t.Fatalf("link %s.%s: %v", module, name, err)
		}
		h.fns[k] = fn
	}
	// An engine's stack holds max(params, results) words.
	stack := make([]uint64, max(len(args), 1))
	copy(stack, args)
	before := h.logs.len()
	fn(h.ctx, h.mem, stack)
	for _, r := range h.logs.since(before) {
		if r.msg == "hostcall panicked" {
			h.t.Errorf("%s.%s%v panicked: %s", module, name, args, r.attrs["panic"])
		}
	}
	if !h.mem.guardIntact() {
		h.t.Fatalf("%s.%s%v wrote outside linear memory", module, name, args)
	}
	st := abi.Status(stack[0])
	if d := h.desc[k]; d.Implemented && !d.Statuses.Has(st) {
		h.t.Errorf("%s.%s%v answered %v, not among the statuses abi.Hostcalls lists: %v", module, name, args, st, d.Statuses.List())
	}
	return st
}

// want calls and fails the test unless the status is st.
func (h *harness) want(st abi.Status, module, name string, args ...uint64) {
	h.t.Helper()
	if got := h.call(module, name, args...); got != st {
		h.t.Fatalf("%s.%s%v = %v, want %v", module, name, args, got, st)
	}
}

// alloc reserves n bytes, 8-aligned, filled with 0xEE so that untouched
// out-values are recognisable.
func (h *harness) alloc(n uint32) uint32 {
	h.t.Helper()
	p := (h.next + 7) &^ 7
	if uint64(p)+uint64(n) > uint64(h.mem.size) {
		h.t.Fatalf("fake memory exhausted allocating %d bytes", n)
	}
	h.next = p + n
	for i := p; i < p+n; i++ {
		h.mem.b[i] = 0xEE
	}
	return p
}

// str places s in memory and returns its (ptr, len) parameters.
func (h *harness) str(s string) (uint64, uint64) {
	p := h.alloc(uint32(len(s)))
	copy(h.mem.b[p:], s)
	return uint64(p), uint64(len(s))
}

func (h *harness) out() uint64 { return uint64(h.alloc(8)) }

func (h *harness) u32(p uint64) uint32 {
	return binary.LittleEndian.Uint32(h.mem.b[p:])
}

func (h *harness) u16(p uint64) uint16 {
	return binary.LittleEndian.Uint16(h.mem.b[p:])
}

func (h *harness) i64(p uint64) int64 {
	return int64(binary.LittleEndian.Uint64(h.mem.b[p:]))
}

func (h *harness) bytesAt(p uint64, n uint32) []byte {
	return append([]byte(nil), h.mem.b[p:uint32(p)+n]...)
}

func (h *harness) putU32(p uint32, v uint32) { binary.LittleEndian.PutUint32(h.mem.b[p:], v) }

// newHandle makes a fresh handle of kind k through the hostcalls.
func (h *harness) newHandle(k handleKind) uint32 {
	h.t.Helper()
	o := h.out()
	switch k {
	case kindReq:
		h.want(abi.OK, abi.ModuleHTTPReq, "new", o)
	case kindResp:
		h.want(abi.OK, abi.ModuleHTTPResp, "new", o)
	case kindBody:
		h.want(abi.OK, abi.ModuleHTTPBody, "new", o)
	case kindLog:
		p, n := h.str("test-endpoint")
		h.want(abi.OK, abi.ModuleLog, "endpoint_get", p, n, o)
	case kindStore:
		p, n := h.str("settings")
		h.want(abi.OK, abi.ModuleConfigStore, "open", p, n, o)
	case kindDownReq:
		if h.downReq == 0 {
			b := h.out()
			h.want(abi.OK, abi.ModuleHTTPReq, "body_downstream_get", o, b)
			h.downReq = h.u32(o)
		}
		return h.downReq
	default:
		h.t.Fatalf("no such handle kind %d", k)
	}
	return h.u32(o)
}

// handleKind names the handle tables a test can make handles in.
type handleKind int

const (
	kindReq handleKind = iota
	kindResp
	kindBody
	kindLog
	kindStore
	kindDownReq // the downstream request (a request handle)
)

func (k handleKind) String() string {
	return [...]string{"request", "response", "body", "log", "store", "downstream-request"}[k]
}

// readBody reads body handle b to its end through fastly_http_body.read,
// chunk bytes at a time.
func (h *harness) readBody(b uint32, chunk uint32) string {
	h.t.Helper()
	buf, n := uint64(h.alloc(chunk)), h.out()
	var sb strings.Builder
	for i := 0; ; i++ {
		if i > 1<<16 {
			h.t.Fatal("body read does not end")
		}
		h.want(abi.OK, abi.ModuleHTTPBody, "read", uint64(b), buf, uint64(chunk), n)
		got := h.u32(n)
		if got > chunk {
			h.t.Fatalf("read reported %d bytes into a %d-byte buffer", got, chunk)
		}
		if got == 0 {
			return sb.String()
		}
		sb.Write(h.bytesAt(buf, got))
	}
}

// writeBody writes s at the given end of body b and checks nwritten.
func (h *harness) writeBody(b uint32, s string, end uint32) {
	h.t.Helper()
	p, n := h.str(s)
	nw := h.out()
	h.want(abi.OK, abi.ModuleHTTPBody, "write", uint64(b), p, n, uint64(end), nw)
	if got := h.u32(nw); got != uint32(len(s)) {
		h.t.Fatalf("body write nwritten = %d, want %d", got, len(s))
	}
}

// getBuf calls a (..., buf, max, nwritten) getter with a buffer of size
// max appended to args and returns status and the value read.
func (h *harness) getBuf(module, name string, max uint32, args ...uint64) (abi.Status, string, uint32) {
	h.t.Helper()
	buf, nw := h.alloc(max+1), h.out()
	st := h.call(module, name, append(args, uint64(buf), uint64(max), nw)...)
	n := h.u32(nw)
	if st != abi.OK {
		return st, "", n
	}
	if n > max {
		h.t.Fatalf("%s.%s wrote nwritten %d > max %d", module, name, n, max)
	}
	if h.mem.b[buf+max] != 0xEE {
		h.t.Fatalf("%s.%s wrote past its %d-byte buffer", module, name, max)
	}
	return st, string(h.bytesAt(uint64(buf), n)), n
}

// multi pages through a cursor getter (args followed by buf, buf_len,
// cursor, ending_cursor_out, nwritten_out) with a bufLen buffer and
// returns every value, or the status that stopped it.
func (h *harness) multi(module, name string, bufLen uint32, args ...uint64) ([]string, abi.Status) {
	h.t.Helper()
	buf, ec, nw := h.alloc(bufLen+1), h.out(), h.out()
	var vals []string
	cursor := uint32(0)
	for i := 0; i < 1000; i++ {
		st := h.call(module, name, append(args[:len(args):len(args)], uint64(buf), uint64(bufLen), uint64(cursor), ec, nw)...)
		if st != abi.OK {
			return vals, st
		}
		n := h.u32(nw)
		if n > bufLen || h.mem.b[buf+bufLen] != 0xEE {
			h.t.Fatalf("%s.%s wrote %d bytes into a %d-byte buffer", module, name, n, bufLen)
		}
		chunk := string(h.bytesAt(uint64(buf), n))
		if n > 0 && !strings.HasSuffix(chunk, "\x00") {
			h.t.Fatalf("%s.%s chunk %q is not NUL-terminated", module, name, chunk)
		}
		if n > 0 {
			vals = append(vals, strings.Split(strings.TrimSuffix(chunk, "\x00"), "\x00")...)
		}
		next := h.i64(ec)
		if next == abi.CursorDone {
			return vals, abi.OK
		}
		if next <= int64(cursor) {
			h.t.Fatalf("%s.%s: ending cursor %d does not advance from %d", module, name, next, cursor)
		}
		cursor = uint32(next)
	}
	h.t.Fatalf("%s.%s: paging does not end", module, name)
	return nil, 0
}
