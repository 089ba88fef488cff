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

	"github.com/edgehost/edgehost/testdata/guests/internal/hostabi"
)

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
	hostabi.ReqBodyDownstreamGet(hostabi.Ptr(&req), hostabi.Ptr(&reqBody))
	buf := make([]byte, 4096)
	var nw uint32
	hostabi.ReqURIGet(req, hostabi.Bytes(buf), uint32(len(buf)), hostabi.Ptr(&nw))
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
		lo.key, lo.keyLen = hostabi.Str(k)
	}
	if q["sugg"] == "1" {
		var r2, nw uint32
		hostabi.ReqNew(hostabi.Ptr(&r2))
		base, _, _ := strings.Cut(uri, "?")
		up, ul := hostabi.Str(base)
		hostabi.ReqURISet(r2, up, ul)
		kb := make([]byte, 32)
		hostabi.HcSuggestedCacheKey(r2, hostabi.Bytes(kb), 32, hostabi.Ptr(&nw))
		mask = lookupOverrideKey
		lo.key, lo.keyLen = hostabi.Bytes(kb), nw
	}
	if st := hostabi.HcTxLookup(req, mask, hostabi.Ptr(&lo), hostabi.Ptr(&h)); st != 0 {
		respond(500, nil, "transaction_lookup="+u32(st)+"\n")
		return
	}
	var state uint32
	hostabi.HcState(h, hostabi.Ptr(&state))
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
		hostabi.RespSendDownstream(resp, rbody, 0)
	}
}

// fetch sends the suggested backend request of h to the origin.
func fetch(h uint32) (resp, rbody, st uint32) {
	var breq, bbody uint32
	if st := hostabi.HcSuggestedBackendRequest(h, hostabi.Ptr(&breq)); st != 0 {
		return 0, 0, st
	}
	if !noPass {
		hostabi.ReqCacheOverrideSet(breq, overridePass, 0, 0)
	}
	hostabi.BodyNew(hostabi.Ptr(&bbody))
	be, bl := hostabi.Str("origin")
	st = hostabi.ReqSend(breq, bbody, be, bl, hostabi.Ptr(&resp), hostabi.Ptr(&rbody))
	return resp, rbody, st
}

// fill meets h's obligation from the origin.
func fill(h uint32, q map[string]string, hdrs []header) {
	resp, rbody, st := fetch(h)
	if st != 0 {
		hostabi.HcTxAbandon(h)
		respond(502, hdrs, "send="+u32(st)+"\n")
		return
	}
	var action, resp2 uint32
	st = hostabi.HcPrepare(h, resp, hostabi.Ptr(&action), hostabi.Ptr(&resp2))
	hdrs = append(hdrs, header{"X-Prepare", u32(st)}, header{"X-Action", u32(action)})
	vbuf, skbuf := make([]byte, 256), make([]byte, 256)
	in := writeOpts{vary: hostabi.Bytes(vbuf), varyLen: 256, sk: hostabi.Bytes(skbuf), skLen: 256}
	var out writeOpts
	var maskOut uint32
	st = hostabi.HcSuggestedCacheOptions(h, resp2, writeVary|writeSK, hostabi.Ptr(&in), hostabi.Ptr(&maskOut), hostabi.Ptr(&out))
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
			st = hostabi.HcTxInsert(h, resp2, maskOut, hostabi.Ptr(&out), hostabi.Ptr(&wb))
		} else {
			st = hostabi.HcTxInsertStreamBack(h, resp2, maskOut, hostabi.Ptr(&out), hostabi.Ptr(&wb), hostabi.Ptr(&h2))
		}
		hdrs = append(hdrs, header{"X-Insert", u32(st)})
		copyBody(wb, rbody)
		hdrs = append(hdrs, header{"X-Close", u32(hostabi.BodyClose(wb))})
		if q["plain"] == "1" {
			var lh uint32
			hostabi.HcLookup(req, 0, hostabi.Ptr(&lookupOpts{}), hostabi.Ptr(&lh))
			h2 = lh
		}
		found(h2, append(hdrs, header{"X-Role", "inserter"}))
	case 1: // update
		var h2 uint32
		if q["plain"] == "1" {
			st = hostabi.HcTxUpdate(h, resp2, maskOut, hostabi.Ptr(&out))
			var lh uint32
			hostabi.HcLookup(req, 0, hostabi.Ptr(&lookupOpts{}), hostabi.Ptr(&lh))
			h2 = lh
		} else {
			st = hostabi.HcTxUpdateReturnFresh(h, resp2, maskOut, hostabi.Ptr(&out), hostabi.Ptr(&h2))
		}
		hostabi.BodyClose(rbody)
		found(h2, append(hdrs, header{"X-Update", u32(st)}, header{"X-Role", "updater"}))
	case 3: // record uncacheable
		st = hostabi.HcTxRecordNotCacheable(h, maskOut, hostabi.Ptr(&out))
		insertHeaders(resp2, append(hdrs, header{"X-Record", u32(st)}, header{"X-Role", "recorder"}))
		hostabi.RespSendDownstream(resp2, rbody, 0)
	default:
		hostabi.HcTxAbandon(h)
		insertHeaders(resp2, append(hdrs, header{"X-Role", "nostore"}))
		hostabi.RespSendDownstream(resp2, rbody, 0)
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
	get64("X-Length", hostabi.HcLength(h, hostabi.Ptr(&v64)), false)
	get64("X-Max-Age", hostabi.HcMaxAge(h, hostabi.Ptr(&v64)), true)
	get64("X-Swr", hostabi.HcSWR(h, hostabi.Ptr(&v64)), true)
	get64("X-Hits", hostabi.HcHits(h, hostabi.Ptr(&v64)), false)
	hostabi.HcAge(h, hostabi.Ptr(&v64))
	st := hostabi.HcSensitive(h, hostabi.Ptr(&v32))
	hdrs = append(hdrs, header{"X-Sensitive", u32(st) + "," + u32(v32)})
	buf := make([]byte, 512)
	if st := hostabi.HcSurrogateKeys(h, hostabi.Bytes(buf), uint32(len(buf)), hostabi.Ptr(&nw)); st == 0 {
		hdrs = append(hdrs, header{"X-Sk", string(buf[:nw])})
	}
	if st := hostabi.HcVaryRule(h, hostabi.Bytes(buf), uint32(len(buf)), hostabi.Ptr(&nw)); st == 0 {
		hdrs = append(hdrs, header{"X-Vary", string(buf[:nw])})
	}
	var fr, fb uint32
	if st := hostabi.HcFoundResponse(h, 1, hostabi.Ptr(&fr), hostabi.Ptr(&fb)); st != 0 {
		respond(500, hdrs, "get_found_response="+u32(st)+"\n")
		return
	}
	insertHeaders(fr, hdrs)
	hostabi.HcClose(h)
	hostabi.RespSendDownstream(fr, fb, 0)
}

func copyBody(dst, src uint32) {
	buf := make([]byte, 16<<10)
	for {
		var n, nw uint32
		if hostabi.BodyRead(src, hostabi.Bytes(buf), uint32(len(buf)), hostabi.Ptr(&n)) != 0 || n == 0 {
			break
		}
		hostabi.BodyWrite(dst, hostabi.Bytes(buf), n, 0, hostabi.Ptr(&nw))
	}
	hostabi.BodyClose(src)
}

// keyReport reports get_suggested_cache_key of the request.
func keyReport() {
	kb := make([]byte, 64)
	var nw uint32
	st := hostabi.HcSuggestedCacheKey(req, hostabi.Bytes(kb), 64, hostabi.Ptr(&nw))
	report.WriteString("key=" + u32(st) + "," + u32(nw) + "," + hex(kb[:nw]) + "\n")
	var r2 uint32
	hostabi.ReqNew(hostabi.Ptr(&r2))
	up, ul := hostabi.Str(uri)
	hostabi.ReqURISet(r2, up, ul)
	np, nl := hostabi.Str("Host")
	vp, vl := hostabi.Str("Example.COM")
	hostabi.ReqHeaderInsert(r2, np, nl, vp, vl)
	st = hostabi.HcSuggestedCacheKey(r2, hostabi.Bytes(kb), 64, hostabi.Ptr(&nw))
	report.WriteString("host key=" + u32(st) + "," + u32(nw) + "," + hex(kb[:nw]) + "\n")
	nw = 0
	line("short buffer", hostabi.HcSuggestedCacheKey(req, hostabi.Bytes(kb), 16, hostabi.Ptr(&nw)), nw)
	line("bad request", hostabi.HcSuggestedCacheKey(4242, hostabi.Bytes(kb), 64, hostabi.Ptr(&nw)))
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
	line("lookup bad request", hostabi.HcLookup(999, 0, hostabi.Ptr(&lo), hostabi.Ptr(&h)))
	line("lookup reserved bit", hostabi.HcLookup(req, 1, hostabi.Ptr(&lo), hostabi.Ptr(&h)))
	line("lookup unknown bit", hostabi.HcLookup(req, 1<<5, hostabi.Ptr(&lo), hostabi.Ptr(&h)))
	line("lookup options outside memory", hostabi.HcLookup(req, lookupOverrideKey, 0xFFFFFFF0, hostabi.Ptr(&h)))
	far := lookupOpts{key: 0xFFFFFF00, keyLen: 0x1000}
	line("lookup key outside memory", hostabi.HcLookup(req, lookupOverrideKey, hostabi.Ptr(&far), hostabi.Ptr(&h)))
	empty := lookupOpts{}
	line("lookup empty key", hostabi.HcLookup(req, lookupOverrideKey, hostabi.Ptr(&empty), hostabi.Ptr(&h)))
	line("lookup out outside memory", hostabi.HcTxLookup(req, 0, hostabi.Ptr(&lo), 0xFFFFFFFC))
	line("get_state bad handle", hostabi.HcState(12345, hostabi.Ptr(&state)))
	line("close bad handle", hostabi.HcClose(12345))
	line("get_hits bad handle", hostabi.HcHits(12345, hostabi.Ptr(&state)))

	k, kl := hostabi.Str("bad-key")
	ko := lookupOpts{key: k, keyLen: kl}
	line("lookup miss", hostabi.HcLookup(req, lookupOverrideKey, hostabi.Ptr(&ko), hostabi.Ptr(&h)))
	line("get_state", hostabi.HcState(h, hostabi.Ptr(&state)), state)
	var fr, fb, body, resp uint32
	var v64 uint64
	line("get_found_response of a miss", hostabi.HcFoundResponse(h, 0, hostabi.Ptr(&fr), hostabi.Ptr(&fb)))
	line("get_length of a miss", hostabi.HcLength(h, hostabi.Ptr(&v64)))
	hostabi.RespNew(hostabi.Ptr(&resp))
	w := writeOpts{maxAge: 60e9}
	line("transaction_insert without obligation", hostabi.HcTxInsert(h, resp, 0, hostabi.Ptr(&w), hostabi.Ptr(&body)))
	line("transaction_choose_stale without obligation", hostabi.HcTxChooseStale(h))
	line("close", hostabi.HcClose(h))
	line("close again", hostabi.HcClose(h))

	var t uint32
	line("transaction_lookup", hostabi.HcTxLookup(req, lookupOverrideKey, hostabi.Ptr(&ko), hostabi.Ptr(&t)))
	line("get_state tx", hostabi.HcState(t, hostabi.Ptr(&state)), state)
	line("transaction_insert unknown bit", hostabi.HcTxInsert(t, resp, 1<<9, hostabi.Ptr(&w), hostabi.Ptr(&body)))
	line("transaction_insert reserved bit", hostabi.HcTxInsert(t, resp, 1, hostabi.Ptr(&w), hostabi.Ptr(&body)))
	ws := make([]writeOpts, 2)
	line("transaction_insert misaligned options", hostabi.HcTxInsert(t, resp, 0, hostabi.Ptr(&ws[0])+4, hostabi.Ptr(&body)))
	line("transaction_insert options outside memory", hostabi.HcTxInsert(t, resp, 0, 0xFFFFFFF8, hostabi.Ptr(&body)))
	line("transaction_insert bad response", hostabi.HcTxInsert(t, 4242, 0, hostabi.Ptr(&w), hostabi.Ptr(&body)))
	line("transaction_update of nothing", hostabi.HcTxUpdate(t, resp, 0, hostabi.Ptr(&w)))
	var mo uint32
	var out writeOpts
	line("get_suggested_cache_options unknown bit", hostabi.HcSuggestedCacheOptions(t, resp, 1<<9, hostabi.Ptr(&w), hostabi.Ptr(&mo), hostabi.Ptr(&out)))
	line("get_suggested_cache_options bad response", hostabi.HcSuggestedCacheOptions(t, 4242, 0, hostabi.Ptr(&w), hostabi.Ptr(&mo), hostabi.Ptr(&out)))
	var action, r2 uint32
	line("prepare_response_for_storage bad response", hostabi.HcPrepare(t, 4242, hostabi.Ptr(&action), hostabi.Ptr(&r2)))
	line("transaction_abandon", hostabi.HcTxAbandon(t))
	line("transaction_insert after abandon", hostabi.HcTxInsert(t, resp, 0, hostabi.Ptr(&w), hostabi.Ptr(&body)))
	line("close tx", hostabi.HcClose(t))
}

func insertHeaders(r uint32, hdrs []header) {
	for _, h := range hdrs {
		np, nl := hostabi.Str(h.name)
		v := h.value
		if v == "" {
			v = "-"
		}
		vp, vl := hostabi.Str(v)
		hostabi.RespHeaderInsert(r, np, nl, vp, vl)
	}
}

func respond(status uint32, hdrs []header, text string) {
	var body, r, nw uint32
	hostabi.BodyNew(hostabi.Ptr(&body))
	if text != "" {
		tp, tl := hostabi.Str(text)
		hostabi.BodyWrite(body, tp, tl, 0, hostabi.Ptr(&nw))
	}
	hostabi.RespNew(hostabi.Ptr(&r))
	hostabi.RespStatusSet(r, status)
	insertHeaders(r, hdrs)
	hostabi.RespSendDownstream(r, body, 0)
}
