//go:build wasip1

// Command kvsecret is the KV and secret store conformance guest. It calls
// fastly_kv_store and fastly_secret_store the way Fastly's Go SDK does
// (direct //go:wasmimport calls; open, then lookup and lookup_wait_v2 with
// a 2000-byte metadata buffer, insert and insert_wait with a
// kv_insert_config, list and list_wait), and builds with TinyGo and Go.
// The request path picks the operation:
//
//	/kv/get?store=S&key=K          the value; X-KV-Error, X-Generation, X-Metadata
//	/kv/put?store=S&key=K&mode=M&meta=X&ttl=N&gen=G&bg=1   body = value; X-KV-Error, X-Generation
//	/kv/delete?store=S&key=K       X-KV-Error
//	/kv/list?store=S&prefix=P&cursor=C&limit=N   the JSON page
//	/kv/select?store=S&key=K       lookup, select on the pending handle, wait
//	/kv/bad                        a report of bad-input statuses
//	/secret?store=S&key=K          the plaintext (tests use fake secrets)
//	/secret/bad                    a report of bad-input statuses
//
// Reports are "check=result" lines, identical on every engine.
package main

import (
	"strconv"
	"strings"
	"unsafe"
)

const noHandle = 0xFFFFFFFE

//go:wasmimport fastly_http_req body_downstream_get
func reqBodyDownstreamGet(req, body uint32) uint32

//go:wasmimport fastly_http_req uri_get
func reqURIGet(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_resp new
func respNew(out uint32) uint32

//go:wasmimport fastly_http_resp status_set
func respStatusSet(h, status uint32) uint32

//go:wasmimport fastly_http_resp header_insert
func respHeaderInsert(h, name, nlen, val, vlen uint32) uint32

//go:wasmimport fastly_http_resp send_downstream
func respSendDownstream(h, body, streaming uint32) uint32

//go:wasmimport fastly_http_body new
func bodyNew(out uint32) uint32

//go:wasmimport fastly_http_body write
func bodyWrite(h, buf, n, end, nw uint32) uint32

//go:wasmimport fastly_http_body read
func bodyRead(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_async_io select
func asyncSelect(hs, n, timeout, ready uint32) uint32

//go:wasmimport fastly_kv_store open
func kvOpen(name, nlen, out uint32) uint32

//go:wasmimport fastly_kv_store lookup
func kvLookup(store, key, klen, mask, cfg, out uint32) uint32

//go:wasmimport fastly_kv_store lookup_wait_v2
func kvLookupWaitV2(h, bodyOut, meta, metaLen, nw, gen, kvErr uint32) uint32

//go:wasmimport fastly_kv_store lookup_wait
func kvLookupWait(h, bodyOut, meta, metaLen, nw, gen, kvErr uint32) uint32

//go:wasmimport fastly_kv_store insert
func kvInsert(store, key, klen, body, mask, cfg, out uint32) uint32

//go:wasmimport fastly_kv_store insert_wait
func kvInsertWait(h, kvErr uint32) uint32

//go:wasmimport fastly_kv_store delete
func kvDelete(store, key, klen, mask, cfg, out uint32) uint32

//go:wasmimport fastly_kv_store delete_wait
func kvDeleteWait(h, kvErr uint32) uint32

//go:wasmimport fastly_kv_store list
func kvList(store, mask, cfg, out uint32) uint32

//go:wasmimport fastly_kv_store list_wait
func kvListWait(h, bodyOut, kvErr uint32) uint32

//go:wasmimport fastly_secret_store open
func secretOpen(name, nlen, out uint32) uint32

//go:wasmimport fastly_secret_store get
func secretGet(store, name, nlen, out uint32) uint32

//go:wasmimport fastly_secret_store plaintext
func secretPlaintext(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_secret_store from_bytes
func secretFromBytes(buf, n, out uint32) uint32

func p[T any](v *T) uint32 { return uint32(uintptr(unsafe.Pointer(v))) }

func sp(s string) (uint32, uint32) {
	if s == "" {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

func bp(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(&b[0]))) }

// insertConfig is the witx kv_insert_config (32 bytes, 8-aligned).
type insertConfig struct {
	mode, unused      uint32
	meta, metaLen     uint32
	ttl, _            uint32
	ifGenerationMatch uint64
}

// listConfig is the witx kv_list_config (24 bytes).
type listConfig struct {
	mode, cursor, cursorLen, limit, prefix, prefixLen uint32
}

var (
	req, reqBody uint32
	report       strings.Builder
)

func line(name string, vals ...uint32) {
	report.WriteString(name)
	report.WriteString("=")
	for i, v := range vals {
		if i > 0 {
			report.WriteString(",")
		}
		report.WriteString(strconv.FormatUint(uint64(v), 10))
	}
	report.WriteString("\n")
}

func main() {
	reqBodyDownstreamGet(p(&req), p(&reqBody))
	buf := make([]byte, 4096)
	var nw uint32
	reqURIGet(req, bp(buf), uint32(len(buf)), p(&nw))
	uri := string(buf[:nw])
	path := uri[strings.Index(uri, "://")+3:]
	path = path[strings.IndexByte(path, '/'):]
	path, query, _ := strings.Cut(path, "?")
	q := parseQuery(query)
	switch path {
	case "/kv/get":
		kvGet(q, false)
	case "/kv/select":
		kvGet(q, true)
	case "/kv/put":
		kvPut(q)
	case "/kv/delete":
		kvDel(q)
	case "/kv/list":
		kvListPage(q)
	case "/kv/bad":
		kvBad()
		respond(200, nil, report.String())
	case "/secret":
		secret(q)
	case "/secret/bad":
		secretBad()
		respond(200, nil, report.String())
	default:
		respond(404, nil, "unknown path "+path+"\n")
	}
}

func parseQuery(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(s, "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k != "" {
			m[k] = unescape(v)
		}
	}
	return m
}

// unescape undoes %XX escapes (tests send plain keys otherwise).
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func openStore(name string) (uint32, uint32) {
	h := uint32(noHandle)
	np, nl := sp(name)
	st := kvOpen(np, nl, p(&h))
	return h, st
}

type header struct{ name, value string }

func kvGet(q map[string]string, useSelect bool) {
	store, st := openStore(q["store"])
	if st != 0 {
		respond(500, nil, "open="+strconv.Itoa(int(st))+"\n")
		return
	}
	kp, kl := sp(q["key"])
	var cfg uint32 // kv_lookup_config: one reserved u32
	l := uint32(noHandle)
	if st := kvLookup(store, kp, kl, 0, p(&cfg), p(&l)); st != 0 {
		respond(500, nil, "lookup="+strconv.Itoa(int(st))+"\n")
		return
	}
	if useSelect {
		hs := [1]uint32{l}
		var ready uint32 = 99
		if st := asyncSelect(p(&hs[0]), 1, 0, p(&ready)); st != 0 || ready != 0 {
			respond(500, nil, "select="+strconv.Itoa(int(st))+","+strconv.Itoa(int(ready))+"\n")
			return
		}
	}
	body := uint32(noHandle)
	meta := make([]byte, 2000) // as Fastly's Go SDK
	var nw uint32
	var gen uint64
	kvErr := uint32(0)
	if st := kvLookupWaitV2(l, p(&body), bp(meta), uint32(len(meta)), p(&nw), p(&gen), p(&kvErr)); st != 0 {
		respond(500, nil, "lookup_wait_v2="+strconv.Itoa(int(st))+"\n")
		return
	}
	hdrs := []header{{"x-kv-error", strconv.Itoa(int(kvErr))}}
	if kvErr != 1 {
		respond(404, hdrs, "")
		return
	}
	hdrs = append(hdrs, header{"x-generation", strconv.FormatUint(gen, 10)}, header{"x-metadata", string(meta[:nw])})
	respondBody(200, hdrs, body)
}

func kvPut(q map[string]string) {
	store, st := openStore(q["store"])
	if st != 0 {
		respond(500, nil, "open="+strconv.Itoa(int(st))+"\n")
		return
	}
	var cfg insertConfig
	var mask uint32
	switch q["mode"] {
	case "add":
		cfg.mode = 1
	case "append":
		cfg.mode = 2
	case "prepend":
		cfg.mode = 3
	}
	if m := q["meta"]; m != "" {
		mask |= 1 << 3
		cfg.meta, cfg.metaLen = sp(m)
	}
	if t := q["ttl"]; t != "" {
		n, _ := strconv.Atoi(t)
		mask |= 1 << 4
		cfg.ttl = uint32(n)
	}
	if g := q["gen"]; g != "" {
		n, _ := strconv.ParseUint(g, 10, 64)
		mask |= 1 << 5
		cfg.ifGenerationMatch = n
	}
	if q["bg"] == "1" {
		mask |= 1 << 1
	}
	kp, kl := sp(q["key"])
	h := uint32(noHandle)
	if st := kvInsert(store, kp, kl, reqBody, mask, p(&cfg), p(&h)); st != 0 {
		respond(500, nil, "insert="+strconv.Itoa(int(st))+"\n")
		return
	}
	kvErr := uint32(0)
	if st := kvInsertWait(h, p(&kvErr)); st != 0 {
		respond(500, nil, "insert_wait="+strconv.Itoa(int(st))+"\n")
		return
	}
	respond(200, []header{{"x-kv-error", strconv.Itoa(int(kvErr))}}, "")
}

func kvDel(q map[string]string) {
	store, _ := openStore(q["store"])
	kp, kl := sp(q["key"])
	var cfg uint32
	h := uint32(noHandle)
	if st := kvDelete(store, kp, kl, 0, p(&cfg), p(&h)); st != 0 {
		respond(500, nil, "delete="+strconv.Itoa(int(st))+"\n")
		return
	}
	kvErr := uint32(0)
	kvDeleteWait(h, p(&kvErr))
	respond(200, []header{{"x-kv-error", strconv.Itoa(int(kvErr))}}, "")
}

func kvListPage(q map[string]string) {
	store, _ := openStore(q["store"])
	var cfg listConfig
	var mask uint32
	if c := q["cursor"]; c != "" {
		mask |= 1 << 1
		cfg.cursor, cfg.cursorLen = sp(c)
	}
	if l := q["limit"]; l != "" {
		n, _ := strconv.Atoi(l)
		mask |= 1 << 2
		cfg.limit = uint32(n)
	}
	if pr := q["prefix"]; pr != "" {
		mask |= 1 << 3
		cfg.prefix, cfg.prefixLen = sp(pr)
	}
	h := uint32(noHandle)
	if st := kvList(store, mask, p(&cfg), p(&h)); st != 0 {
		respond(500, nil, "list="+strconv.Itoa(int(st))+"\n")
		return
	}
	body := uint32(noHandle)
	kvErr := uint32(0)
	if st := kvListWait(h, p(&body), p(&kvErr)); st != 0 || kvErr != 1 {
		respond(500, nil, "list_wait="+strconv.Itoa(int(st))+","+strconv.Itoa(int(kvErr))+"\n")
		return
	}
	respondBody(200, []header{{"content-type", "application/json"}}, body)
}

// kvBad reports the statuses of bad input; the store "kvs" must exist.
func kvBad() {
	store, st := openStore("kvs")
	line("open", st)
	_, st = openStore("no-such-store")
	line("open unknown", st)
	var cfg uint32
	h := uint32(noHandle)
	lookup := func(s uint32, key string) uint32 {
		kp, kl := sp(key)
		return kvLookup(s, kp, kl, 0, p(&cfg), p(&h))
	}
	line("lookup bad handle", lookup(12345, "k"))
	line("lookup no handle", lookup(noHandle, "k"))
	line("lookup key 1025 bytes", lookup(store, strings.Repeat("k", 1025)))
	line("lookup key 1024 bytes", lookup(store, strings.Repeat("k", 1024)))
	line("lookup bad utf-8", lookup(store, "a\xff\xfe"))
	line("lookup empty key", lookup(store, ""))
	line("lookup key with newline", lookup(store, "a\nb"))
	kp, kl := sp("k")
	line("lookup out of bounds", kvLookup(store, 0xFFFFFF00, 200, 0, p(&cfg), p(&h)))
	line("lookup misaligned out", kvLookup(store, kp, kl, 0, p(&cfg), p(&h)+1))
	line("lookup mask bit", kvLookup(store, kp, kl, 1, p(&cfg), p(&h)))

	// A pending lookup: the deprecated lookup_wait reports generation 0.
	var body, nw, gen32, kvErr uint32
	kvLookup(store, kp, kl, 0, p(&cfg), p(&h))
	meta := make([]byte, 64)
	line("lookup_wait v1", kvLookupWait(h, p(&body), bp(meta), 64, p(&nw), p(&gen32), p(&kvErr)), kvErr, gen32)
	line("lookup_wait consumed", kvLookupWait(h, p(&body), bp(meta), 64, p(&nw), p(&gen32), p(&kvErr)))
	line("insert_wait on a lookup handle", func() uint32 {
		kvLookup(store, kp, kl, 0, p(&cfg), p(&h))
		return kvInsertWait(h, p(&kvErr))
	}())

	var ic insertConfig
	var b uint32
	insert := func(mask uint32) uint32 {
		bodyNew(p(&b))
		return kvInsert(store, kp, kl, b, mask, p(&ic), p(&h))
	}
	line("insert reserved bit", insert(1))
	line("insert reserved_2 bit", insert(1<<2))
	line("insert unknown bit", insert(1<<8))
	ic.mode = 9
	line("insert bad mode", insert(0))
	ic.mode = 0
	line("insert empty metadata", insert(1<<3))
	line("insert bad body", kvInsert(store, kp, kl, 4242, 0, p(&ic), p(&h)))
	line("insert big key", func() uint32 {
		bodyNew(p(&b))
		bk, bl := sp(strings.Repeat("x", 1025))
		return kvInsert(store, bk, bl, b, 0, p(&ic), p(&h))
	}())
	big := make([]byte, 2001)
	ic.meta, ic.metaLen = bp(big), uint32(len(big))
	if st := insert(1 << 3); st == 0 {
		kvInsertWait(h, p(&kvErr))
		line("insert metadata 2001 bytes", st, kvErr)
	} else {
		line("insert metadata 2001 bytes", st)
	}

	var lc listConfig
	line("list reserved bit", kvList(store, 1, p(&lc), p(&h)))
	lc.mode = 5
	line("list bad mode", kvList(store, 0, p(&lc), p(&h)))
	lc.mode, lc.limit = 0, 1001
	line("list limit 1001", kvList(store, 1<<2, p(&lc), p(&h)))
	lc.limit = 0
	c, cl := sp("%%%not-base64")
	lc.cursor, lc.cursorLen = c, cl
	if st := kvList(store, 1<<1, p(&lc), p(&h)); st == 0 {
		line("list bad cursor", st, func() uint32 { kvListWait(h, p(&body), p(&kvErr)); return kvErr }())
	} else {
		line("list bad cursor", st)
	}
	line("delete bad handle", kvDelete(777, kp, kl, 0, p(&cfg), p(&h)))
}

func secret(q map[string]string) {
	sn, sl := sp(q["store"])
	st := uint32(noHandle)
	if s := secretOpen(sn, sl, p(&st)); s != 0 {
		respond(404, []header{{"x-status", strconv.Itoa(int(s))}}, "")
		return
	}
	kn, kl := sp(q["key"])
	sec := uint32(noHandle)
	if s := secretGet(st, kn, kl, p(&sec)); s != 0 {
		respond(404, []header{{"x-status", strconv.Itoa(int(s))}}, "")
		return
	}
	// Fastly's SDKs start small and grow on buflen.
	buf := make([]byte, 4)
	var nw uint32
	s := secretPlaintext(sec, bp(buf), uint32(len(buf)), p(&nw))
	if s == 4 {
		buf = make([]byte, nw)
		s = secretPlaintext(sec, bp(buf), uint32(len(buf)), p(&nw))
	}
	if s != 0 {
		respond(500, nil, "plaintext="+strconv.Itoa(int(s))+"\n")
		return
	}
	respond(200, nil, string(buf[:nw]))
}

func secretBad() {
	st := uint32(noHandle)
	sn, sl := sp("secrets")
	line("open", secretOpen(sn, sl, p(&st)))
	un, ul := sp("nope")
	var h uint32
	line("open unknown", secretOpen(un, ul, p(&h)))
	bn, bl := sp("bad name!")
	line("open bad name", secretOpen(bn, bl, p(&h)))
	line("get unknown", secretGet(st, un, ul, p(&h)))
	line("get bad store handle", secretGet(999, un, ul, p(&h)))
	line("plaintext bad handle", secretPlaintext(999, 0, 0, p(&h)))
	kn, kl := sp("api-key")
	var sec uint32
	line("get", secretGet(st, kn, kl, p(&sec)))
	var nw uint32
	line("plaintext small buffer", secretPlaintext(sec, 0, 0, p(&nw)), nw)
	line("plaintext store handle", secretPlaintext(st, 0, 0, p(&nw)))
	fb, fl := sp("made from bytes")
	var fh uint32
	line("from_bytes", secretFromBytes(fb, fl, p(&fh)))
	buf := make([]byte, 64)
	line("from_bytes plaintext", secretPlaintext(fh, bp(buf), 64, p(&nw)), nw)
	line("from_bytes too large", secretFromBytes(bp(make([]byte, 65<<10)), 65<<10, p(&fh)))
}

func respond(status uint32, hdrs []header, text string) {
	var body uint32
	bodyNew(p(&body))
	if text != "" {
		tp, tl := sp(text)
		var nw uint32
		bodyWrite(body, tp, tl, 0, p(&nw))
	}
	respondBody(status, hdrs, body)
}

func respondBody(status uint32, hdrs []header, body uint32) {
	var r uint32
	respNew(p(&r))
	respStatusSet(r, status)
	for _, h := range hdrs {
		np, nl := sp(h.name)
		vp, vl := sp(h.value)
		if vl == 0 {
			vp, vl = sp("-")
		}
		respHeaderInsert(r, np, nl, vp, vl)
	}
	respSendDownstream(r, body, 0)
}

var _ = bodyRead
