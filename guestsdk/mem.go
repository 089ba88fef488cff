package guestsdk

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

const (
	// initialBufSize is the first buffer offered to a getter; a getter
	// that answers buflen is retried with the size the host asked for.
	initialBufSize = 1024
	// maxBufSize bounds a buflen retry, so a confused host cannot make
	// the guest allocate without limit.
	maxBufSize = 64 << 20
	// chunkSize is the buffer size for copying bodies through the guest.
	chunkSize = 32 << 10
)

// bytesPtr and strPtr return the address of the first byte (nil when
// empty); the length travels separately.
func bytesPtr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }
func strPtr(s string) unsafe.Pointer   { return unsafe.Pointer(unsafe.StringData(s)) }

// growSize returns the next buffer size after a buflen answer that asked
// for need bytes while cur were offered.
func growSize(op string, cur int, need uint32) (int, error) {
	if uint64(need) > maxBufSize || cur*2 > maxBufSize && uint64(need) <= uint64(cur) {
		return 0, errors.New("guestsdk: " + op + ": host asked for a " + strconv.FormatUint(uint64(need), 10) + "-byte buffer")
	}
	if uint64(need) <= uint64(cur) {
		return cur * 2, nil // a confused answer: grow anyway, bounded above
	}
	return int(need), nil
}

// getterBuf is what a getter is offered: an initialBufSize buffer and the
// out-parameters the host writes through pointers (nwritten, the ending
// cursor). The getters are called as function values, so out-parameters
// declared as locals would be moved to the heap on every call; pooled
// beside the buffer they are not. The values are copied out into strings
// before a getterBuf goes back to bufPool.
type getterBuf struct {
	buf []byte
	nw  uint32
	end int64
	// ends is where each name's values end in buf (scanHeaders).
	ends [maxFastNames]int
}

// bufPool holds getterBufs, so that the getters of every request (method,
// URI, header names and values) reuse a few buffers instead of allocating
// one each.
var bufPool = sync.Pool{New: func() any { return newGetterBuf() }}

// newGetterBuf returns a getterBuf with an initialBufSize buffer.
func newGetterBuf() *getterBuf { return &getterBuf{buf: make([]byte, initialBufSize)} }

// getBytesFunc is a getter of the shape (buf, buf_len, nwritten_out).
type getBytesFunc func(buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

// getString calls f with a buffer, growing it while f answers buflen (the
// host writes the size it needs to nwritten), and returns the bytes
// written. Any other status than ok is a *StatusError.
func getString(op string, f getBytesFunc) (string, error) {
	g := bufPool.Get().(*getterBuf)
	defer bufPool.Put(g)
	return getStringAs(g, op, f, bytesString)
}

// bytesString is string(b).
func bytesString(b []byte) string { return string(b) }

// getStringAs is getString offering g (taken from bufPool by the caller,
// so that the getters of one request share one), with the bytes turned
// into a string by conv (which must copy them: the buffer is reused).
func getStringAs(g *getterBuf, op string, f getBytesFunc, conv func([]byte) string) (string, error) {
	size := initialBufSize
	for {
		buf := g.buf
		if size != initialBufSize {
			buf = make([]byte, size)
		}
		g.nw = 0
		st := f(bytesPtr(buf), uint32(len(buf)), unsafe.Pointer(&g.nw))
		nw := g.nw
		switch abi.Status(st) {
		case abi.OK:
			if uint64(nw) > uint64(len(buf)) {
				return "", errors.New("guestsdk: " + op + ": host wrote past the buffer")
			}
			return conv(buf[:nw]), nil
		case abi.Buflen:
			next, err := growSize(op, size, nw)
			if err != nil {
				return "", err
			}
			size = next
		default:
			return "", statusErr(op, st)
		}
	}
}

// getMultiFunc is a multi-value getter of the shape (buf, buf_len, cursor,
// ending_cursor_out, nwritten_out).
type getMultiFunc func(buf unsafe.Pointer, bufLen uint32, cursor uint32, endingCursorOut, nwrittenOut unsafe.Pointer) uint32

// getMulti pages through a multi-value getter: each call writes whole
// NUL-terminated values from cursor on and the cursor to continue from
// (abi.CursorDone when finished). A buflen answer (not even one value
// fits) is retried at the same cursor with the size the host asked for.
// Status none means no values. g is the getterBuf offered (see
// getStringAs). With canon, each value is a header name and is returned
// in its canonical form (canonicalKey), made in the buffer, before the
// values are copied out.
func getMulti(g *getterBuf, op string, f getMultiFunc, canon bool) ([]string, error) {
	var out []string
	buf := g.buf
	cursor := uint32(0)
	for {
		g.end, g.nw = 0, 0
		st := f(bytesPtr(buf), uint32(len(buf)), cursor, unsafe.Pointer(&g.end), unsafe.Pointer(&g.nw))
		end, nw := g.end, g.nw
		switch abi.Status(st) {
		case abi.OK:
		case abi.None:
			return out, nil
		case abi.Buflen:
			next, err := growSize(op, len(buf), nw)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, next)
			continue
		default:
			return nil, statusErr(op, st)
		}
		if uint64(nw) > uint64(len(buf)) {
			return nil, errors.New("guestsdk: " + op + ": host wrote past the buffer")
		}
		if canon {
			canonicalizeNames(buf[:nw])
		}
		data := string(buf[:nw])
		out = slices.Grow(out, strings.Count(data, "\x00"))
		for data != "" {
			i := strings.IndexByte(data, 0)
			if i < 0 {
				return nil, errors.New("guestsdk: " + op + ": value not NUL-terminated")
			}
			out = append(out, data[:i])
			data = data[i+1:]
		}
		if end == abi.CursorDone {
			return out, nil
		}
		if end < 0 || uint64(end) <= uint64(cursor) || end > 0xFFFFFFFF {
			return nil, errors.New("guestsdk: " + op + ": host returned cursor " + strconv.FormatInt(end, 10) + " after " + strconv.FormatUint(uint64(cursor), 10))
		}
		cursor = uint32(end)
	}
}

// msgKind says which hostcall module a request or response handle
// belongs to, so that the header helpers below call its bindings directly
// (TinyGo refuses a //go:wasmimport function used as a value).
type msgKind uint8

const (
	reqKind  msgKind = iota // fastly_http_req
	respKind                // fastly_http_resp
)

func (k msgKind) String() string {
	if k == reqKind {
		return "fastly_http_req"
	}
	return "fastly_http_resp"
}

// Operation names for errors, constant so that no call builds one.
func (k msgKind) namesOp() string {
	if k == reqKind {
		return "fastly_http_req.header_names_get"
	}
	return "fastly_http_resp.header_names_get"
}

func (k msgKind) valuesOp() string {
	if k == reqKind {
		return "fastly_http_req.header_values_get"
	}
	return "fastly_http_resp.header_values_get"
}

func (k msgKind) appendOp() string {
	if k == reqKind {
		return "fastly_http_req.header_append"
	}
	return "fastly_http_resp.header_append"
}

func (k msgKind) headerNamesGet(h uint32, buf unsafe.Pointer, bufLen, cursor uint32, endOut, nwOut unsafe.Pointer) uint32 {
	if k == reqKind {
		return reqHeaderNamesGet(h, buf, bufLen, cursor, endOut, nwOut)
	}
	return respHeaderNamesGet(h, buf, bufLen, cursor, endOut, nwOut)
}

func (k msgKind) headerValuesGet(h uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen, cursor uint32, endOut, nwOut unsafe.Pointer) uint32 {
	if k == reqKind {
		return reqHeaderValuesGet(h, name, nameLen, buf, bufLen, cursor, endOut, nwOut)
	}
	return respHeaderValuesGet(h, name, nameLen, buf, bufLen, cursor, endOut, nwOut)
}

func (k msgKind) headerAppend(h uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32) uint32 {
	if k == reqKind {
		return reqHeaderAppend(h, name, nameLen, value, valueLen)
	}
	return respHeaderAppend(h, name, nameLen, value, valueLen)
}

// readHeaderBlockSlow reads every header of a request or response handle
// (any block, where scanHeaders takes only one that fits g.buf): the
// names, page by page, then the values of each name (asked for by its
// canonical name: the host treats names case-insensitively), each page
// copied out on its own, offering g (see getStringAs). With withFields it
// also returns a name and a value for each value read, in the order read
// (origRequest.fields); nil when the host gave a name twice.
func readHeaderBlockSlow(g *getterBuf, k msgKind, h uint32, withFields bool) (Header, []string, error) {
	ns, err := getMulti(g, k.namesOp(), func(buf unsafe.Pointer, n, c uint32, e, w unsafe.Pointer) uint32 {
		return k.headerNamesGet(h, buf, n, c, e, w)
	}, true)
	if err != nil {
		return nil, nil, err
	}
	hdr := make(Header, len(ns))
	nv := 0
	for _, name := range ns {
		vs, err := getMulti(g, k.valuesOp(), func(buf unsafe.Pointer, n, c uint32, e, w unsafe.Pointer) uint32 {
			return k.headerValuesGet(h, strPtr(name), uint32(len(name)), buf, n, c, e, w)
		}, false)
		if err != nil {
			return nil, nil, err
		}
		nv += len(vs)
		if prev := hdr[name]; prev != nil {
			vs = append(prev, vs...) // two names differing in case only
		}
		hdr[name] = vs
	}
	var fields []string
	if withFields && len(hdr) == len(ns) { // each name once, as edgehost gives them
		fields = make([]string, 0, 2*nv)
		for _, name := range ns {
			for _, v := range hdr[name] {
				fields = append(fields, name, v)
			}
		}
	}
	return hdr, fields, nil
}

// writeHeaders appends every value of hdr to a request or response
// handle, names in order (one name needs no sorting).
func writeHeaders(k msgKind, h uint32, hdr Header) error {
	switch len(hdr) {
	case 0:
		return nil
	case 1:
		for key, vs := range hdr {
			return appendValues(k, h, key, vs)
		}
	}
	return writeSortedHeaders(k, h, hdr)
}

// writeSortedHeaders is writeHeaders for two names or more, kept apart so
// that the frame of the usual call (no header) has no room for keys.
func writeSortedHeaders(k msgKind, h uint32, hdr Header) error {
	var small [16]string // the keys of a usual header, without an allocation
	keys := small[:0]
	if len(hdr) > len(small) {
		keys = make([]string, 0, len(hdr))
	}
	for key := range hdr {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		if err := appendValues(k, h, key, hdr[key]); err != nil {
			return err
		}
	}
	return nil
}

func appendValues(k msgKind, h uint32, key string, vs []string) error {
	for _, v := range vs {
		if err := statusErr(k.appendOp(), k.headerAppend(h, strPtr(key), uint32(len(key)), strPtr(v), uint32(len(v)))); err != nil {
			return err
		}
	}
	return nil
}

// maxFastNames bounds the names readHeadersFast handles (it keeps each
// name's end in the getterBuf); a block with more is read the general way.
const maxFastNames = 64

// headerScan is what scanHeaders found in a getterBuf: the names at
// buf[pre:pre+nw], name i's values ending at ends[i] (starting where name
// i-1's end, name 0's at pre+nw), end bytes of the buffer used in all; n
// names and nv values.
type headerScan struct {
	pre, nw, end, n, nv int
}

// readHeadersInto reads the header block of a request or response handle
// into the Header of a new T that shares one allocation with the block's
// bytes and strings when they fit (newBlock; the usual block): scanHeaders
// into g.buf after its first pre bytes (which the caller filled, e.g. with
// the request URI), then buildHeaders. rb.s holds g.buf[:pre] and the
// block, the names and values being slices of it (readBlock). ok is false
// when the block must be read the general way (scanHeaders,
// buildHeaders); v is then nil.
func readHeadersInto[T any](g *getterBuf, k msgKind, h uint32, pre int) (v *T, rb readBlock, hdr Header, ok bool, err error) {
	sc, ok, err := scanHeaders(g, k, h, pre)
	if !ok || err != nil {
		return nil, rb, nil, false, err
	}
	v, strs, b := newBlock[T](sc.nv, sc.end)
	var s string
	if b != nil {
		s = unsafe.String(unsafe.SliceData(b), copy(b, g.buf[:sc.end]))
	} else {
		s = string(g.buf[:sc.end])
		strs = make([]string, sc.nv)
	}
	if hdr, ok = buildHeaders(g, sc, s, strs); !ok {
		return nil, rb, nil, false, nil
	}
	rb = readBlock{s: s, names: s[sc.pre : sc.pre+sc.nw], vstart: sc.pre + sc.nw, vals: strs}
	return v, rb, hdr, true, nil
}

// readBlock is a header block as readHeadersInto read it: s the bytes
// (after a prefix), names its NUL-terminated names, the values' bytes
// from vstart to the end of s, and vals the values of all names in order,
// the backing array of every value slice of the Header made of it.
type readBlock struct {
	s, names string
	vstart   int
	vals     []string
}

// same reports whether h still holds exactly the fields buildHeaders made
// of b: every name of b, and no other, each with the very slice of b.vals
// it was given (same start, length and capacity: a slice replaced,
// shortened or appended to is not) holding the values read, in order.
// The zero readBlock matches no Header.
func (b *readBlock) same(h Header) bool {
	if b.s == "" && b.vals == nil {
		return false
	}
	n, i, p := 0, 0, b.vstart
	for ns := b.names; ns != ""; n++ {
		j := strings.IndexByte(ns, 0)
		if j < 0 {
			return false
		}
		vs, ok := h[ns[:j]]
		ns = ns[j+1:]
		if !ok || len(vs) != cap(vs) || len(vs) > len(b.vals)-i || len(vs) > 0 && &vs[0] != &b.vals[i] {
			return false
		}
		for _, v := range vs {
			e := p + len(v)
			if e >= len(b.s) || b.s[e] != 0 || unsafe.StringData(v) != unsafe.StringData(b.s[p:e]) && v != b.s[p:e] {
				return false
			}
			p = e + 1
		}
		i += len(vs)
	}
	return n == len(h) && i == len(b.vals) && p == len(b.s)
}

// block is a T with room for the strings and bytes of a header block
// after it, in one allocation (newBlock).
type block[T, S, B any] struct {
	v     T
	strs  S
	bytes B
}

// newBlock returns a new T and, in the same allocation, room for nstr
// strings and nbyte bytes (slices of exactly those lengths), in one of
// four sizes, or nil slices when none holds them. The second size (8
// strings, 256 bytes) holds a usual origin response's block (Date,
// Content-Type, Content-Length, Cache-Control and the cache's Age,
// X-Cache, X-Cache-Hits) in a 512-byte hostResponse block, half the
// next size's. In Wasm each allocation
// is a large part of a request's guest time (host/bench/README.md).
// Strings made of the bytes keep the whole block alive, which Go's
// collector and TinyGo's allow; the bytes are never written again once
// copied in.
func newBlock[T any](nstr, nbyte int) (*T, []string, []byte) {
	switch {
	case nstr <= 4 && nbyte <= 160:
		b := new(block[T, [4]string, [160]byte])
		return &b.v, b.strs[:nstr], b.bytes[:nbyte]
	case nstr <= 8 && nbyte <= 256:
		b := new(block[T, [8]string, [256]byte])
		return &b.v, b.strs[:nstr], b.bytes[:nbyte]
	case nstr <= 16 && nbyte <= 544:
		b := new(block[T, [16]string, [544]byte])
		return &b.v, b.strs[:nstr], b.bytes[:nbyte]
	case nstr <= 48 && nbyte <= initialBufSize:
		b := new(block[T, [48]string, [initialBufSize]byte])
		return &b.v, b.strs[:nstr], b.bytes[:nbyte]
	}
	return new(T), nil, nil
}

// scanHeaders reads a whole header block into g.buf after its first pre
// bytes: the names in one call, then each name's values in one call each,
// all into the one buffer (the names put in canonical form in place), and
// records where each name's values end in g.ends. In Wasm each allocation
// and each string conversion is a large part of a request's guest time
// (host/bench/README.md); reading a block this way lets the caller make
// it one string. ok is false when something did not fit in g.buf in one
// call or the block has more than maxFastNames names: the caller then
// reads the block the general way (getters can be asked again).
func scanHeaders(g *getterBuf, k msgKind, h uint32, pre int) (sc headerScan, ok bool, err error) {
	buf := g.buf
	g.end, g.nw = 0, 0
	st := k.headerNamesGet(h, bytesPtr(buf[pre:]), uint32(len(buf)-pre), 0, unsafe.Pointer(&g.end), unsafe.Pointer(&g.nw))
	nw := int(g.nw)
	switch abi.Status(st) {
	case abi.OK:
		if g.end != abi.CursorDone {
			return sc, false, nil
		}
		if nw > len(buf)-pre {
			return sc, false, errors.New("guestsdk: " + k.namesOp() + ": host wrote past the buffer")
		}
		if nw > 0 && buf[pre+nw-1] != 0 {
			return sc, false, errors.New("guestsdk: " + k.namesOp() + ": value not NUL-terminated")
		}
	case abi.None:
		nw = 0
	case abi.Buflen:
		return sc, false, nil
	default:
		return sc, false, statusErr(k.namesOp(), st)
	}
	names := buf[pre : pre+nw]
	canonicalizeNames(names)
	n, nv, off := 0, 0, pre+nw
	for rest := names; len(rest) > 0; n++ {
		i := bytes.IndexByte(rest, 0)
		if n == maxFastNames {
			return sc, false, nil
		}
		g.end, g.nw = 0, 0
		st := k.headerValuesGet(h, bytesPtr(rest), uint32(i), bytesPtr(buf[off:]), uint32(len(buf)-off), 0, unsafe.Pointer(&g.end), unsafe.Pointer(&g.nw))
		switch abi.Status(st) {
		case abi.OK:
			w := int(g.nw)
			if g.end != abi.CursorDone {
				return sc, false, nil
			}
			if w > len(buf)-off {
				return sc, false, errors.New("guestsdk: " + k.valuesOp() + ": host wrote past the buffer")
			}
			if w > 0 && buf[off+w-1] != 0 {
				return sc, false, errors.New("guestsdk: " + k.valuesOp() + ": value not NUL-terminated")
			}
			for v := buf[off : off+w]; len(v) > 0; nv++ {
				v = v[bytes.IndexByte(v, 0)+1:] // the last byte is a NUL
			}
			off += w
		case abi.None:
		case abi.Buflen:
			return sc, false, nil
		default:
			return sc, false, statusErr(k.valuesOp(), st)
		}
		g.ends[n] = off
		rest = rest[i+1:]
	}
	return headerScan{pre: pre, nw: nw, end: off, n: n, nv: nv}, true, nil
}

// buildHeaders makes the Header of a block scanHeaders read: s holds
// g.buf[:sc.end] (a copy: the names and values are slices of it) and all
// has room for sc.nv strings, which the values of all names share, each
// name's slice capped at its own values, so appending to one never writes
// into another. ok is false when the host gave a name twice (two names
// differing in case only): the caller then reads the block the general
// way.
func buildHeaders(g *getterBuf, sc headerScan, s string, all []string) (hdr Header, ok bool) {
	vals := all[:0:sc.nv]
	hdr = make(Header, sc.n)
	ns, start := s[sc.pre:sc.pre+sc.nw], sc.pre+sc.nw
	for i := 0; i < sc.n; i++ {
		j := strings.IndexByte(ns, 0)
		name := ns[:j]
		ns = ns[j+1:]
		first := len(vals)
		for v := s[start:g.ends[i]]; v != ""; {
			j := strings.IndexByte(v, 0)
			vals = append(vals, v[:j])
			v = v[j+1:]
		}
		start = g.ends[i]
		if len(vals) > first {
			hdr[name] = vals[first:len(vals):len(vals)]
		} else {
			hdr[name] = nil
		}
		if len(hdr) != i+1 {
			return nil, false // two names differing in case only
		}
	}
	return hdr, true
}
