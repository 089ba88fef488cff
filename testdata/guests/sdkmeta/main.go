//go:build wasip1

// Command sdkmeta is a guest shaped like one built with Fastly's Go SDK
// (raw hostcalls, no SDK): it serves many requests in one sandbox
// (next_request, next_request_wait) and for every request reads what the
// SDK's Request-from-downstream path, FastlyMeta, BotDetection and
// ResVPNProxyData read, failing the request on any status the SDK treats
// as an error. It answers with what it learnt, one "key=value" a line.
package main

import (
	"os"
	"strconv"
	"strings"
	"unsafe"
)

const (
	stOK     = 0
	stBuflen = 4
	stNone   = 10
)

//go:wasmimport fastly_abi init
func abiInit(v uint64) uint32

//go:wasmimport fastly_http_req body_downstream_get
func reqBodyDownstreamGet(req, body *uint32) uint32

//go:wasmimport fastly_http_req method_get
func reqMethodGet(h uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req uri_get
func reqURIGet(h uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req version_get
func reqVersionGet(h uint32, v *uint32) uint32

//go:wasmimport fastly_http_req header_names_get
func reqHeaderNamesGet(h uint32, buf *byte, n uint32, cursor uint32, ending *int64, nw *uint32) uint32

//go:wasmimport fastly_http_req header_values_get
func reqHeaderValuesGet(h uint32, name *byte, nlen uint32, buf *byte, n uint32, cursor uint32, ending *int64, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_ip_addr
func downstreamClientIPAddr(req uint32, addr *byte, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_server_ip_addr
func downstreamServerIPAddr(req uint32, addr *byte, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_request_id
func downstreamRequestID(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_h2_fingerprint
func downstreamH2Fingerprint(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_oh_fingerprint
func downstreamOHFingerprint(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_ddos_detected
func downstreamDDoSDetected(req uint32, out *uint32) uint32

//go:wasmimport fastly_http_downstream fastly_key_is_valid
func downstreamFastlyKeyIsValid(req uint32, out *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_compliance_region
func downstreamComplianceRegion(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_bot_analyzed
func downstreamBotAnalyzed(req uint32, out *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_resvpnproxy_is_anonymous
func downstreamResVPNIsAnonymous(req uint32, out *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_raw_client_certificate
func downstreamTLSRawClientCertificate(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_original_header_count
func downstreamOriginalHeaderCount(req uint32, out *uint32) uint32

//go:wasmimport fastly_http_downstream next_request
func nextRequest(mask uint32, opts *uint64, promise *uint32) uint32

//go:wasmimport fastly_http_downstream next_request_wait
func nextRequestWait(promise uint32, req, body *uint32) uint32

//go:wasmimport fastly_compute_runtime get_vcpu_ms
func getVCPUMs(out *uint64) uint32

//go:wasmimport fastly_http_resp new
func respNew(h *uint32) uint32

//go:wasmimport fastly_http_resp framing_headers_mode_set
func respFramingHeadersModeSet(h, mode uint32) uint32

//go:wasmimport fastly_http_resp status_set
func respStatusSet(h uint32, status uint32) uint32

//go:wasmimport fastly_http_resp header_values_set
func respHeaderValuesSet(h uint32, name *byte, nlen uint32, vals *byte, vlen uint32) uint32

//go:wasmimport fastly_http_resp send_downstream
func respSendDownstream(h, body uint32, streaming uint32) uint32

//go:wasmimport fastly_http_body new
func bodyNew(h *uint32) uint32

//go:wasmimport fastly_http_body write
func bodyWrite(h uint32, buf *byte, n uint32, end uint32, nw *uint32) uint32

//go:wasmimport fastly_http_body close
func bodyClose(h uint32) uint32

func ptr(s string) (*byte, uint32) {
	if s == "" {
		return nil, 0
	}
	return unsafe.StringData(s), uint32(len(s))
}

// check panics on a status the SDK treats as an error, as the SDK's serve
// does (the guest exits, the client gets a 500).
func check(what string, st uint32, allowNone bool) bool {
	if st == stOK {
		return true
	}
	if allowNone && st == stNone {
		return false
	}
	panic(what + ": status " + strconv.Itoa(int(st)))
}

// value reads a buffer value with an adaptive buffer (buflen retries).
func value(what string, allowNone bool, f func(buf *byte, n uint32, nw *uint32) uint32) string {
	buf := make([]byte, 4)
	for {
		var nw uint32
		st := f(&buf[0], uint32(len(buf)), &nw)
		if st == stBuflen {
			buf = make([]byte, nw)
			continue
		}
		if !check(what, st, allowNone) {
			return ""
		}
		return string(buf[:nw])
	}
}

// list pages through a multi-value getter.
func list(what string, f func(buf *byte, n uint32, cursor uint32, ending *int64, nw *uint32) uint32) []string {
	buf := make([]byte, 16)
	var out []string
	cursor := uint32(0)
	for {
		var ending int64
		var nw uint32
		st := f(&buf[0], uint32(len(buf)), cursor, &ending, &nw)
		if st == stBuflen {
			buf = make([]byte, nw)
			continue
		}
		check(what, st, false)
		for _, v := range strings.Split(string(buf[:nw]), "\x00") {
			if v != "" {
				out = append(out, v)
			}
		}
		if ending < 0 {
			return out
		}
		cursor = uint32(ending)
	}
}

func flag(what string, f func(out *uint32) uint32) bool {
	var v struct {
		b uint32
		_ uint32
	}
	check(what, f(&v.b), false)
	return v.b != 0
}

func ip(what string, f func(addr *byte, nw *uint32) uint32) string {
	var addr [16]byte
	var nw uint32
	check(what, f(&addr[0], &nw), false)
	var parts []string
	for _, b := range addr[:nw] {
		parts = append(parts, strconv.Itoa(int(b)))
	}
	return strings.Join(parts, ".")
}

var served int

func main() {
	check("init", abiInit(1), false)
	var req, body uint32
	check("body_downstream_get", reqBodyDownstreamGet(&req, &body), false)
	for {
		served++
		serve(req)
		opts := uint64(5000) // next_request_options.timeout_ms
		var promise uint32
		check("next_request", nextRequest(1<<1, &opts, &promise), false)
		if !check("next_request_wait", nextRequestWait(promise, &req, &body), true) {
			return // none: no request came within the wait
		}
	}
}

// serve reads the request and its metadata as the SDK does for every
// request, then answers.
func serve(req uint32) {
	var r strings.Builder
	put := func(k, v string) { r.WriteString(k + "=" + v + "\n") }

	// newClientRequest
	method := value("method", false, func(b *byte, n uint32, nw *uint32) uint32 { return reqMethodGet(req, b, n, nw) })
	uri := value("uri", false, func(b *byte, n uint32, nw *uint32) uint32 { return reqURIGet(req, b, n, nw) })
	var version uint32
	check("version", reqVersionGet(req, &version), false)
	names := list("header names", func(b *byte, n, c uint32, e *int64, nw *uint32) uint32 {
		return reqHeaderNamesGet(req, b, n, c, e, nw)
	})
	headers := 0
	for _, name := range names {
		np, nl := ptr(name)
		headers += len(list("header values", func(b *byte, n, c uint32, e *int64, nw *uint32) uint32 {
			return reqHeaderValuesGet(req, np, nl, b, n, c, e, nw)
		}))
	}
	client := ip("client ip", func(a *byte, nw *uint32) uint32 { return downstreamClientIPAddr(req, a, nw) })
	server := ip("server ip", func(a *byte, nw *uint32) uint32 { return downstreamServerIPAddr(req, a, nw) })

	// FastlyMeta
	id := value("request id", false, func(b *byte, n uint32, nw *uint32) uint32 { return downstreamRequestID(req, b, n, nw) })
	h2 := value("h2 fingerprint", true, func(b *byte, n uint32, nw *uint32) uint32 { return downstreamH2Fingerprint(req, b, n, nw) })
	oh := value("oh fingerprint", true, func(b *byte, n uint32, nw *uint32) uint32 { return downstreamOHFingerprint(req, b, n, nw) })
	ddos := flag("ddos detected", func(o *uint32) uint32 { return downstreamDDoSDetected(req, o) })
	key := flag("fastly key valid", func(o *uint32) uint32 { return downstreamFastlyKeyIsValid(req, o) })
	region := value("compliance region", false, func(b *byte, n uint32, nw *uint32) uint32 { return downstreamComplianceRegion(req, b, n, nw) })

	// BotDetection: nothing more to ask when the request was not analysed.
	analyzed := flag("bot analyzed", func(o *uint32) uint32 { return downstreamBotAnalyzed(req, o) })

	// ResVPNProxyData: none on the first call means the data set is off.
	var anon uint32
	vpn := check("resvpnproxy", downstreamResVPNIsAnonymous(req, &anon), true)

	// TLSClientCertificateInfo
	cert := value("client certificate", true, func(b *byte, n uint32, nw *uint32) uint32 {
		return downstreamTLSRawClientCertificate(req, b, n, nw)
	})
	var original uint32
	check("original header count", downstreamOriginalHeaderCount(req, &original), false)
	var vcpu uint64
	check("vcpu", getVCPUMs(&vcpu), false)

	path := uri
	if i := strings.Index(path, "://"); i >= 0 {
		path = path[i+3:]
		path = path[strings.IndexByte(path, '/'):]
	}
	put("served", strconv.Itoa(served))
	put("sandbox", os.Getenv("FASTLY_TRACE_ID"))
	put("request id", id)
	put("request", method+" "+path+" version "+strconv.Itoa(int(version)))
	put("headers", strconv.Itoa(headers)+" values, "+strconv.Itoa(int(original))+" original")
	put("client", client)
	put("server", server)
	put("h2", h2)
	put("oh", oh)
	put("ddos", strconv.FormatBool(ddos))
	put("fastly key valid", strconv.FormatBool(key))
	put("compliance region", region)
	put("bot analyzed", strconv.FormatBool(analyzed))
	put("vpn data", strconv.FormatBool(vpn))
	put("client certificate", strconv.Itoa(len(cert))+" bytes")

	// The response, as the SDK's ResponseWriter sends it.
	var resp, out uint32
	check("resp new", respNew(&resp), false)
	check("body new", bodyNew(&out), false)
	check("framing", respFramingHeadersModeSet(resp, 0), false)
	check("status", respStatusSet(resp, 200), false)
	k, kl := ptr("content-type")
	v, vl := ptr("text/plain\x00")
	check("header", respHeaderValuesSet(resp, k, kl, v, vl), false)
	check("send_downstream", respSendDownstream(resp, out, 1), false)
	text := r.String()
	tp, tl := ptr(text)
	var nw uint32
	check("write", bodyWrite(out, tp, tl, 0, &nw), false)
	check("close", bodyClose(out), false)
}
