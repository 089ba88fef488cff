//go:build wasip1

// Command services is a guest shaped like one built with Fastly's Go SDK
// (raw hostcalls, no SDK, TinyGo-safe): it calls the platform service
// hostcalls (ACLs, geolocation, device detection, edge rate limiting,
// shielding) the way the SDK's acl, geo, device, erl and shielding
// packages do, and answers with what it saw, one "key=value" a line.
//
// Paths: /acl?NAME&IPHEX, /geo?IPHEX (IPHEX empty: the client's address),
// /device (its User-Agent), /erl?ENTRY, /erl-bad, /shield?NAME,
// /shield-send?NAME, /bad.
package main

import (
	"encoding/hex"
	"strconv"
	"strings"
	"unsafe"
)

const (
	stOK     = 0
	stBuflen = 4
)

//go:wasmimport fastly_abi init
func abiInit(v uint64) uint32

//go:wasmimport fastly_http_req body_downstream_get
func reqBodyDownstreamGet(req, body *uint32) uint32

//go:wasmimport fastly_http_req uri_get
func reqURIGet(h uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req header_value_get
func reqHeaderValueGet(h uint32, name *byte, nlen uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req new
func reqNew(h *uint32) uint32

//go:wasmimport fastly_http_req uri_set
func reqURISet(h uint32, uri *byte, n uint32) uint32

//go:wasmimport fastly_http_req send
func reqSend(h, body uint32, backend *byte, blen uint32, resp, respBody *uint32) uint32

//go:wasmimport fastly_http_req downstream_client_ip_addr
func downstreamClientIPAddr(addr *byte, nw *uint32) uint32

//go:wasmimport fastly_http_resp new
func respNew(h *uint32) uint32

//go:wasmimport fastly_http_resp send_downstream
func respSendDownstream(h, body uint32, streaming uint32) uint32

//go:wasmimport fastly_http_body new
func bodyNew(h *uint32) uint32

//go:wasmimport fastly_http_body write
func bodyWrite(h uint32, buf *byte, n uint32, end uint32, nw *uint32) uint32

//go:wasmimport fastly_http_body read
func bodyRead(h uint32, buf *byte, n uint32, nr *uint32) uint32

//go:wasmimport fastly_acl open
func aclOpen(name *byte, n uint32, h *uint32) uint32

//go:wasmimport fastly_acl lookup
func aclLookup(h uint32, ip *byte, n uint32, body *uint32, aclErr *uint32) uint32

//go:wasmimport fastly_geo lookup
func geoLookup(ip *byte, n uint32, buf *byte, bufLen uint32, nw *uint32) uint32

//go:wasmimport fastly_device_detection lookup
func deviceLookup(ua *byte, n uint32, buf *byte, bufLen uint32, nw *uint32) uint32

//go:wasmimport fastly_erl check_rate
func erlCheckRate(rc *byte, rcLen uint32, entry *byte, entryLen uint32, delta, window, limit uint32, pb *byte, pbLen uint32, ttl uint32, blocked *uint32) uint32

//go:wasmimport fastly_erl ratecounter_increment
func erlIncrement(rc *byte, rcLen uint32, entry *byte, entryLen uint32, delta uint32) uint32

//go:wasmimport fastly_erl ratecounter_lookup_rate
func erlLookupRate(rc *byte, rcLen uint32, entry *byte, entryLen uint32, window uint32, rate *uint32) uint32

//go:wasmimport fastly_erl ratecounter_lookup_count
func erlLookupCount(rc *byte, rcLen uint32, entry *byte, entryLen uint32, duration uint32, count *uint32) uint32

//go:wasmimport fastly_erl penaltybox_add
func erlPenaltyBoxAdd(pb *byte, pbLen uint32, entry *byte, entryLen uint32, ttl uint32) uint32

//go:wasmimport fastly_erl penaltybox_has
func erlPenaltyBoxHas(pb *byte, pbLen uint32, entry *byte, entryLen uint32, has *uint32) uint32

//go:wasmimport fastly_shielding shield_info
func shieldInfo(name *byte, n uint32, buf *byte, bufLen uint32, nw *uint32) uint32

//go:wasmimport fastly_shielding backend_for_shield
func backendForShield(name *byte, n uint32, mask uint32, cfg *uint32, buf *byte, bufLen uint32, nw *uint32) uint32

// shieldConfig is the witx shield_backend_config record: cache key
// pointer and length, first-byte and between-bytes timeouts in ms.
type shieldConfig [4]uint32

func ptr(s string) (*byte, uint32) {
	if s == "" {
		return nil, 0
	}
	return unsafe.StringData(s), uint32(len(s))
}

func bptr(b []byte) (*byte, uint32) {
	if len(b) == 0 {
		return nil, 0
	}
	return &b[0], uint32(len(b))
}

// adaptive calls f with a small buffer first and grows it on buflen, as
// the SDK's withAdaptiveBuffer does; it returns the status and value.
func adaptive(f func(buf *byte, n uint32, nw *uint32) uint32) (uint32, string) {
	buf := make([]byte, 16)
	for {
		var nw uint32
		st := f(&buf[0], uint32(len(buf)), &nw)
		if st == stBuflen && nw > uint32(len(buf)) {
			buf = make([]byte, nw)
			continue
		}
		if st != stOK {
			return st, ""
		}
		return st, string(buf[:nw])
	}
}

func readAll(h uint32) string {
	var sb strings.Builder
	buf := make([]byte, 256)
	for {
		var n uint32
		if st := bodyRead(h, &buf[0], uint32(len(buf)), &n); st != stOK {
			sb.WriteString("<read status " + strconv.Itoa(int(st)) + ">")
			return sb.String()
		}
		if n == 0 {
			return sb.String()
		}
		sb.Write(buf[:n])
	}
}

var out strings.Builder

func report(k string, v ...any) {
	out.WriteString(k)
	out.WriteByte('=')
	for i, x := range v {
		if i > 0 {
			out.WriteByte(',')
		}
		switch x := x.(type) {
		case uint32:
			out.WriteString(strconv.Itoa(int(x)))
		case int:
			out.WriteString(strconv.Itoa(x))
		case string:
			out.WriteString(x)
		}
	}
	out.WriteByte('\n')
}

func main() {
	abiInit(1)
	var req, body uint32
	reqBodyDownstreamGet(&req, &body)
	_, uri := adaptive(func(b *byte, n uint32, nw *uint32) uint32 { return reqURIGet(req, b, n, nw) })
	path, query, _ := strings.Cut(uri[strings.Index(uri[len("http://"):], "/")+len("http://"):], "?")
	args := strings.Split(query, "&")
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	switch path {
	case "/acl":
		name := arg(0)
		np, nl := ptr(name)
		var h uint32
		st := aclOpen(np, nl, &h)
		report("open", st)
		if st != stOK {
			break
		}
		ip, _ := hex.DecodeString(arg(1))
		ipp, ipl := bptr(ip)
		b, aclErr := uint32(0xFFFFFFFE), uint32(0)
		st = aclLookup(h, ipp, ipl, &b, &aclErr)
		report("lookup", st, aclErr)
		if st == stOK && aclErr == 1 {
			report("body", readAll(b))
		}
	case "/geo":
		ip, _ := hex.DecodeString(arg(0))
		if len(ip) == 0 {
			ip = make([]byte, 16)
			var nw uint32
			report("client ip", downstreamClientIPAddr(&ip[0], &nw), nw)
			ip = ip[:nw]
		}
		ipp, ipl := bptr(ip)
		st, v := adaptive(func(b *byte, n uint32, nw *uint32) uint32 { return geoLookup(ipp, ipl, b, n, nw) })
		report("geo", st)
		report("json", v)
	case "/device":
		ua := header(req, "user-agent")
		up, ul := ptr(ua)
		st, v := adaptive(func(b *byte, n uint32, nw *uint32) uint32 { return deviceLookup(up, ul, b, n, nw) })
		report("device", st)
		report("json", v)
	case "/erl":
		// The SDK's RateLimiter.CheckRate with a Policy of 10 per second
		// over 1 s and a one-minute penalty box, then what the SDK's
		// RateCounter and PenaltyBox report.
		entry := arg(0)
		rc, rcl := ptr("requests")
		pb, pbl := ptr("offenders")
		ep, el := ptr(entry)
		var blocked, rate, count, has uint32
		report("check_rate", erlCheckRate(rc, rcl, ep, el, 1, 1, 10, pb, pbl, 60, &blocked), blocked)
		report("rate 1s", erlLookupRate(rc, rcl, ep, el, 1, &rate), rate)
		report("count 10s", erlLookupCount(rc, rcl, ep, el, 10, &count), count)
		report("penaltybox_has", erlPenaltyBoxHas(pb, pbl, ep, el, &has), has)
	case "/erl-bad":
		rc, rcl := ptr("requests")
		pb, pbl := ptr("offenders")
		ep, el := ptr("x")
		long, longl := ptr(strings.Repeat("n", 65))
		var v uint32
		report("window 2", erlCheckRate(rc, rcl, ep, el, 1, 2, 10, pb, pbl, 60, &v))
		report("limit 9", erlCheckRate(rc, rcl, ep, el, 1, 1, 9, pb, pbl, 60, &v))
		report("ttl 30s", erlPenaltyBoxAdd(pb, pbl, ep, el, 30))
		report("delta 1001", erlIncrement(rc, rcl, ep, el, 1001))
		report("name 65 bytes", erlIncrement(long, longl, ep, el, 1))
		report("duration 15", erlLookupCount(rc, rcl, ep, el, 15, &v))
		report("empty entry", erlIncrement(rc, rcl, nil, 0, 1))
		report("increment", erlIncrement(rc, rcl, ep, el, 1000))
		report("add 90s", erlPenaltyBoxAdd(pb, pbl, ep, el, 90))
		report("has", erlPenaltyBoxHas(pb, pbl, ep, el, &v), v)
	case "/shield", "/shield-send":
		name := arg(0)
		np, nl := ptr(name)
		st, info := adaptive(func(b *byte, n uint32, nw *uint32) uint32 { return shieldInfo(np, nl, b, n, nw) })
		report("shield_info", st)
		if st != stOK {
			break
		}
		// The SDK's layout: a "running on" byte, then the two targets,
		// each NUL-terminated.
		vals := strings.Split(info[1:], "\x00")
		report("running on", int(info[0]))
		report("targets", len(vals)-1, vals[0], vals[1])
		cfg := shieldConfig{}
		st, be := adaptive(func(b *byte, n uint32, nw *uint32) uint32 {
			return backendForShield(np, nl, 0, &cfg[0], b, n, nw)
		})
		report("backend_for_shield", st, be)
		if st != stOK || path != "/shield-send" {
			break
		}
		var r, rb, resp, respBody uint32
		reqNew(&r)
		up, ul := ptr("http://edge.test/from-the-edge")
		reqURISet(r, up, ul)
		bodyNew(&rb)
		bp, bl := ptr(be)
		report("send", reqSend(r, rb, bp, bl, &resp, &respBody))
		report("shield answered", readAll(respBody))
	case "/bad":
		var v uint32
		b := uint32(0)
		ip := []byte{127, 0, 0, 1, 9}
		report("acl lookup bad handle", aclLookup(12345, &ip[0], 4, &b, &v))
		var h uint32
		np, nl := ptr("blocklist")
		aclOpen(np, nl, &h)
		report("acl lookup 5 octets", aclLookup(h, &ip[0], 5, &b, &v))
		report("acl lookup 0 octets", aclLookup(h, nil, 0, &b, &v))
		mp, ml := ptr("missing")
		report("acl open missing", aclOpen(mp, ml, &h))
		buf := make([]byte, 64)
		var nw uint32
		report("geo 3 octets", geoLookup(&ip[0], 3, &buf[0], 64, &nw))
		report("geo unknown", geoLookup(&[]byte{203, 0, 113, 1}[0], 4, &buf[0], 64, &nw))
		bad := "\xff\xfe"
		bp, bl := ptr(bad)
		report("device not utf-8", deviceLookup(bp, bl, &buf[0], 64, &nw))
		report("shield unknown", shieldInfo(mp, ml, &buf[0], 64, &nw))
		report("shield reserved bit", backendForShield(np, nl, 1, &(&shieldConfig{})[0], &buf[0], 64, &nw))
	default:
		report("path", path)
	}
	var resp, rbody, nw uint32
	respNew(&resp)
	bodyNew(&rbody)
	s := out.String()
	sp, sl := ptr(s)
	bodyWrite(rbody, sp, sl, 0, &nw)
	respSendDownstream(resp, rbody, 0)
}

func header(req uint32, name string) string {
	np, nl := ptr(name)
	_, v := adaptive(func(b *byte, n uint32, nw *uint32) uint32 { return reqHeaderValueGet(req, np, nl, b, n, nw) })
	return v
}
