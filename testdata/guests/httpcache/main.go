//go:build wasip1

// Command httpcache is the HTTP cache API conformance guest. It calls
// fastly_http_cache directly (//go:wasmimport, with the witx option
// structs, as Fastly's Go SDK does) and builds with TinyGo and Go.
//
//	/obj/...[?key=K][&ttl=MS]  transaction_lookup of the request (key: the override key);
//	                           with the obligation: get_suggested_backend_request, send it to
//	                           the backend "origin" (passing the readthrough cache),
//	                           prepare_response_for_storage, get_suggested_cache_options, then
//	                           per the storage action insert_and_stream_back (X-Role: inserter),
//	                           update_and_return_fresh (updater), record_not_cacheable
//	                           (recorder) or abandon (nostore); a found response is answered
//	                           from the cache (hit); neither: sent to the origin (pass)
//	                           (?nopass=1: the backend request as suggested, no pass override of its own)
//	                           (?sugg=1: the override key is get_suggested_cache_key of the URI without its query)
//	/key[?...]                 get_suggested_cache_key of the request (hex), with a Host header
//	                           "Example.COM", and into a 16-byte buffer (status, nwritten)
//	/bad                       a report of bad-input statuses
//
// Reports are "check=result" lines, identical on every engine.
package main

import (
	"strconv"
	"strings"
	"unsafe"
)

//go:wasmimport fastly_http_req body_downstream_get
func reqBodyDownstreamGet(req, body uint32) uint32

//go:wasmimport fastly_http_req uri_get
func reqURIGet(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req new
func reqNew(out uint32) uint32

//go:wasmimport fastly_http_req uri_set
func reqURISet(h, u, ulen uint32) uint32

//go:wasmimport fastly_http_req header_insert
func reqHeaderInsert(h, name, nlen, val, vlen uint32) uint32

//go:wasmimport fastly_http_cache get_suggested_cache_key
func hcSuggestedCacheKey(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req cache_override_set
func reqCacheOverrideSet(h, tag, ttl, swr uint32) uint32

//go:wasmimport fastly_http_req send
func reqSend(h, body, backend, blen, resp, rbody uint32) uint32

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

//go:wasmimport fastly_http_body close
func bodyClose(h uint32) uint32

//go:wasmimport fastly_http_cache lookup
func hcLookup(req, mask, opts, out uint32) uint32

//go:wasmimport fastly_http_cache transaction_lookup
func hcTxLookup(req, mask, opts, out uint32) uint32

//go:wasmimport fastly_http_cache transaction_insert
func hcTxInsert(h, resp, mask, opts, bodyOut uint32) uint32

//go:wasmimport fastly_http_cache transaction_insert_and_stream_back
func hcTxInsertStreamBack(h, resp, mask, opts, bodyOut, cacheOut uint32) uint32

//go:wasmimport fastly_http_cache transaction_update
func hcTxUpdate(h, resp, mask, opts uint32) uint32

//go:wasmimport fastly_http_cache transaction_update_and_return_fresh
func hcTxUpdateReturnFresh(h, resp, mask, opts, out uint32) uint32

//go:wasmimport fastly_http_cache transaction_record_not_cacheable
func hcTxRecordNotCacheable(h, mask, opts uint32) uint32

//go:wasmimport fastly_http_cache transaction_abandon
func hcTxAbandon(h uint32) uint32

//go:wasmimport fastly_http_cache transaction_choose_stale
func hcTxChooseStale(h uint32) uint32

//go:wasmimport fastly_http_cache close
func hcClose(h uint32) uint32

//go:wasmimport fastly_http_cache get_suggested_backend_request
func hcSuggestedBackendRequest(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_suggested_cache_options
func hcSuggestedCacheOptions(h, resp, mask, opts, maskOut, optsOut uint32) uint32

//go:wasmimport fastly_http_cache prepare_response_for_storage
func hcPrepare(h, resp, actionOut, respOut uint32) uint32

//go:wasmimport fastly_http_cache get_found_response
func hcFoundResponse(h, transform, respOut, bodyOut uint32) uint32

//go:wasmimport fastly_http_cache get_state
func hcState(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_length
func hcLength(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_max_age_ns
func hcMaxAge(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_stale_while_revalidate_ns
func hcSWR(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_age_ns
func hcAge(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_hits
func hcHits(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_sensitive_data
func hcSensitive(h, out uint32) uint32

//go:wasmimport fastly_http_cache get_surrogate_keys
func hcSurrogateKeys(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_cache get_vary_rule
func hcVaryRule(h, buf, n, nw uint32) uint32

func p[T any](v *T) uint32 { return uint32(uintptr(unsafe.Pointer(v))) }

func sp(s string) (uint32, uint32) {
	if s == "" {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

func bp(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(&b[0]))) }

// lookupOpts is the witx http_cache_lookup_options.
type lookupOpts struct{ key, keyLen uint32 }

// writeOpts is the witx http_cache_write_options (8-aligned).
type writeOpts struct {
	maxAge        uint64
	vary, varyLen uint32
	initialAge    uint64
	swr           uint64
	sk, skLen     uint32
	length        uint64
}

// Mask bits and states.
const (
	lookupOverrideKey = 1 << 1

	writeVary      = 1 << 1
	writeSWR       = 1 << 3
	writeSK        = 1 << 4
	writeSensitive = 1 << 6

	stateFound      = 1 << 0
	stateMustInsert = 1 << 3

	overridePass = 1 << 0
)

type header struct{ name, value string }

var (
	req, reqBody uint32
	uri          string
	report       strings.Builder
	// noPass (?nopass=1): the backend request is sent as suggested,
	// without the guest's own pass override.
	noPass bool
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
	uri = string(buf[:nw])
	path := uri[strings.Index(uri, "://")+3:]
	path = path[strings.IndexByte(path, '/'):]
	path, query, _ := strings.Cut(path, "?")
	q := parseQuery(query)
	noPass = q["nopass"] == "1"
	switch {
	case strings.HasPrefix(path, "/obj/"):
		serve(q)
	case path == "/key":
		keyReport()
		respond(200, nil, report.String())
	case path == "/bad":
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

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// serve answers the request through the HTTP cache.
func serve(q map[string]string) {
	var h uint32
	var lo lookupOpts
	mask := uint32(0)
	if k := q["key"]; k != "" {
		mask = lookupOverrideKey
		lo.key, lo.keyLen = sp(k)
	}
	if q["sugg"] == "1" {
		var r2, nw uint32
		reqNew(p(&r2))
		base, _, _ := strings.Cut(uri, "?")
		up, ul := sp(base)
		reqURISet(r2, up, ul)
		kb := make([]byte, 32)
		hcSuggestedCacheKey(r2, bp(kb), 32, p(&nw))
		mask = lookupOverrideKey
		lo.key, lo.keyLen = bp(kb), nw
	}
	if st := hcTxLookup(req, mask, p(&lo), p(&h)); st != 0 {
		respond(500, nil, "transaction_lookup="+u32(st)+"\n")
		return
	}
	var state uint32
	hcState(h, p(&state))
	hdrs := []header{{"X-State", u32(state)}}
	switch {
	case state&stateMustInsert != 0:
		fill(h, q, hdrs)
	case state&stateFound != 0:
		found(h, append(hdrs, header{"X-Role", "hit"}))
	default:
		resp, rbody, st := fetch(h)
		if st != 0 {
			respond(502, hdrs, "send="+u32(st)+"\n")
			return
		}
		insertHeaders(resp, append(hdrs, header{"X-Role", "pass"}))
		respSendDownstream(resp, rbody, 0)
	}
}

// fetch sends the suggested backend request of h to the origin.
func fetch(h uint32) (resp, rbody, st uint32) {
	var breq, bbody uint32
	if st := hcSuggestedBackendRequest(h, p(&breq)); st != 0 {
		return 0, 0, st
	}
	if !noPass {
		reqCacheOverrideSet(breq, overridePass, 0, 0)
	}
	bodyNew(p(&bbody))
	be, bl := sp("origin")
	st = reqSend(breq, bbody, be, bl, p(&resp), p(&rbody))
	return resp, rbody, st
}

// fill meets h's obligation from the origin.
func fill(h uint32, q map[string]string, hdrs []header) {
	resp, rbody, st := fetch(h)
	if st != 0 {
		hcTxAbandon(h)
		respond(502, hdrs, "send="+u32(st)+"\n")
		return
	}
	var action, resp2 uint32
	st = hcPrepare(h, resp, p(&action), p(&resp2))
	hdrs = append(hdrs, header{"X-Prepare", u32(st)}, header{"X-Action", u32(action)})
	vbuf, skbuf := make([]byte, 256), make([]byte, 256)
	in := writeOpts{vary: bp(vbuf), varyLen: 256, sk: bp(skbuf), skLen: 256}
	var out writeOpts
	var maskOut uint32
	st = hcSuggestedCacheOptions(h, resp2, writeVary|writeSK, p(&in), p(&maskOut), p(&out))
	hdrs = append(hdrs,
		header{"X-Sugg", u32(st)},
		header{"X-Sugg-Max-Age", strconv.FormatUint(out.maxAge/1e6, 10) + "ms"},
		header{"X-Sugg-Swr", strconv.FormatUint(out.swr/1e6, 10) + "ms"},
		header{"X-Sugg-Vary", string(vbuf[:out.varyLen])},
		header{"X-Sugg-Sk", string(skbuf[:out.skLen])},
		header{"X-Sugg-Length", strconv.FormatUint(out.length, 10)})
	if ttl, err := strconv.ParseUint(q["ttl"], 10, 64); err == nil {
		out.maxAge = ttl * 1e6
	}
	if q["sensitive"] == "1" {
		maskOut |= writeSensitive
	}
	switch action {
	case 0: // insert
		var wb, h2 uint32
		if q["plain"] == "1" {
			st = hcTxInsert(h, resp2, maskOut, p(&out), p(&wb))
		} else {
			st = hcTxInsertStreamBack(h, resp2, maskOut, p(&out), p(&wb), p(&h2))
		}
		hdrs = append(hdrs, header{"X-Insert", u32(st)})
		copyBody(wb, rbody)
		hdrs = append(hdrs, header{"X-Close", u32(bodyClose(wb))})
		if q["plain"] == "1" {
			var lh uint32
			hcLookup(req, 0, p(&lookupOpts{}), p(&lh))
			h2 = lh
		}
		found(h2, append(hdrs, header{"X-Role", "inserter"}))
	case 1: // update
		var h2 uint32
		if q["plain"] == "1" {
			st = hcTxUpdate(h, resp2, maskOut, p(&out))
			var lh uint32
			hcLookup(req, 0, p(&lookupOpts{}), p(&lh))
			h2 = lh
		} else {
			st = hcTxUpdateReturnFresh(h, resp2, maskOut, p(&out), p(&h2))
		}
		bodyClose(rbody)
		found(h2, append(hdrs, header{"X-Update", u32(st)}, header{"X-Role", "updater"}))
	case 3: // record uncacheable
		st = hcTxRecordNotCacheable(h, maskOut, p(&out))
		insertHeaders(resp2, append(hdrs, header{"X-Record", u32(st)}, header{"X-Role", "recorder"}))
		respSendDownstream(resp2, rbody, 0)
	default:
		hcTxAbandon(h)
		insertHeaders(resp2, append(hdrs, header{"X-Role", "nostore"}))
		respSendDownstream(resp2, rbody, 0)
	}
}

// found answers with the response h found and its metadata.
func found(h uint32, hdrs []header) {
	var v64 uint64
	var v32, nw uint32
	get64 := func(name string, st uint32, ms bool) {
		switch {
		case st != 0:
			hdrs = append(hdrs, header{name, "status " + u32(st)})
		case ms:
			hdrs = append(hdrs, header{name, strconv.FormatUint(v64/1e6, 10) + "ms"})
		default:
			hdrs = append(hdrs, header{name, strconv.FormatUint(v64, 10)})
		}
	}
	get64("X-Length", hcLength(h, p(&v64)), false)
	get64("X-Max-Age", hcMaxAge(h, p(&v64)), true)
	get64("X-Swr", hcSWR(h, p(&v64)), true)
	get64("X-Hits", hcHits(h, p(&v64)), false)
	hcAge(h, p(&v64))
	st := hcSensitive(h, p(&v32))
	hdrs = append(hdrs, header{"X-Sensitive", u32(st) + "," + u32(v32)})
	buf := make([]byte, 512)
	if st := hcSurrogateKeys(h, bp(buf), uint32(len(buf)), p(&nw)); st == 0 {
		hdrs = append(hdrs, header{"X-Sk", string(buf[:nw])})
	}
	if st := hcVaryRule(h, bp(buf), uint32(len(buf)), p(&nw)); st == 0 {
		hdrs = append(hdrs, header{"X-Vary", string(buf[:nw])})
	}
	var fr, fb uint32
	if st := hcFoundResponse(h, 1, p(&fr), p(&fb)); st != 0 {
		respond(500, hdrs, "get_found_response="+u32(st)+"\n")
		return
	}
	insertHeaders(fr, hdrs)
	hcClose(h)
	respSendDownstream(fr, fb, 0)
}

func copyBody(dst, src uint32) {
	buf := make([]byte, 16<<10)
	for {
		var n, nw uint32
		if bodyRead(src, bp(buf), uint32(len(buf)), p(&n)) != 0 || n == 0 {
			break
		}
		bodyWrite(dst, bp(buf), n, 0, p(&nw))
	}
	bodyClose(src)
}

// keyReport reports get_suggested_cache_key of the request.
func keyReport() {
	kb := make([]byte, 64)
	var nw uint32
	st := hcSuggestedCacheKey(req, bp(kb), 64, p(&nw))
	report.WriteString("key=" + u32(st) + "," + u32(nw) + "," + hex(kb[:nw]) + "\n")
	var r2 uint32
	reqNew(p(&r2))
	up, ul := sp(uri)
	reqURISet(r2, up, ul)
	np, nl := sp("Host")
	vp, vl := sp("Example.COM")
	reqHeaderInsert(r2, np, nl, vp, vl)
	st = hcSuggestedCacheKey(r2, bp(kb), 64, p(&nw))
	report.WriteString("host key=" + u32(st) + "," + u32(nw) + "," + hex(kb[:nw]) + "\n")
	nw = 0
	line("short buffer", hcSuggestedCacheKey(req, bp(kb), 16, p(&nw)), nw)
	line("bad request", hcSuggestedCacheKey(4242, bp(kb), 64, p(&nw)))
}

func hex(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// bad reports the statuses of bad input.
func bad() {
	var h, state uint32
	lo := lookupOpts{}
	line("lookup bad request", hcLookup(999, 0, p(&lo), p(&h)))
	line("lookup reserved bit", hcLookup(req, 1, p(&lo), p(&h)))
	line("lookup unknown bit", hcLookup(req, 1<<5, p(&lo), p(&h)))
	line("lookup options outside memory", hcLookup(req, lookupOverrideKey, 0xFFFFFFF0, p(&h)))
	far := lookupOpts{key: 0xFFFFFF00, keyLen: 0x1000}
	line("lookup key outside memory", hcLookup(req, lookupOverrideKey, p(&far), p(&h)))
	empty := lookupOpts{}
	line("lookup empty key", hcLookup(req, lookupOverrideKey, p(&empty), p(&h)))
	line("lookup out outside memory", hcTxLookup(req, 0, p(&lo), 0xFFFFFFFC))
	line("get_state bad handle", hcState(12345, p(&state)))
	line("close bad handle", hcClose(12345))
	line("get_hits bad handle", hcHits(12345, p(&state)))

	k, kl := sp("bad-key")
	ko := lookupOpts{key: k, keyLen: kl}
	line("lookup miss", hcLookup(req, lookupOverrideKey, p(&ko), p(&h)))
	line("get_state", hcState(h, p(&state)), state)
	var fr, fb, body, resp uint32
	var v64 uint64
	line("get_found_response of a miss", hcFoundResponse(h, 0, p(&fr), p(&fb)))
	line("get_length of a miss", hcLength(h, p(&v64)))
	respNew(p(&resp))
	w := writeOpts{maxAge: 60e9}
	line("transaction_insert without obligation", hcTxInsert(h, resp, 0, p(&w), p(&body)))
	line("transaction_choose_stale without obligation", hcTxChooseStale(h))
	line("close", hcClose(h))
	line("close again", hcClose(h))

	var t uint32
	line("transaction_lookup", hcTxLookup(req, lookupOverrideKey, p(&ko), p(&t)))
	line("get_state tx", hcState(t, p(&state)), state)
	line("transaction_insert unknown bit", hcTxInsert(t, resp, 1<<9, p(&w), p(&body)))
	line("transaction_insert reserved bit", hcTxInsert(t, resp, 1, p(&w), p(&body)))
	ws := make([]writeOpts, 2)
	line("transaction_insert misaligned options", hcTxInsert(t, resp, 0, p(&ws[0])+4, p(&body)))
	line("transaction_insert options outside memory", hcTxInsert(t, resp, 0, 0xFFFFFFF8, p(&body)))
	line("transaction_insert bad response", hcTxInsert(t, 4242, 0, p(&w), p(&body)))
	line("transaction_update of nothing", hcTxUpdate(t, resp, 0, p(&w)))
	var mo uint32
	var out writeOpts
	line("get_suggested_cache_options unknown bit", hcSuggestedCacheOptions(t, resp, 1<<9, p(&w), p(&mo), p(&out)))
	line("get_suggested_cache_options bad response", hcSuggestedCacheOptions(t, 4242, 0, p(&w), p(&mo), p(&out)))
	var action, r2 uint32
	line("prepare_response_for_storage bad response", hcPrepare(t, 4242, p(&action), p(&r2)))
	line("transaction_abandon", hcTxAbandon(t))
	line("transaction_insert after abandon", hcTxInsert(t, resp, 0, p(&w), p(&body)))
	line("close tx", hcClose(t))
}

func insertHeaders(r uint32, hdrs []header) {
	for _, h := range hdrs {
		np, nl := sp(h.name)
		v := h.value
		if v == "" {
			v = "-"
		}
		vp, vl := sp(v)
		respHeaderInsert(r, np, nl, vp, vl)
	}
}

func respond(status uint32, hdrs []header, text string) {
	var body, r, nw uint32
	bodyNew(p(&body))
	if text != "" {
		tp, tl := sp(text)
		bodyWrite(body, tp, tl, 0, p(&nw))
	}
	respNew(p(&r))
	respStatusSet(r, status)
	insertHeaders(r, hdrs)
	respSendDownstream(r, body, 0)
}
