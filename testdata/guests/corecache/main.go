//go:build wasip1

// Command corecache is the core cache conformance guest. It calls
// fastly_cache directly (//go:wasmimport, as Fastly's Go SDK does, with
// the witx option structs) and builds with TinyGo and Go. The path picks
// the operation; every answer carries the lookup's outcome in headers:
//
//	/lookup?key=K[&from=N][&to=N][&rh=1]   lookup, then the found object: X-State, X-Meta,
//	                                       X-Length, X-Max-Age, X-SWR, X-Age, X-Hits; body = get_body
//	/insert?key=K&ttl=MS[&swr=MS][&meta=M][&sk=A+B][&len=N][&vary=H][&rh=1]
//	                                       insert, body = the request body
//	/tx?key=K&ttl=MS[&async=1][&cancel=1][&update=1][&sk=S][&meta=M]
//	                                       transaction_lookup (async: transaction_lookup_async,
//	                                       select, cache_busy_handle_wait), get_state; with the
//	                                       obligation: cancel, update, or (once the request body's
//	                                       first bytes arrived) insert_and_stream_back it, streaming the answer
//	                                       (X-Role: inserter); otherwise the found body (X-Role: reader)
//	/replace?key=K&ttl=MS[&strategy=N][&noinsert=1][&rh=1][write options as /insert]
//	                                       replace (strategy: replace_strategy), the replaced
//	                                       object's metadata through replace_get_* (X-Old-*), its body
//	                                       (X-Old-Body), then replace_insert of the request body
//	                                       (noinsert: close the handle instead)
//	/bad                                   a report of bad-input statuses
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

//go:wasmimport fastly_http_body append
func bodyAppend(dst, src uint32) uint32

//go:wasmimport fastly_http_body close
func bodyClose(h uint32) uint32

//go:wasmimport fastly_async_io select
func asyncSelect(hs, n, timeout, ready uint32) uint32

//go:wasmimport fastly_http_req new
func reqNew(out uint32) uint32

//go:wasmimport fastly_http_req method_set
func reqMethodSet(h, m, mlen uint32) uint32

//go:wasmimport fastly_http_cache is_request_cacheable
func httpCacheIsRequestCacheable(req, out uint32) uint32

//go:wasmimport fastly_cache lookup
func cacheLookup(key, klen, mask, opts, out uint32) uint32

//go:wasmimport fastly_cache insert
func cacheInsert(key, klen, mask, opts, out uint32) uint32

//go:wasmimport fastly_cache transaction_lookup
func cacheTxLookup(key, klen, mask, opts, out uint32) uint32

//go:wasmimport fastly_cache transaction_lookup_async
func cacheTxLookupAsync(key, klen, mask, opts, out uint32) uint32

//go:wasmimport fastly_cache cache_busy_handle_wait
func cacheBusyWait(busy, out uint32) uint32

//go:wasmimport fastly_cache transaction_insert
func cacheTxInsert(h, mask, opts, out uint32) uint32

//go:wasmimport fastly_cache transaction_insert_and_stream_back
func cacheTxInsertStreamBack(h, mask, opts, bodyOut, cacheOut uint32) uint32

//go:wasmimport fastly_cache transaction_update
func cacheTxUpdate(h, mask, opts uint32) uint32

//go:wasmimport fastly_cache transaction_cancel
func cacheTxCancel(h uint32) uint32

//go:wasmimport fastly_cache close
func cacheClose(h uint32) uint32

//go:wasmimport fastly_cache close_busy
func cacheCloseBusy(h uint32) uint32

//go:wasmimport fastly_cache get_state
func cacheGetState(h, out uint32) uint32

//go:wasmimport fastly_cache get_user_metadata
func cacheGetUserMetadata(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_cache get_body
func cacheGetBody(h, mask, opts, out uint32) uint32

//go:wasmimport fastly_cache get_length
func cacheGetLength(h, out uint32) uint32

//go:wasmimport fastly_cache get_max_age_ns
func cacheGetMaxAge(h, out uint32) uint32

//go:wasmimport fastly_cache get_stale_while_revalidate_ns
func cacheGetSWR(h, out uint32) uint32

//go:wasmimport fastly_cache get_age_ns
func cacheGetAge(h, out uint32) uint32

//go:wasmimport fastly_cache get_hits
func cacheGetHits(h, out uint32) uint32

//go:wasmimport fastly_cache replace
func cacheReplace(key, klen, mask, opts, out uint32) uint32

//go:wasmimport fastly_cache replace_insert
func cacheReplaceInsert(h, mask, opts, out uint32) uint32

//go:wasmimport fastly_cache replace_get_state
func cacheReplaceGetState(h, out uint32) uint32

//go:wasmimport fastly_cache replace_get_user_metadata
func cacheReplaceGetUserMetadata(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_cache replace_get_body
func cacheReplaceGetBody(h, mask, opts, out uint32) uint32

//go:wasmimport fastly_cache replace_get_length
func cacheReplaceGetLength(h, out uint32) uint32

//go:wasmimport fastly_cache replace_get_max_age_ns
func cacheReplaceGetMaxAge(h, out uint32) uint32

//go:wasmimport fastly_cache replace_get_stale_while_revalidate_ns
func cacheReplaceGetSWR(h, out uint32) uint32

//go:wasmimport fastly_cache replace_get_age_ns
func cacheReplaceGetAge(h, out uint32) uint32

//go:wasmimport fastly_cache replace_get_hits
func cacheReplaceGetHits(h, out uint32) uint32

func p[T any](v *T) uint32 { return uint32(uintptr(unsafe.Pointer(v))) }

func sp(s string) (uint32, uint32) {
	if s == "" {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

func bp(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(&b[0]))) }

// lookupOpts is the witx cache_lookup_options (12 bytes).
type lookupOpts struct{ reqHeaders, svc, svcLen uint32 }

// writeOpts is the witx cache_write_options (80 bytes, 8-aligned).
type writeOpts struct {
	maxAge        uint64
	reqHeaders    uint32
	vary, varyLen uint32
	_             uint32
	initialAge    uint64
	swr           uint64
	sk, skLen     uint32
	length        uint64
	meta, metaLen uint32
	edgeMaxAge    uint64
	svc, svcLen   uint32
}

// getBodyOpts is the witx cache_get_body_options (16 bytes).
type getBodyOpts struct{ from, to uint64 }

// Mask bits.
const (
	lookupReqHeaders = 1 << 1
	lookupService    = 1 << 2

	writeReqHeaders = 1 << 1
	writeVary       = 1 << 2
	writeSWR        = 1 << 4
	writeSK         = 1 << 5
	writeLength     = 1 << 6
	writeMeta       = 1 << 7
	writeService    = 1 << 10

	bodyFrom = 1 << 1
	bodyTo   = 1 << 2

	stateMustInsert = 1 << 3
)

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
	case "/lookup":
		lookup(q)
	case "/insert":
		insert(q)
	case "/tx":
		tx(q)
	case "/replace":
		replace(q)
	case "/bad":
		bad()
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
			m[k] = strings.ReplaceAll(v, "+", " ")
		}
	}
	return m
}

func num(q map[string]string, k string) uint64 {
	n, _ := strconv.ParseUint(q[k], 10, 64)
	return n
}

type header struct{ name, value string }

// describe adds the found object's metadata of cache handle h to hdrs.
func describe(h uint32, hdrs []header) []header {
	var state uint32
	st := cacheGetState(h, p(&state))
	hdrs = append(hdrs, header{"x-state", strconv.Itoa(int(state))}, header{"x-state-status", strconv.Itoa(int(st))})
	meta := make([]byte, 256)
	var nw uint32
	if st := cacheGetUserMetadata(h, bp(meta), uint32(len(meta)), p(&nw)); st == 0 {
		hdrs = append(hdrs, header{"x-meta", string(meta[:nw])})
	} else {
		hdrs = append(hdrs, header{"x-meta", "status " + strconv.Itoa(int(st))})
	}
	// Each import is called directly (TinyGo does not take them as
	// function values).
	for _, name := range []string{"x-length", "x-max-age", "x-swr", "x-age-ms", "x-hits"} {
		var v uint64
		var st uint32
		switch name {
		case "x-length":
			st = cacheGetLength(h, p(&v))
		case "x-max-age":
			st = cacheGetMaxAge(h, p(&v))
		case "x-swr":
			st = cacheGetSWR(h, p(&v))
		case "x-age-ms":
			st = cacheGetAge(h, p(&v))
		default:
			st = cacheGetHits(h, p(&v))
		}
		switch {
		case st != 0:
			hdrs = append(hdrs, header{name, "status " + strconv.Itoa(int(st))})
		case name == "x-age-ms":
			hdrs = append(hdrs, header{name, strconv.FormatUint(v/1e6, 10)})
		case name == "x-max-age" || name == "x-swr":
			hdrs = append(hdrs, header{name, strconv.FormatUint(v/1e6, 10) + "ms"})
		default:
			hdrs = append(hdrs, header{name, strconv.FormatUint(v, 10)})
		}
	}
	return hdrs
}

func lookup(q map[string]string) {
	kp, kl := sp(q["key"])
	var lo lookupOpts
	var mask uint32
	if q["rh"] == "1" {
		mask |= lookupReqHeaders
		lo.reqHeaders = req
	}
	h := uint32(noHandle)
	if st := cacheLookup(kp, kl, mask, p(&lo), p(&h)); st != 0 {
		respond(500, nil, "lookup="+strconv.Itoa(int(st))+"\n")
		return
	}
	hdrs := describe(h, nil)
	var bo getBodyOpts
	var bmask uint32
	if _, ok := q["from"]; ok {
		bmask |= bodyFrom
		bo.from = num(q, "from")
	}
	if _, ok := q["to"]; ok {
		bmask |= bodyTo
		bo.to = num(q, "to")
	}
	body := uint32(noHandle)
	st := cacheGetBody(h, bmask, p(&bo), p(&body))
	hdrs = append(hdrs, header{"x-body-status", strconv.Itoa(int(st))})
	cacheClose(h)
	if st != 0 {
		respond(404, hdrs, "")
		return
	}
	respondBody(200, hdrs, body)
}

func writeOptions(q map[string]string) (uint32, *writeOpts) {
	w := &writeOpts{maxAge: num(q, "ttl") * 1e6}
	var mask uint32
	if _, ok := q["swr"]; ok {
		mask |= writeSWR
		w.swr = num(q, "swr") * 1e6
	}
	if m := q["meta"]; m != "" {
		mask |= writeMeta
		w.meta, w.metaLen = sp(m)
	}
	if s := q["sk"]; s != "" {
		mask |= writeSK
		w.sk, w.skLen = sp(s)
	}
	if _, ok := q["len"]; ok {
		mask |= writeLength
		w.length = num(q, "len")
	}
	if v := q["vary"]; v != "" {
		mask |= writeVary
		w.vary, w.varyLen = sp(v)
	}
	if q["rh"] == "1" {
		mask |= writeReqHeaders
		w.reqHeaders = req
	}
	return mask, w
}

func insert(q map[string]string) {
	kp, kl := sp(q["key"])
	mask, w := writeOptions(q)
	body := uint32(noHandle)
	if st := cacheInsert(kp, kl, mask, p(w), p(&body)); st != 0 {
		respond(500, nil, "insert="+strconv.Itoa(int(st))+"\n")
		return
	}
	bodyAppend(body, reqBody)
	st := bodyClose(body)
	respond(200, []header{{"x-close-status", strconv.Itoa(int(st))}}, "inserted\n")
}

// replaceOpts is the witx cache_replace_options (16 bytes).
type replaceOpts struct{ reqHeaders, strategy, svc, svcLen uint32 }

func replace(q map[string]string) {
	kp, kl := sp(q["key"])
	var ro replaceOpts
	var rmask uint32
	if q["rh"] == "1" {
		rmask |= 1 << 1
		ro.reqHeaders = req
	}
	if _, ok := q["strategy"]; ok {
		rmask |= 1 << 2
		ro.strategy = uint32(num(q, "strategy"))
	}
	h := uint32(noHandle)
	if st := cacheReplace(kp, kl, rmask, p(&ro), p(&h)); st != 0 {
		respond(500, nil, "replace="+strconv.Itoa(int(st))+"\n")
		return
	}
	var hdrs []header
	var state uint32
	if st := cacheReplaceGetState(h, p(&state)); st == 0 {
		hdrs = append(hdrs, header{"x-old-state", strconv.Itoa(int(state))})
	} else {
		hdrs = append(hdrs, header{"x-old-state", "status " + strconv.Itoa(int(st))})
	}
	meta := make([]byte, 256)
	var nw uint32
	if st := cacheReplaceGetUserMetadata(h, bp(meta), uint32(len(meta)), p(&nw)); st == 0 {
		hdrs = append(hdrs, header{"x-old-meta", string(meta[:nw])})
	} else {
		hdrs = append(hdrs, header{"x-old-meta", "status " + strconv.Itoa(int(st))})
	}
	for _, name := range []string{"x-old-length", "x-old-max-age", "x-old-swr", "x-old-age-ms", "x-old-hits"} {
		var v uint64
		var st uint32
		switch name {
		case "x-old-length":
			st = cacheReplaceGetLength(h, p(&v))
		case "x-old-max-age":
			st = cacheReplaceGetMaxAge(h, p(&v))
		case "x-old-swr":
			st = cacheReplaceGetSWR(h, p(&v))
		case "x-old-age-ms":
			st = cacheReplaceGetAge(h, p(&v))
		default:
			st = cacheReplaceGetHits(h, p(&v))
		}
		switch {
		case st != 0:
			hdrs = append(hdrs, header{name, "status " + strconv.Itoa(int(st))})
		case name == "x-old-age-ms":
			hdrs = append(hdrs, header{name, strconv.FormatUint(v/1e6, 10)})
		case name == "x-old-max-age" || name == "x-old-swr":
			hdrs = append(hdrs, header{name, strconv.FormatUint(v/1e6, 10) + "ms"})
		default:
			hdrs = append(hdrs, header{name, strconv.FormatUint(v, 10)})
		}
	}
	old := uint32(noHandle)
	var bo getBodyOpts
	if st := cacheReplaceGetBody(h, 0, p(&bo), p(&old)); st == 0 {
		buf := make([]byte, 4096)
		var n uint32
		bodyRead(old, bp(buf), uint32(len(buf)), p(&n))
		bodyClose(old)
		hdrs = append(hdrs, header{"x-old-body", string(buf[:n])})
	} else {
		hdrs = append(hdrs, header{"x-old-body", "status " + strconv.Itoa(int(st))})
	}
	if q["noinsert"] == "1" {
		hdrs = append(hdrs, header{"x-close-status", strconv.Itoa(int(cacheClose(h)))})
		respond(200, hdrs, "not replaced\n")
		return
	}
	mask, w := writeOptions(q)
	body := uint32(noHandle)
	st := cacheReplaceInsert(h, mask, p(w), p(&body))
	hdrs = append(hdrs, header{"x-insert-status", strconv.Itoa(int(st))})
	if st != 0 {
		respond(500, hdrs, "")
		return
	}
	bodyAppend(body, reqBody)
	hdrs = append(hdrs, header{"x-close-status", strconv.Itoa(int(bodyClose(body)))})
	// The handle is consumed: its getters answer badf now.
	hdrs = append(hdrs, header{"x-after-insert", strconv.Itoa(int(cacheReplaceGetState(h, p(&state))))})
	respond(200, hdrs, "replaced\n")
}

func tx(q map[string]string) {
	kp, kl := sp(q["key"])
	var lo lookupOpts
	h := uint32(noHandle)
	if q["async"] == "1" {
		busy := uint32(noHandle)
		if st := cacheTxLookupAsync(kp, kl, 0, p(&lo), p(&busy)); st != 0 {
			respond(500, nil, "transaction_lookup_async="+strconv.Itoa(int(st))+"\n")
			return
		}
		hs := [1]uint32{busy}
		var ready uint32 = 99
		if st := asyncSelect(p(&hs[0]), 1, 10000, p(&ready)); st != 0 || ready != 0 {
			respond(500, nil, "select="+strconv.Itoa(int(st))+","+strconv.Itoa(int(ready))+"\n")
			return
		}
		if st := cacheBusyWait(busy, p(&h)); st != 0 {
			respond(500, nil, "cache_busy_handle_wait="+strconv.Itoa(int(st))+"\n")
			return
		}
	} else if st := cacheTxLookup(kp, kl, 0, p(&lo), p(&h)); st != 0 {
		respond(500, nil, "transaction_lookup="+strconv.Itoa(int(st))+"\n")
		return
	}
	var state uint32
	cacheGetState(h, p(&state))
	if state&stateMustInsert == 0 {
		hdrs := describe(h, []header{{"x-role", "reader"}})
		body := uint32(noHandle)
		var bo getBodyOpts
		if st := cacheGetBody(h, 0, p(&bo), p(&body)); st != 0 {
			respond(404, append(hdrs, header{"x-body-status", strconv.Itoa(int(st))}), "")
			return
		}
		streamBody(200, hdrs, body)
		return
	}
	mask, w := writeOptions(q)
	switch {
	case q["cancel"] == "1":
		st := cacheTxCancel(h)
		respond(200, []header{{"x-role", "canceller"}, {"x-cancel-status", strconv.Itoa(int(st))}}, "cancelled\n")
		return
	case q["update"] == "1":
		st := cacheTxUpdate(h, mask, p(w))
		respond(200, []header{{"x-role", "updater"}, {"x-update-status", strconv.Itoa(int(st))}}, "updated\n")
		return
	}
	// The obligation: answer at once (streaming), then insert the request
	// body a line at a time as it arrives.
	var r, out uint32
	respNew(p(&r))
	insertHeader(r, "x-role", "inserter")
	insertHeader(r, "x-state", strconv.Itoa(int(state)))
	bodyNew(p(&out))
	respSendDownstream(r, out, 1)
	// The first bytes come before the insert: until then, other
	// transactions of the key wait for this one.
	buf := make([]byte, 4096)
	var nw uint32
	if st := bodyRead(reqBody, bp(buf), uint32(len(buf)), p(&nw)); st != 0 {
		return
	}
	var ins, back uint32
	if st := cacheTxInsertStreamBack(h, mask, p(w), p(&ins), p(&back)); st != 0 {
		writeStr(out, "insert_and_stream_back="+strconv.Itoa(int(st))+"\n")
		bodyClose(out)
		return
	}
	for nw > 0 {
		var n uint32
		bodyWrite(ins, bp(buf), nw, 0, p(&n))
		if st := bodyRead(reqBody, bp(buf), uint32(len(buf)), p(&nw)); st != 0 {
			return // the client went away: the insert's body is left open, so abandoned
		}
	}
	bodyClose(ins)
	var back2 uint32
	var bo getBodyOpts
	cacheGetBody(back, 0, p(&bo), p(&back2))
	bodyAppend(out, back2)
	bodyClose(out)
}

// bad reports the statuses of bad input.
func bad() {
	k, kl := sp("bad-input-key")
	var lo lookupOpts
	var h uint32
	var w writeOpts
	var body uint32
	line("lookup empty key", cacheLookup(k, 0, 0, p(&lo), p(&h)))
	big := make([]byte, 4097)
	line("lookup key 4097 bytes", cacheLookup(bp(big), 4097, 0, p(&lo), p(&h)))
	line("lookup key 4096 bytes", cacheLookup(bp(big), 4096, 0, p(&lo), p(&h)))
	line("lookup key out of bounds", cacheLookup(0xFFFFFF00, 0x200, 0, p(&lo), p(&h)))
	line("lookup reserved bit", cacheLookup(k, kl, 1, p(&lo), p(&h)))
	line("lookup unknown bit", cacheLookup(k, kl, 1<<9, p(&lo), p(&h)))
	line("lookup service", cacheLookup(k, kl, lookupService, p(&lo), p(&h)))
	lo.reqHeaders = 999
	line("lookup bad request handle", cacheLookup(k, kl, lookupReqHeaders, p(&lo), p(&h)))
	line("lookup options out of bounds", cacheLookup(k, kl, lookupReqHeaders, 0xFFFFFFF0, p(&h)))
	var outs [2]uint32
	line("lookup misaligned out", cacheLookup(k, kl, 0, p(&lo), p(&outs[0])+1))
	line("lookup out of bounds out", cacheLookup(k, kl, 0, p(&lo), 0xFFFFFFFC))
	line("insert key 4097 bytes", cacheInsert(bp(big), 4097, 0, p(&w), p(&body)))
	line("insert reserved bit", cacheInsert(k, kl, 1, p(&w), p(&body)))
	line("insert service", cacheInsert(k, kl, writeService, p(&w), p(&body)))
	var ws [2]writeOpts
	line("insert misaligned options", cacheInsert(k, kl, 0, p(&ws[0])+4, p(&body)))
	line("insert options out of bounds", cacheInsert(k, kl, 0, 0xFFFFFFF0, p(&body)))
	longKey := strings.Repeat("s", 1025)
	w.sk, w.skLen = sp(longKey)
	line("insert surrogate key 1025 bytes", cacheInsert(k, kl, writeSK, p(&w), p(&body)))
	w.sk, w.skLen = 0xFFFFFF00, 0x200
	line("insert surrogate keys out of bounds", cacheInsert(k, kl, writeSK, p(&w), p(&body)))
	w = writeOpts{}
	w.reqHeaders = 999
	line("insert bad request handle", cacheInsert(k, kl, writeReqHeaders, p(&w), p(&body)))
	line("get_state bad handle", cacheGetState(999, p(&h)))
	line("close bad handle", cacheClose(999))
	line("close_busy bad handle", cacheCloseBusy(999))
	line("transaction_cancel bad handle", cacheTxCancel(999))
	// A lookup of a missing key: the getters answer none.
	mk, ml := sp("missing-key-of-bad")
	lo = lookupOpts{}
	line("lookup missing", cacheLookup(mk, ml, 0, p(&lo), p(&h)))
	var state uint32
	line("get_state missing", cacheGetState(h, p(&state)), state)
	var v uint64
	line("get_length missing", cacheGetLength(h, p(&v)))
	line("get_hits missing", cacheGetHits(h, p(&v)))
	line("get_age_ns missing", cacheGetAge(h, p(&v)))
	var nw uint32
	line("get_user_metadata missing", cacheGetUserMetadata(h, 0, 0, p(&nw)))
	var bo getBodyOpts
	line("get_body missing", cacheGetBody(h, 0, p(&bo), p(&body)))
	line("get_body reserved bit", cacheGetBody(h, 1, p(&bo), p(&body)))
	line("get_hits misaligned out", cacheGetHits(h, p(&outs[0])+4))
	// A non-transactional lookup holds no obligation.
	line("transaction_insert without obligation", cacheTxInsert(h, 0, p(&w), p(&body)))
	line("transaction_update without obligation", cacheTxUpdate(h, 0, p(&w)))
	line("close", cacheClose(h))
	line("close again", cacheClose(h))
	// Metadata that does not fit: buflen with the needed length.
	w = writeOpts{maxAge: 60e9}
	w.meta, w.metaLen = sp("sixteen byte md!")
	mk2, ml2 := sp("bad-meta-key")
	line("insert with metadata", cacheInsert(mk2, ml2, writeMeta, p(&w), p(&body)))
	line("close insert body", bodyClose(body))
	line("lookup with metadata", cacheLookup(mk2, ml2, 0, p(&lo), p(&h)))
	small := make([]byte, 4)
	line("get_user_metadata small buffer", cacheGetUserMetadata(h, bp(small), 4, p(&nw)), nw)
	// A transaction: the obligation, then a second lookup in another
	// sandbox would wait; here, cancel and look again.
	tk, tl := sp("bad-tx-key")
	line("transaction_lookup", cacheTxLookup(tk, tl, 0, p(&lo), p(&h)))
	line("get_state", cacheGetState(h, p(&state)), state)
	line("transaction_update of nothing", cacheTxUpdate(h, 0, p(&w)))
	line("transaction_insert misaligned options", cacheTxInsert(h, 0, p(&ws[0])+4, p(&body)))
	line("transaction_cancel", cacheTxCancel(h))
	line("transaction_insert after cancel", cacheTxInsert(h, 0, p(&w), p(&body)))
	var h2 uint32
	line("transaction_lookup again", cacheTxLookup(tk, tl, 0, p(&lo), p(&h2)))
	line("get_state again", cacheGetState(h2, p(&state)), state)
	line("transaction_insert with length", cacheTxInsert(h2, writeLength, p(&writeOpts{maxAge: 60e9, length: 5}), p(&body)))
	short, sl := sp("abc")
	var n uint32
	bodyWrite(body, short, sl, 0, p(&n))
	line("close short body", bodyClose(body))
	var h3 uint32
	line("lookup after short body", cacheLookup(tk, tl, 0, p(&lo), p(&h3)))
	line("get_state after short body", cacheGetState(h3, p(&state)), state)

	// fastly_http_cache.is_request_cacheable: GET and HEAD.
	for _, m := range []string{"GET", "HEAD", "POST", "PURGE"} {
		var r, v uint32
		reqNew(p(&r))
		mp, ml := sp(m)
		reqMethodSet(r, mp, ml)
		st := httpCacheIsRequestCacheable(r, p(&v))
		line("is_request_cacheable "+m, st, v)
	}
	line("is_request_cacheable bad handle", httpCacheIsRequestCacheable(999, p(&h)))
}

func insertHeader(r uint32, name, value string) {
	np, nl := sp(name)
	vp, vl := sp(value)
	if vl == 0 {
		vp, vl = sp("-")
	}
	respHeaderInsert(r, np, nl, vp, vl)
}

func writeStr(body uint32, s string) {
	tp, tl := sp(s)
	var nw uint32
	bodyWrite(body, tp, tl, 0, p(&nw))
}

func respond(status uint32, hdrs []header, text string) {
	var body uint32
	bodyNew(p(&body))
	if text != "" {
		writeStr(body, text)
	}
	respondBody(status, hdrs, body)
}

func respondBody(status uint32, hdrs []header, body uint32) {
	var r uint32
	respNew(p(&r))
	respStatusSet(r, status)
	for _, h := range hdrs {
		insertHeader(r, h.name, h.value)
	}
	respSendDownstream(r, body, 0)
}

// streamBody answers with headers now and body as it arrives.
func streamBody(status uint32, hdrs []header, body uint32) {
	var r, out uint32
	respNew(p(&r))
	respStatusSet(r, status)
	for _, h := range hdrs {
		insertHeader(r, h.name, h.value)
	}
	bodyNew(p(&out))
	respSendDownstream(r, out, 1)
	bodyAppend(out, body)
	bodyClose(out)
}
