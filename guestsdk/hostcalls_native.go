//go:build !wasip1

package guestsdk

// The in-memory fake host behind the native stand-ins of the raw
// hostcall bindings (hostcalls_gen_native.go, generated, with the
// signatures of hostcalls_gen_wasip1.go), so that `go test` exercises the
// SDK's logic (buffer retries, cursor paging, config encoding) off-Wasm.
// A stand-in runs the fakeHost method of its own name under fakeCall;
// a hostcall the fake has no method for answers unsupported. Pointers
// are real Go pointers here.
//
// The fake is installed per test (installFake); without one every
// hostcall answers unsupported. The atomic pointer below is the package's
// only mutable state and exists only in native builds: the raw bindings
// are package-level functions, as the Wasm imports are.

import (
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

var currentFake atomic.Pointer[fakeHost]

// fakeField is one header field in order.
type fakeField struct{ name, value string }

// fakeMsg is a request or response in the fake host.
type fakeMsg struct {
	method, uri string
	status      uint32
	hdr         []fakeField
}

func (m *fakeMsg) names() []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range m.hdr {
		k := strings.ToLower(f.name)
		if !seen[k] {
			seen[k] = true
			out = append(out, f.name)
		}
	}
	return out
}

func (m *fakeMsg) values(name string) []string {
	var out []string
	for _, f := range m.hdr {
		if strings.EqualFold(f.name, name) {
			out = append(out, f.value)
		}
	}
	return out
}

// fakeBody is a host body; closed bodies stay for inspection.
type fakeBody struct {
	data   []byte
	off    int
	closed bool
	// abandoned: closed with fastly_http_body.abandon (incomplete).
	abandoned bool
}

// fakeBackend is a backend known to the fake host. raw is the
// dynamic_backend_config as received, strs the strings its pointer fields
// pointed at, keyed by field offset.
type fakeBackend struct {
	dynamic      bool
	host         string
	port         uint32
	overrideHost string
	target       string
	mask         uint32
	raw          []byte
	strs         map[int]string
}

// fakeSent is a request a backend received.
type fakeSent struct {
	backend string
	req     *fakeMsg
	body    []byte
}

// fakeResult is what an origin answers, or the status and detail of a
// failed send.
type fakeResult struct {
	resp   *fakeMsg
	body   []byte
	status abi.Status
	detail uint32
}

// fakeDownstream is the response sent downstream.
type fakeDownstream struct {
	resp      *fakeMsg
	body      uint32
	streaming uint32
}

// fakeHost is an in-memory host.
type fakeHost struct {
	mu      sync.Mutex
	next    uint32
	pins    map[uint32]unsafe.Pointer
	reqs    map[uint32]*fakeMsg
	resps   map[uint32]*fakeMsg
	bodies  map[uint32]*fakeBody
	pending map[uint32]fakeResult
	logs    map[uint32]string
	logged  map[string][]string
	dictH   map[uint32]string
	storeH  map[uint32]string
	dicts   map[string]map[string]string
	stores  map[string]map[string]string

	backends map[string]*fakeBackend
	downReq  uint32
	downBody uint32
	origin   func(backend string, req *fakeMsg, body []byte) fakeResult
	sent     []fakeSent
	down     *fakeDownstream
	calls    map[string]int
	force    map[string]abi.Status // status to answer instead, per op
	maxIO    int                   // >0: body and log writes/reads move at most this many bytes
	// queued are the downstream requests next_request_wait hands out, in
	// order; nil: next_request answers unsupported.
	queued   []fakeDown
	promises map[uint32]bool
	nextOpts []uint64 // next_request timeout_ms seen (0: none given)
	kv       *fakeKV  // KV and secret stores (kvstore_native.go), made on first use
}

// fakeDown is a queued downstream request.
type fakeDown struct {
	method, uri string
	hdr         []fakeField
	body        string
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		next:     1,
		pins:     map[uint32]unsafe.Pointer{},
		reqs:     map[uint32]*fakeMsg{},
		resps:    map[uint32]*fakeMsg{},
		bodies:   map[uint32]*fakeBody{},
		pending:  map[uint32]fakeResult{},
		logs:     map[uint32]string{},
		logged:   map[string][]string{},
		dictH:    map[uint32]string{},
		storeH:   map[uint32]string{},
		dicts:    map[string]map[string]string{},
		stores:   map[string]map[string]string{},
		backends: map[string]*fakeBackend{},
		calls:    map[string]int{},
		force:    map[string]abi.Status{},
		downReq:  abi.NoHandle,
		downBody: abi.NoHandle,
	}
}

func (f *fakeHost) handle() uint32 {
	f.next++
	return f.next
}

// setDownstream makes the downstream request.
func (f *fakeHost) setDownstream(method, uri string, hdr []fakeField, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downReq = f.handle()
	f.reqs[f.downReq] = &fakeMsg{method: method, uri: uri, hdr: hdr}
	f.downBody = f.handle()
	f.bodies[f.downBody] = &fakeBody{data: []byte(body)}
}

// fakeCall runs one hostcall against the installed fake.
func fakeCall(op string, fn func(f *fakeHost) abi.Status) uint32 {
	f := currentFake.Load()
	if f == nil {
		return uint32(abi.Unsupported)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	if st, ok := f.force[op]; ok {
		return uint32(st)
	}
	return uint32(fn(f))
}

// Guest memory access (native: real pointers).

func mem(p unsafe.Pointer, n uint32) []byte {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(p), n)
}

func memStr(p unsafe.Pointer, n uint32) string { return string(mem(p, n)) }
func putU32(p unsafe.Pointer, v uint32)        { *(*uint32)(p) = v }
func putU16(p unsafe.Pointer, v uint16)        { *(*uint16)(p) = v }
func putI64(p unsafe.Pointer, v int64)         { *(*int64)(p) = v }

func le32(b []byte, off int) uint32 {
	return uint32(b[off]) | uint32(b[off+1])<<8 | uint32(b[off+2])<<16 | uint32(b[off+3])<<24
}

// pin registers p and returns a fake 32-bit address for it, which the
// fake host resolves when it reads a config struct.
func pin(p unsafe.Pointer) uint32 {
	f := currentFake.Load()
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a := 0x1000 + f.handle()*16
	f.pins[a] = p
	return a
}

// writeOut is the host side of a (buf, buf_len, nwritten_out) getter.
func writeOut(v string, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	if uint64(len(v)) > uint64(bufLen) {
		putU32(nw, uint32(len(v)))
		return abi.Buflen
	}
	copy(mem(buf, bufLen), v)
	putU32(nw, uint32(len(v)))
	return abi.OK
}

// writeMulti is the host side of a multi-value getter.
func writeMulti(vals []string, buf unsafe.Pointer, bufLen, cursor uint32, endOut, nw unsafe.Pointer) abi.Status {
	if uint64(cursor) > uint64(len(vals)) {
		return abi.Inval
	}
	b := mem(buf, bufLen)
	n, i := 0, int(cursor)
	for ; i < len(vals); i++ {
		need := len(vals[i]) + 1
		if n+need > len(b) {
			break
		}
		copy(b[n:], vals[i])
		b[n+len(vals[i])] = 0
		n += need
	}
	if i == int(cursor) && i < len(vals) {
		putU32(nw, uint32(len(vals[i])+1))
		return abi.Buflen
	}
	putU32(nw, uint32(n))
	if i == len(vals) {
		putI64(endOut, abi.CursorDone)
	} else {
		putI64(endOut, int64(i))
	}
	return abi.OK
}

func (f *fakeHost) body(h uint32) *fakeBody {
	b := f.bodies[h]
	if b == nil || b.closed {
		return nil
	}
	return b
}

func (f *fakeHost) limit(n uint32) uint32 {
	if f.maxIO > 0 && n > uint32(f.maxIO) {
		return uint32(f.maxIO)
	}
	return n
}

func (f *fakeHost) abiInit(version uint64) abi.Status {
	if version != abi.Version {
		return abi.Error
	}
	return abi.OK
}

func (f *fakeHost) bodyNew(out unsafe.Pointer) abi.Status {
	h := f.handle()
	f.bodies[h] = &fakeBody{}
	putU32(out, h)
	return abi.OK
}

func (f *fakeHost) bodyAppend(dest, src uint32) abi.Status {
	d, s := f.body(dest), f.body(src)
	if d == nil || s == nil {
		return abi.Badf
	}
	d.data = append(d.data, s.data[s.off:]...)
	delete(f.bodies, src)
	return abi.OK
}

func (f *fakeHost) bodyRead(h uint32, buf unsafe.Pointer, bufLen uint32, nread unsafe.Pointer) abi.Status {
	b := f.body(h)
	if b == nil {
		return abi.Badf
	}
	n := copy(mem(buf, f.limit(bufLen)), b.data[b.off:])
	b.off += n
	putU32(nread, uint32(n))
	return abi.OK
}

func (f *fakeHost) bodyWrite(h uint32, buf unsafe.Pointer, bufLen uint32, end uint32, nw unsafe.Pointer) abi.Status {
	b := f.body(h)
	if b == nil {
		return abi.Badf
	}
	p := mem(buf, f.limit(bufLen))
	switch end {
	case abi.BodyWriteBack:
		b.data = append(b.data, p...)
	case abi.BodyWriteFront:
		b.data = append(append([]byte(nil), p...), b.data...)
	default:
		return abi.Inval
	}
	putU32(nw, uint32(len(p)))
	return abi.OK
}

func (f *fakeHost) bodyClose(h uint32) abi.Status {
	b := f.body(h)
	if b == nil {
		return abi.Badf
	}
	b.closed = true
	return abi.OK
}

func (f *fakeHost) bodyAbandon(h uint32) abi.Status {
	b := f.body(h)
	if b == nil {
		return abi.Badf
	}
	b.closed, b.abandoned = true, true
	return abi.OK
}

func (f *fakeHost) logEndpointGet(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) abi.Status {
	n := memStr(name, nameLen)
	if n == "stdout" || n == "stderr" || strings.HasPrefix(n, "fst_managed_") {
		return abi.Inval
	}
	h := f.handle()
	f.logs[h] = n
	putU32(out, h)
	return abi.OK
}

func (f *fakeHost) logWrite(h uint32, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	name, ok := f.logs[h]
	if !ok {
		return abi.Badf
	}
	n := f.limit(bufLen)
	f.logged[name] = append(f.logged[name], memStr(buf, n))
	putU32(nw, n)
	return abi.OK
}

func (f *fakeHost) downstreamNextRequest(mask uint32, opts unsafe.Pointer, promiseOut unsafe.Pointer) abi.Status {
	if f.queued == nil {
		return abi.Unsupported
	}
	var ms uint64
	if mask&2 != 0 {
		ms = *(*uint64)(opts)
	}
	f.nextOpts = append(f.nextOpts, ms)
	f.down = nil // the previous response is complete
	h := f.handle()
	if f.promises == nil {
		f.promises = map[uint32]bool{}
	}
	f.promises[h] = true
	putU32(promiseOut, h)
	return abi.OK
}

func (f *fakeHost) downstreamNextRequestWait(promise uint32, reqOut, bodyOut unsafe.Pointer) abi.Status {
	if !f.promises[promise] {
		return abi.Badf
	}
	delete(f.promises, promise)
	if len(f.queued) == 0 {
		return abi.None
	}
	d := f.queued[0]
	f.queued = f.queued[1:]
	req, body := f.handle(), f.handle()
	f.reqs[req] = &fakeMsg{method: d.method, uri: d.uri, hdr: d.hdr}
	f.bodies[body] = &fakeBody{data: []byte(d.body)}
	putU32(reqOut, req)
	putU32(bodyOut, body)
	return abi.OK
}

func (f *fakeHost) reqBodyDownstreamGet(reqOut, bodyOut unsafe.Pointer) abi.Status {
	if f.downReq == abi.NoHandle {
		return abi.Error
	}
	putU32(reqOut, f.downReq)
	putU32(bodyOut, f.downBody)
	return abi.OK
}

func (f *fakeHost) reqNew(out unsafe.Pointer) abi.Status {
	h := f.handle()
	f.reqs[h] = &fakeMsg{method: "GET", uri: "/"}
	putU32(out, h)
	return abi.OK
}

func (f *fakeHost) reqClose(h uint32) abi.Status {
	if f.reqs[h] == nil {
		return abi.Badf
	}
	delete(f.reqs, h)
	return abi.OK
}

func withMsg(m map[uint32]*fakeMsg, h uint32, fn func(*fakeMsg) abi.Status) abi.Status {
	msg := m[h]
	if msg == nil {
		return abi.Badf
	}
	return fn(msg)
}

func (f *fakeHost) reqMethodGet(h uint32, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	return withMsg(f.reqs, h, func(m *fakeMsg) abi.Status { return writeOut(m.method, buf, bufLen, nw) })
}

func (f *fakeHost) reqMethodSet(h uint32, p unsafe.Pointer, n uint32) abi.Status {
	return withMsg(f.reqs, h, func(m *fakeMsg) abi.Status { m.method = memStr(p, n); return abi.OK })
}

func (f *fakeHost) reqURIGet(h uint32, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	return withMsg(f.reqs, h, func(m *fakeMsg) abi.Status { return writeOut(m.uri, buf, bufLen, nw) })
}

func (f *fakeHost) reqURISet(h uint32, p unsafe.Pointer, n uint32) abi.Status {
	return withMsg(f.reqs, h, func(m *fakeMsg) abi.Status { m.uri = memStr(p, n); return abi.OK })
}

func headerNames(m map[uint32]*fakeMsg, h uint32, buf unsafe.Pointer, bufLen, cursor uint32, end, nw unsafe.Pointer) abi.Status {
	return withMsg(m, h, func(msg *fakeMsg) abi.Status { return writeMulti(msg.names(), buf, bufLen, cursor, end, nw) })
}

func headerValues(m map[uint32]*fakeMsg, h uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen, cursor uint32, end, nw unsafe.Pointer) abi.Status {
	return withMsg(m, h, func(msg *fakeMsg) abi.Status {
		vs := msg.values(memStr(name, nameLen))
		if len(vs) == 0 {
			return abi.None
		}
		return writeMulti(vs, buf, bufLen, cursor, end, nw)
	})
}

func headerAppend(m map[uint32]*fakeMsg, h uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32) abi.Status {
	return withMsg(m, h, func(msg *fakeMsg) abi.Status {
		msg.hdr = append(msg.hdr, fakeField{memStr(name, nameLen), memStr(value, valueLen)})
		return abi.OK
	})
}

func (f *fakeHost) reqHeaderNamesGet(h uint32, buf unsafe.Pointer, bufLen uint32, cursor uint32, end, nw unsafe.Pointer) abi.Status {
	return headerNames(f.reqs, h, buf, bufLen, cursor, end, nw)
}

func (f *fakeHost) reqHeaderValuesGet(h uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen uint32, cursor uint32, end, nw unsafe.Pointer) abi.Status {
	return headerValues(f.reqs, h, name, nameLen, buf, bufLen, cursor, end, nw)
}

func (f *fakeHost) reqHeaderAppend(h uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32) abi.Status {
	return headerAppend(f.reqs, h, name, nameLen, value, valueLen)
}

// send consumes req and body and asks the origin.
func (f *fakeHost) send(req, body uint32, backend string) fakeResult {
	m, b := f.reqs[req], f.body(body)
	if m == nil || b == nil {
		return fakeResult{status: abi.Badf}
	}
	delete(f.reqs, req)
	delete(f.bodies, body)
	if f.backends[backend] == nil {
		return fakeResult{status: abi.Inval}
	}
	data := append([]byte(nil), b.data[b.off:]...)
	f.sent = append(f.sent, fakeSent{backend: backend, req: m, body: data})
	if f.origin == nil {
		return fakeResult{status: abi.Error, detail: abi.SendErrConnectionRefused}
	}
	return f.origin(backend, m, data)
}

func (f *fakeHost) deliver(r fakeResult, detail, respOut, bodyOut unsafe.Pointer) abi.Status {
	if detail != nil {
		d := mem(detail, abi.SendErrDetailSize)
		clear(d)
		tag := abi.SendErrOK
		if r.status != abi.OK {
			tag = r.detail
		}
		putU32(unsafe.Pointer(&d[abi.SendErrDetailTag]), tag)
	}
	if r.status != abi.OK {
		return r.status
	}
	rh, bh := f.handle(), f.handle()
	f.resps[rh] = r.resp
	f.bodies[bh] = &fakeBody{data: r.body}
	putU32(respOut, rh)
	putU32(bodyOut, bh)
	return abi.OK
}

func (f *fakeHost) reqSendV2(req, body uint32, backend unsafe.Pointer, backendLen uint32, detail, respOut, bodyOut unsafe.Pointer) abi.Status {
	return f.deliver(f.send(req, body, memStr(backend, backendLen)), detail, respOut, bodyOut)
}

func (f *fakeHost) reqSendAsync(req, body uint32, backend unsafe.Pointer, backendLen uint32, pendingOut unsafe.Pointer) abi.Status {
	name := memStr(backend, backendLen)
	if f.backends[name] == nil {
		return abi.Inval
	}
	r := f.send(req, body, name)
	h := f.handle()
	f.pending[h] = r
	putU32(pendingOut, h)
	return abi.OK
}

func (f *fakeHost) reqPendingReqWaitV2(p uint32, detail, respOut, bodyOut unsafe.Pointer) abi.Status {
	r, ok := f.pending[p]
	if !ok {
		return abi.Badf
	}
	delete(f.pending, p)
	return f.deliver(r, detail, respOut, bodyOut)
}

func (f *fakeHost) reqRegisterDynamicBackend(name unsafe.Pointer, nameLen uint32, target unsafe.Pointer, targetLen uint32, mask uint32, config unsafe.Pointer) abi.Status {
	n, t := memStr(name, nameLen), memStr(target, targetLen)
	if mask&abi.BackendReserved != 0 || mask&^abi.BackendKnownBits != 0 || t == "" {
		return abi.Inval
	}
	if f.backends[n] != nil {
		return abi.Error
	}
	raw := append([]byte(nil), mem(config, abi.CfgSize)...)
	be := &fakeBackend{dynamic: true, target: t, mask: mask, raw: raw, strs: map[int]string{}}
	for _, off := range []int{abi.CfgHostOverride, abi.CfgCertHostname, abi.CfgCACert, abi.CfgCiphers, abi.CfgSNIHostname} {
		ptr, l := le32(raw, off), le32(raw, off+4)
		if ptr == 0 {
			continue
		}
		p, ok := f.pins[ptr]
		if !ok {
			return abi.Inval
		}
		be.strs[off] = memStr(p, l)
	}
	be.host, be.port = t, 80
	if i := strings.LastIndexByte(t, ':'); i >= 0 {
		be.host = t[:i]
		be.port = 0
		for _, c := range t[i+1:] {
			be.port = be.port*10 + uint32(c-'0')
		}
	}
	be.overrideHost = be.strs[abi.CfgHostOverride]
	f.backends[n] = be
	return abi.OK
}

func (f *fakeHost) respNew(out unsafe.Pointer) abi.Status {
	h := f.handle()
	f.resps[h] = &fakeMsg{status: 200}
	putU32(out, h)
	return abi.OK
}

func (f *fakeHost) respClose(h uint32) abi.Status {
	if f.resps[h] == nil {
		return abi.Badf
	}
	delete(f.resps, h)
	return abi.OK
}

func (f *fakeHost) respStatusGet(h uint32, out unsafe.Pointer) abi.Status {
	return withMsg(f.resps, h, func(m *fakeMsg) abi.Status { putU16(out, uint16(m.status)); return abi.OK })
}

func (f *fakeHost) respStatusSet(h uint32, status uint32) abi.Status {
	return withMsg(f.resps, h, func(m *fakeMsg) abi.Status {
		if status < 100 || status > 999 {
			return abi.HTTPInvalidStatus
		}
		m.status = status
		return abi.OK
	})
}

func (f *fakeHost) respHeaderNamesGet(h uint32, buf unsafe.Pointer, bufLen uint32, cursor uint32, end, nw unsafe.Pointer) abi.Status {
	return headerNames(f.resps, h, buf, bufLen, cursor, end, nw)
}

func (f *fakeHost) respHeaderValuesGet(h uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen uint32, cursor uint32, end, nw unsafe.Pointer) abi.Status {
	return headerValues(f.resps, h, name, nameLen, buf, bufLen, cursor, end, nw)
}

func (f *fakeHost) respHeaderAppend(h uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32) abi.Status {
	return headerAppend(f.resps, h, name, nameLen, value, valueLen)
}

func (f *fakeHost) respSendDownstream(resp, body uint32, streaming uint32) abi.Status {
	m := f.resps[resp]
	if m == nil || f.body(body) == nil {
		return abi.Badf
	}
	if f.down != nil {
		return abi.Error
	}
	delete(f.resps, resp)
	f.down = &fakeDownstream{resp: m, body: body, streaming: streaming}
	return abi.OK
}

func storeOpen(names map[uint32]string, data map[string]map[string]string, f *fakeHost, name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) abi.Status {
	n := memStr(name, nameLen)
	if data[n] == nil {
		return abi.Badf
	}
	h := f.handle()
	names[h] = n
	putU32(out, h)
	return abi.OK
}

func storeLookup(names map[uint32]string, data map[string]map[string]string, h uint32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	n, ok := names[h]
	if !ok {
		return abi.Badf
	}
	v, ok := data[n][memStr(key, keyLen)]
	if !ok {
		return abi.None
	}
	return writeOut(v, buf, bufLen, nw)
}

func (f *fakeHost) dictionaryOpen(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) abi.Status {
	return storeOpen(f.dictH, f.dicts, f, name, nameLen, out)
}

func (f *fakeHost) dictionaryGet(h uint32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	return storeLookup(f.dictH, f.dicts, h, key, keyLen, buf, bufLen, nw)
}

func (f *fakeHost) configStoreOpen(name unsafe.Pointer, nameLen uint32, out unsafe.Pointer) abi.Status {
	return storeOpen(f.storeH, f.stores, f, name, nameLen, out)
}

func (f *fakeHost) configStoreGet(h uint32, key unsafe.Pointer, keyLen uint32, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	return storeLookup(f.storeH, f.stores, h, key, keyLen, buf, bufLen, nw)
}

// backendGet answers a fastly_backend getter from fn.
func (f *fakeHost) backendGet(op string, name unsafe.Pointer, nameLen uint32, fn func(b *fakeBackend) (uint32, abi.Status), out unsafe.Pointer) abi.Status {
	{
		b := f.backends[memStr(name, nameLen)]
		if b == nil {
			if op == "exists" {
				putU32(out, 0)
				return abi.OK
			}
			return abi.Inval
		}
		v, st := fn(b)
		if st == abi.OK {
			putU32(out, v)
		}
		return st
	}
}

// cfg returns the config field at off when bit is in the mask and the
// field is not 0, else def: the effective value, as a host reports it.
func (b *fakeBackend) cfg(bit uint32, off int, def uint32) uint32 {
	if b.mask&bit != 0 && b.raw != nil {
		if v := le32(b.raw, off); v != 0 {
			return v
		}
	}
	return def
}

func (f *fakeHost) backendExists(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("exists", name, n, func(*fakeBackend) (uint32, abi.Status) { return 1, abi.OK }, out)
}

func (f *fakeHost) backendIsHealthy(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("is_healthy", name, n, func(*fakeBackend) (uint32, abi.Status) { return abi.HealthUnknown, abi.OK }, out)
}

func (f *fakeHost) backendIsDynamic(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("is_dynamic", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		if b.dynamic {
			return 1, abi.OK
		}
		return 0, abi.OK
	}, out)
}

func (f *fakeHost) backendIsSSL(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("is_ssl", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		if b.mask&abi.BackendUseSSL != 0 {
			return 1, abi.OK
		}
		return 0, abi.OK
	}, out)
}

func (f *fakeHost) backendString(name unsafe.Pointer, n uint32, get func(b *fakeBackend) string, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	{
		b := f.backends[memStr(name, n)]
		if b == nil {
			return abi.Inval
		}
		v := get(b)
		if v == "" {
			return abi.None
		}
		return writeOut(v, buf, bufLen, nw)
	}
}

func (f *fakeHost) backendGetHost(name unsafe.Pointer, n uint32, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	return f.backendString(name, n, func(b *fakeBackend) string { return b.host }, buf, bufLen, nw)
}

func (f *fakeHost) backendGetOverrideHost(name unsafe.Pointer, n uint32, buf unsafe.Pointer, bufLen uint32, nw unsafe.Pointer) abi.Status {
	return f.backendString(name, n, func(b *fakeBackend) string { return b.overrideHost }, buf, bufLen, nw)
}

func (f *fakeHost) backendGetPort(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	b := f.backends[memStr(name, n)]
	if b == nil {
		return abi.Inval
	}
	putU16(out, uint16(b.port)) // a u16, as in the ABI
	return abi.OK
}

func (f *fakeHost) backendGetConnectTimeoutMs(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_connect_timeout_ms", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		return b.cfg(abi.BackendConnectTimeout, abi.CfgConnectTimeoutMs, 1000), abi.OK
	}, out)
}

func (f *fakeHost) backendGetFirstByteTimeoutMs(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_first_byte_timeout_ms", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		return b.cfg(abi.BackendFirstByteTimeout, abi.CfgFirstByteTimeoutMs, 15000), abi.OK
	}, out)
}

func (f *fakeHost) backendGetBetweenBytesTimeoutMs(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_between_bytes_timeout_ms", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		return b.cfg(abi.BackendBetweenBytesTimeout, abi.CfgBetweenBytesTimeoutMs, 10000), abi.OK
	}, out)
}

func sslVersion(b *fakeBackend, bit uint32, off int) (uint32, abi.Status) {
	if b.mask&bit == 0 {
		return 0, abi.None
	}
	return le32(b.raw, off), abi.OK
}

func (f *fakeHost) backendGetSSLMinVersion(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_ssl_min_version", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		return sslVersion(b, abi.BackendSSLMinVersion, abi.CfgSSLMinVersion)
	}, out)
}

func (f *fakeHost) backendGetSSLMaxVersion(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_ssl_max_version", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		return sslVersion(b, abi.BackendSSLMaxVersion, abi.CfgSSLMaxVersion)
	}, out)
}

func (f *fakeHost) backendGetHTTPKeepaliveTime(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_http_keepalive_time", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		return b.cfg(abi.BackendKeepalive, abi.CfgHTTPKeepaliveTimeMs, 60000), abi.OK
	}, out)
}

func (f *fakeHost) backendGetTCPKeepaliveEnable(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_tcp_keepalive_enable", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		if b.mask&abi.BackendKeepalive != 0 {
			return le32(b.raw, abi.CfgTCPKeepaliveEnable), abi.OK
		}
		return 1, abi.OK
	}, out)
}

func (f *fakeHost) backendGetTCPKeepaliveInterval(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_tcp_keepalive_interval", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		return b.cfg(abi.BackendKeepalive, abi.CfgTCPKeepaliveInterval, 15), abi.OK
	}, out)
}

func (f *fakeHost) backendGetTCPKeepaliveProbes(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_tcp_keepalive_probes", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		return b.cfg(abi.BackendKeepalive, abi.CfgTCPKeepaliveProbes, 9), abi.OK
	}, out)
}

func (f *fakeHost) backendGetTCPKeepaliveTime(name unsafe.Pointer, n uint32, out unsafe.Pointer) abi.Status {
	return f.backendGet("get_tcp_keepalive_time", name, n, func(b *fakeBackend) (uint32, abi.Status) {
		return b.cfg(abi.BackendKeepalive, abi.CfgTCPKeepaliveTime, 15), abi.OK
	}, out)
}
