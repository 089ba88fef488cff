//go:build wasip1

// Command gosdkcache makes the hostcalls of Fastly's Go SDK Request.Send
// built with its guest caching (the fsthttp_guest_cache tag), in the
// order and with the option masks that SDK uses, without the SDK: it
// checks that edgehost's HTTP cache API serves that SDK, and that the
// objects it stores are the readthrough cache's (README.md, "Caching").
//
// Every request is answered through a request to backend "origin" for
// the downstream request's URI (no headers):
//
//	X-Mode: send  a plain send (the readthrough cache); X-Cache is the host's;
//	              ?key=K sets K as the SDK does without guest caching
//	              (header fastly-xqd-cache-key, K in upper-case hex)
//	otherwise     the SDK's sequence: is_request_cacheable, transaction_lookup
//	              naming the backend (mask backend_name, plus override_key for
//	              ?key=K), get_state, get_found_response and the getters on a
//	              hit (X-Role: hit); with the obligation get_suggested_backend_request,
//	              the SDK's request options (cache_override_v2_set with no
//	              bits among them), send_async_v2, pending_req_wait_v2,
//	              prepare_response_for_storage, get_suggested_cache_options with
//	              every mask bit, then insert_and_stream_back (X-Role: inserter),
//	              update_and_return_fresh (updater), record_not_cacheable
//	              (recorder) or abandon (nostore) with the mask the SDK writes;
//	              neither found nor obliged: send_v3 (pass)
//
// X-Steps lists each hostcall's status in order, "name=status".
package main

import (
	"strconv"
	"strings"

	"github.com/edgehost/edgehost/testdata/guests/internal/hostabi"
)

// lookupOpts is the witx http_cache_lookup_options (16 bytes).
type lookupOpts struct{ key, keyLen, backend, backendLen uint32 }

// writeOpts is the witx http_cache_write_options (56 bytes, 8-aligned).
type writeOpts struct {
	maxAge        uint64
	vary, varyLen uint32
	initialAge    uint64
	swr           uint64
	sk, skLen     uint32
	length        uint64
	sie           uint64
}

// The Go SDK's mask bits.
const (
	lookupOverrideKey = 1 << 1
	lookupBackend     = 1 << 2

	writeReserved   = 1 << 0
	writeVary       = 1 << 1
	writeInitialAge = 1 << 2
	writeSWR        = 1 << 3
	writeSK         = 1 << 4
	writeLength     = 1 << 5
	writeSensitive  = 1 << 6
	writeSIE        = 1 << 7
	// fillConfigMask is every bit, as the SDK asks for suggestions.
	fillConfigMask = writeReserved | writeVary | writeInitialAge | writeSWR | writeSK | writeLength | writeSensitive | writeSIE

	stateMustInsert = 1 << 3
)

const backend = "origin"

type header struct{ name, value string }

var steps strings.Builder

// step records a hostcall's status and returns it.
func step(name string, st uint32) uint32 {
	if steps.Len() > 0 {
		steps.WriteString(" ")
	}
	steps.WriteString(name + "=" + u32(st))
	return st
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func main() {
	var req, reqBody, nw uint32
	hostabi.ReqBodyDownstreamGet(hostabi.Ptr(&req), hostabi.Ptr(&reqBody))
	buf := make([]byte, 4096)
	hostabi.ReqURIGet(req, hostabi.Bytes(buf), uint32(len(buf)), hostabi.Ptr(&nw))
	uri := string(buf[:nw])
	_, query, _ := strings.Cut(uri, "?")
	mode := ""
	np, nl := hostabi.Str("x-mode")
	if hostabi.ReqHeaderValueGet(req, np, nl, hostabi.Bytes(buf), uint32(len(buf)), hostabi.Ptr(&nw)) == 0 {
		mode = string(buf[:nw])
	}
	key := ""
	for _, kv := range strings.Split(query, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == "key" {
			key = v
		}
	}
	// The SDK's constructABIRequest and setABIRequestOptions.
	var r uint32
	hostabi.ReqNew(hostabi.Ptr(&r))
	mp, ml := hostabi.Str("GET")
	hostabi.ReqMethodSet(r, mp, ml)
	up, ul := hostabi.Str(uri)
	hostabi.ReqURISet(r, up, ul)
	requestOptions(r)
	if mode == "send" {
		if key != "" {
			// The SDK's OverrideKey without guest caching: the header
			// fastly-xqd-cache-key, the key in upper-case hex.
			np, nl := hostabi.Str("fastly-xqd-cache-key")
			v := strings.ToUpper(hexOf(key)) + "\x00"
			vp, vl := hostabi.Str(v)
			step("header_values_set", hostabi.ReqHeaderValuesSet(r, np, nl, vp, vl))
		}
		sendWithoutCaching(r, "send")
		return
	}
	sendWithGuestCache(r, key)
}

// sendWithoutCaching is the SDK's: send_v3 (through the readthrough
// cache unless the request passes), answered with role.
func sendWithoutCaching(r uint32, role string) {
	var body, resp, rbody uint32
	var detail [20]byte
	hostabi.BodyNew(hostabi.Ptr(&body))
	bep, bel := hostabi.Str(backend)
	if st := step("send_v3", hostabi.ReqSendV3(r, body, bep, bel, hostabi.Ptr(&detail[0]), hostabi.Ptr(&resp), hostabi.Ptr(&rbody))); st != 0 {
		respond(502, nil, "send failed: "+steps.String()+"\n")
		return
	}
	insertHeaders(resp, []header{{"X-Role", role}, {"X-Steps", steps.String()}})
	hostabi.RespSendDownstream(resp, rbody, 0)
}

// requestOptions sets what the SDK's setABIRequestOptions sets on every
// request it sends: no decompression, automatic framing, and its cache
// options as cache_override_v2_set (none: tag 0).
func requestOptions(r uint32) {
	hostabi.ReqAutoDecompress(r, 0)
	hostabi.ReqFramingMode(r, 0)
	step("cache_override_v2_set", hostabi.ReqCacheOverrideV2Set(r, 0, 0, 0, 0, 0))
}

// sendWithGuestCache is the SDK's Request.sendWithGuestCache.
func sendWithGuestCache(r uint32, key string) {
	var cacheable uint32
	// shouldUseGuestCaching, then sendWithGuestCache, each ask.
	step("is_request_cacheable", hostabi.HcIsRequestCacheable(r, hostabi.Ptr(&cacheable)))
	step("is_request_cacheable", hostabi.HcIsRequestCacheable(r, hostabi.Ptr(&cacheable)))
	var lo lookupOpts
	mask := uint32(lookupBackend)
	lo.backend, lo.backendLen = hostabi.Str(backend)
	if key != "" {
		mask |= lookupOverrideKey
		lo.key, lo.keyLen = hostabi.Str(key)
	}
	var h, state uint32
	if step("transaction_lookup", hostabi.HcTxLookup(r, mask, hostabi.Ptr(&lo), hostabi.Ptr(&h))) != 0 {
		respond(500, nil, steps.String()+"\n")
		return
	}
	step("get_state", hostabi.HcState(h, hostabi.Ptr(&state)))
	if resp, body, ok := foundResponse(h, 1, true); ok {
		hdrs := []header{{"X-Role", "hit"}, {"X-State", u32(state)}}
		if state&stateMustInsert != 0 {
			// Within stale-while-revalidate with the obligation: the SDK
			// revalidates in the background; here after answering.
			insertHeaders(resp, append(hdrs, header{"X-Steps", steps.String()}))
			hostabi.RespSendDownstream(resp, body, 0)
			if c, _, ok := candidate(h); ok {
				c.apply()
			}
			return
		}
		insertHeaders(resp, append(hdrs, header{"X-Steps", steps.String()}))
		step("close", hostabi.HcClose(h))
		hostabi.RespSendDownstream(resp, body, 0)
		return
	}
	if state&stateMustInsert == 0 {
		// Collapsing disabled (a not-cacheable record): the SDK sends the
		// original request without the cache.
		step("close", hostabi.HcClose(h))
		sendWithoutCaching(r, "pass")
		return
	}
	c, hdrs, ok := candidate(h)
	if !ok {
		respond(502, hdrs, steps.String()+"\n")
		return
	}
	resp, body, role := c.apply()
	insertHeaders(resp, append(hdrs, header{"X-Role", role}, header{"X-State", u32(state)}, header{"X-Steps", steps.String()}))
	hostabi.RespSendDownstream(resp, body, 0)
}

// foundResponse is the SDK's httpCacheGetFoundResponse: the found
// response, its hits when wasHit, and the options loadFromHandle reads.
func foundResponse(h, transform uint32, wasHit bool) (resp, body uint32, ok bool) {
	if st := step("get_found_response", hostabi.HcFoundResponse(h, transform, hostabi.Ptr(&resp), hostabi.Ptr(&body))); st != 0 {
		return 0, 0, false
	}
	var v64 uint64
	var v32, nw uint32
	if wasHit {
		step("get_hits", hostabi.HcHits(h, hostabi.Ptr(&v64)))
	}
	buf := make([]byte, 256)
	step("get_max_age_ns", hostabi.HcMaxAge(h, hostabi.Ptr(&v64)))
	step("get_vary_rule", hostabi.HcVaryRule(h, hostabi.Bytes(buf), uint32(len(buf)), hostabi.Ptr(&nw)))
	step("get_age_ns", hostabi.HcAge(h, hostabi.Ptr(&v64)))
	step("get_stale_while_revalidate_ns", hostabi.HcSWR(h, hostabi.Ptr(&v64)))
	step("get_surrogate_keys", hostabi.HcSurrogateKeys(h, hostabi.Bytes(buf), uint32(len(buf)), hostabi.Ptr(&nw)))
	step("get_length", hostabi.HcLength(h, hostabi.Ptr(&v64)))
	step("get_sensitive_data", hostabi.HcSensitive(h, hostabi.Ptr(&v32)))
	step("get_stale_if_error_ns", hostabi.HcSIE(h, hostabi.Ptr(&v64)))
	return resp, body, true
}

// candidateResponse is the SDK's CandidateResponse.
type candidateResponse struct {
	h, resp, body, action uint32
	opts                  writeOpts
	mask                  uint32
	vary, sk              []byte
}

// candidate is the SDK's sendAsyncForCaching and newCandidate: the
// suggested backend request sent, its response prepared, and the
// suggested options finalised as the SDK's finalizeOptions does.
func candidate(h uint32) (*candidateResponse, []header, bool) {
	var breq, bbody, pend, resp, rbody uint32
	if step("get_suggested_backend_request", hostabi.HcSuggestedBackendRequest(h, hostabi.Ptr(&breq))) != 0 {
		return nil, nil, false
	}
	requestOptions(breq)
	hostabi.BodyNew(hostabi.Ptr(&bbody))
	bep, bel := hostabi.Str(backend)
	if step("send_async_v2", hostabi.ReqSendAsyncV2(breq, bbody, bep, bel, 0, hostabi.Ptr(&pend))) != 0 {
		hostabi.HcTxAbandon(h)
		return nil, nil, false
	}
	var detail [20]byte
	if step("pending_req_wait_v2", hostabi.ReqPendingWaitV2(pend, hostabi.Ptr(&detail[0]), hostabi.Ptr(&resp), hostabi.Ptr(&rbody))) != 0 {
		hostabi.HcTxAbandon(h)
		return nil, nil, false
	}
	c := &candidateResponse{h: h, body: rbody, vary: make([]byte, 1024), sk: make([]byte, 1024)}
	step("prepare_response_for_storage", hostabi.HcPrepare(h, resp, hostabi.Ptr(&c.action), hostabi.Ptr(&c.resp)))
	// The SDK's heuristic: a response with Set-Cookie is not stored.
	buf := make([]byte, 256)
	var nw uint32
	np, nl := hostabi.Str("set-cookie")
	if hostabi.RespHeaderValueGet(c.resp, np, nl, hostabi.Bytes(buf), uint32(len(buf)), hostabi.Ptr(&nw)) == 0 && nw > 0 && c.action != 2 {
		c.action = 3
	}
	in := writeOpts{vary: hostabi.Bytes(c.vary), varyLen: uint32(len(c.vary)), sk: hostabi.Bytes(c.sk), skLen: uint32(len(c.sk))}
	var out writeOpts
	var maskOut uint32
	step("get_suggested_cache_options", hostabi.HcSuggestedCacheOptions(h, c.resp, fillConfigMask, hostabi.Ptr(&in), hostabi.Ptr(&maskOut), hostabi.Ptr(&out)))
	var n uint64
	step("known_length", hostabi.BodyKnownLength(rbody, hostabi.Ptr(&n)))
	// flushToABI: max age, vary rule, initial age, swr, surrogate keys,
	// sensitive (cleared) and stale-if-error always; the length never.
	c.opts = writeOpts{maxAge: out.maxAge, vary: out.vary, varyLen: out.varyLen, initialAge: out.initialAge, swr: out.swr, sk: out.sk, skLen: out.skLen, sie: out.sie}
	c.mask = writeVary | writeInitialAge | writeSWR | writeSK | writeSIE
	hdrs := []header{
		{"X-Action", u32(c.action)},
		{"X-Sugg-Mask", u32(maskOut)},
		{"X-Sugg-Max-Age", strconv.FormatUint(out.maxAge/1e6, 10) + "ms"},
		{"X-Sugg-Sk", string(c.sk[:min(out.skLen, uint32(len(c.sk)))])},
	}
	return c, hdrs, true
}

// apply is the SDK's applyAndStreamBack: it returns the response to
// answer with and the role it played.
func (c *candidateResponse) apply() (resp, body uint32, role string) {
	switch c.action {
	case 0:
		var wb, rb uint32
		if step("transaction_insert_and_stream_back", hostabi.HcTxInsertStreamBack(c.h, c.resp, c.mask, hostabi.Ptr(&c.opts), hostabi.Ptr(&wb), hostabi.Ptr(&rb))) != 0 {
			return c.resp, c.body, "insert-failed"
		}
		step("append", hostabi.BodyAppend(wb, c.body))
		step("body_close", hostabi.BodyClose(wb))
		resp, body, ok := foundResponse(rb, 0, true)
		step("close", hostabi.HcClose(rb))
		if !ok {
			return c.resp, c.body, "readback-failed"
		}
		return resp, body, "inserter"
	case 1:
		var fresh uint32
		if step("transaction_update_and_return_fresh", hostabi.HcTxUpdateReturnFresh(c.h, c.resp, c.mask, hostabi.Ptr(&c.opts), hostabi.Ptr(&fresh))) != 0 {
			return c.resp, c.body, "update-failed"
		}
		resp, body, ok := foundResponse(fresh, 1, true)
		step("close", hostabi.HcClose(fresh))
		if !ok {
			return c.resp, c.body, "readback-failed"
		}
		return resp, body, "updater"
	case 3:
		step("transaction_record_not_cacheable", hostabi.HcTxRecordNotCacheable(c.h, c.mask, hostabi.Ptr(&c.opts)))
		return c.resp, c.body, "recorder"
	default:
		step("transaction_abandon", hostabi.HcTxAbandon(c.h))
		return c.resp, c.body, "nostore"
	}
}

func hexOf(s string) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(s))
	for i := 0; i < len(s); i++ {
		out = append(out, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(out)
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
