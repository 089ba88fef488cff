//go:build wasip1

// Command abiconf is the engine conformance guest: it calls hostcalls raw
// (no SDK), with pointers passed as plain i32 so it can also pass bad
// ones, and reports what the host returned. The request path picks the
// check; see main. Every report is plain text, one "check=result" per
// line, so that two engines can be compared byte for byte.
package main

import (
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

const noHandle = 0xFFFFFFFE

// Pointers are uint32 here: a test guest must be able to pass any value.

//go:wasmimport fastly_abi init
func abiInit(v uint64) uint32

//go:wasmimport fastly_http_req body_downstream_get
func reqBodyDownstreamGet(req, body uint32) uint32

//go:wasmimport fastly_http_req new
func reqNew(out uint32) uint32

//go:wasmimport fastly_http_req method_get
func reqMethodGet(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req uri_get
func reqURIGet(h, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req uri_set
func reqURISet(h, p, n uint32) uint32

//go:wasmimport fastly_http_req header_names_get
func reqHeaderNamesGet(h, buf, n, cursor, ending, nw uint32) uint32

//go:wasmimport fastly_http_req header_values_get
func reqHeaderValuesGet(h, name, nlen, buf, n, cursor, ending, nw uint32) uint32

//go:wasmimport fastly_http_req send
func reqSend(h, body, backend, blen, resp, rbody uint32) uint32

//go:wasmimport fastly_http_req register_dynamic_backend
func reqRegisterDynamicBackend(name, nlen, target, tlen, mask, cfg uint32) uint32

//go:wasmimport fastly_http_req downstream_client_ip_addr
func reqDownstreamClientIPAddr(addr, nw uint32) uint32

//go:wasmimport fastly_http_resp new
func respNew(out uint32) uint32

//go:wasmimport fastly_http_resp status_set
func respStatusSet(h, status uint32) uint32

//go:wasmimport fastly_http_resp status_get
func respStatusGet(h, out uint32) uint32

//go:wasmimport fastly_http_resp header_insert
func respHeaderInsert(h, name, nlen, val, vlen uint32) uint32

//go:wasmimport fastly_http_resp header_append
func respHeaderAppend(h, name, nlen, val, vlen uint32) uint32

//go:wasmimport fastly_http_resp header_remove
func respHeaderRemove(h, name, nlen uint32) uint32

//go:wasmimport fastly_http_resp header_value_get
func respHeaderValueGet(h, name, nlen, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_resp send_downstream
func respSendDownstream(h, body, streaming uint32) uint32

//go:wasmimport fastly_http_body new
func bodyNew(out uint32) uint32

//go:wasmimport fastly_http_body write
func bodyWrite(h, buf, n, end, nw uint32) uint32

//go:wasmimport fastly_http_body read
func bodyRead(h, buf, n, nr uint32) uint32

//go:wasmimport fastly_http_body append
func bodyAppend(dst, src uint32) uint32

//go:wasmimport fastly_http_body close
func bodyClose(h uint32) uint32

//go:wasmimport fastly_log endpoint_get
func logEndpointGet(name, nlen, out uint32) uint32

//go:wasmimport fastly_log write
func logWrite(h, msg, mlen, nw uint32) uint32

//go:wasmimport fastly_config_store open
func configStoreOpen(name, nlen, out uint32) uint32

//go:wasmimport fastly_config_store get
func configStoreGet(h, key, klen, buf, n, nw uint32) uint32

//go:wasmimport fastly_dictionary open
func dictionaryOpen(name, nlen, out uint32) uint32

//go:wasmimport fastly_backend exists
func backendExists(name, nlen, out uint32) uint32

//go:wasmimport fastly_backend is_dynamic
func backendIsDynamic(name, nlen, out uint32) uint32

//go:wasmimport fastly_backend get_port
func backendGetPort(name, nlen, out uint32) uint32

//go:wasmimport fastly_http_req send_async
func reqSendAsync(h, body, backend, blen, pending uint32) uint32

//go:wasmimport fastly_http_req send_async_streaming
func reqSendAsyncStreaming(h, body, backend, blen, pending uint32) uint32

//go:wasmimport fastly_http_req pending_req_wait
func reqPendingWait(p, resp, body uint32) uint32

//go:wasmimport fastly_http_req framing_headers_mode_set
func reqFramingHeadersModeSet(h, mode uint32) uint32

//go:wasmimport fastly_http_req header_insert
func reqHeaderInsert(h, name, nlen, val, vlen uint32) uint32

//go:wasmimport fastly_http_resp framing_headers_mode_set
func respFramingHeadersModeSet(h, mode uint32) uint32

//go:wasmimport fastly_backend is_healthy
func backendIsHealthy(name, nlen, out uint32) uint32

// The per-request metadata calls, both forms, as Fastly's Go SDK makes
// them (the handle form first).

//go:wasmimport fastly_http_downstream downstream_client_ip_addr
func dnClientIPAddr(req, addr, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_server_ip_addr
func dnServerIPAddr(req, addr, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_request_id
func dnRequestID(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_h2_fingerprint
func dnH2Fingerprint(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_oh_fingerprint
func dnOHFingerprint(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_ddos_detected
func dnDDoSDetected(req, out uint32) uint32

//go:wasmimport fastly_http_downstream fastly_key_is_valid
func dnFastlyKeyIsValid(req, out uint32) uint32

//go:wasmimport fastly_http_downstream downstream_compliance_region
func dnComplianceRegion(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_ja4
func dnTLSJA4(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_client_servername
func dnTLSServername(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_original_header_names
func dnOriginalHeaderNames(req, buf, n, cursor, ending, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_original_header_count
func dnOriginalHeaderCount(req, out uint32) uint32

//go:wasmimport fastly_http_downstream downstream_bot_analyzed
func dnBotAnalyzed(req, out uint32) uint32

//go:wasmimport fastly_http_downstream downstream_bot_detected
func dnBotDetected(req, out uint32) uint32

//go:wasmimport fastly_http_downstream downstream_bot_name
func dnBotName(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_downstream downstream_bot_category_kind
func dnBotCategoryKind(req, out uint32) uint32

//go:wasmimport fastly_http_downstream downstream_bot_verified
func dnBotVerified(req, out uint32) uint32

//go:wasmimport fastly_http_downstream downstream_resvpnproxy_is_anonymous
func dnResVPNIsAnonymous(req, out uint32) uint32

//go:wasmimport fastly_http_downstream downstream_resvpnproxy_vpn_service_name
func dnResVPNServiceName(req, buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req downstream_client_request_id
func reqDownstreamRequestID(buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req downstream_client_h2_fingerprint
func reqH2Fingerprint(buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req downstream_client_ddos_detected
func reqDDoSDetected(out uint32) uint32

//go:wasmimport fastly_http_req fastly_key_is_valid
func reqFastlyKeyIsValid(out uint32) uint32

//go:wasmimport fastly_http_req downstream_compliance_region
func reqComplianceRegion(buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req downstream_tls_ja4
func reqTLSJA4(buf, n, nw uint32) uint32

//go:wasmimport fastly_http_req original_header_count
func reqOriginalHeaderCount(out uint32) uint32

//go:wasmimport fastly_compute_runtime get_vcpu_ms
func runtimeVCPUMs(out uint32) uint32

//go:wasmimport fastly_compute_runtime get_heap_mib
func runtimeHeapMiB(out uint32) uint32

//go:wasmimport fastly_async_io select
func asyncSelect(handles, n, timeoutMs, readyIdx uint32) uint32

//go:wasmimport fastly_async_io is_ready
func asyncIsReady(h, ready uint32) uint32

//go:wasmimport fastly_purge purge_surrogate_key
func purgeSurrogateKey(key, klen, mask, opts uint32) uint32

// Not implemented by edgehost: bound to stubs returning unsupported.

//go:wasmimport fastly_object_store open
func objectStoreOpen(name, nlen, out uint32) uint32

//go:wasmimport fastly_http_req pending_req_header_remove
func pendingReqHeaderRemove(h, name, nlen, target uint32) uint32

func p[T any](v *T) uint32 { return uint32(uintptr(unsafe.Pointer(v))) }

func sp(s string) (uint32, uint32) {
	if s == "" {
		return 0, 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))), uint32(len(s))
}

func bp(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(&b[0]))) }

var (
	req, reqBody uint32
	report       strings.Builder
)

func line(name string, vals ...any) {
	report.WriteString(name)
	report.WriteString("=")
	for i, v := range vals {
		if i > 0 {
			report.WriteString(",")
		}
		switch v := v.(type) {
		case uint32:
			report.WriteString(strconv.FormatUint(uint64(v), 10))
		case int:
			report.WriteString(strconv.Itoa(v))
		case int64:
			report.WriteString(strconv.FormatInt(v, 10))
		case string:
			report.WriteString(v)
		}
	}
	report.WriteString("\n")
}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "wasi":
			wasi()
		case "env":
			// Command mode: the guest environment to stdout, as /env.
			os.Stdout.WriteString(envReport())
			return
		case "runreq":
			// Command mode: the downstream request edgehost run gives.
			runRequest()
			return
		}
	}
	line("abi.init", abiInit(1))
	if st := reqBodyDownstreamGet(p(&req), p(&reqBody)); st != 0 {
		os.Exit(10)
	}
	uri := getString(func(b, n, nw uint32) uint32 { return reqURIGet(req, b, n, nw) })
	path := uri
	if i := strings.Index(path, "://"); i >= 0 {
		path = path[i+3:]
		path = path[strings.IndexByte(path, '/'):]
	}
	path, query, _ := strings.Cut(path, "?")
	switch path {
	case "/status":
		statusPaths()
	case "/headers":
		headers()
	case "/echo":
		echo()
		return
	case "/dynamic":
		dynamic(query)
	case "/stubs":
		stubs()
	case "/purge":
		purge()
	case "/asyncio":
		asyncIO(query)
	case "/selectwait":
		selectWait(query)
		return
	case "/misc":
		misc()
	case "/spin":
		spin(query)
		return
	case "/sleep":
		sleep(query)
		return
	case "/stdio":
		os.Stdout.WriteString("abiconf stdout line\n")
		os.Stderr.WriteString("abiconf stderr line\n")
	case "/meta":
		meta()
	case "/earlyhints":
		earlyHints()
		return
	case "/framing":
		framingCheck(query)
		return
	case "/env":
		report.WriteString(envReport())
	case "/stores":
		stores()
	case "/runtime":
		runtimeCheck()
	case "/health":
		health()
	case "/prefix":
		prefix(query)
	default:
		respond(404, nil, "no such check "+path+"\n")
		return
	}
	respond(200, nil, report.String())
}

// wasi is the command mode (no hostcalls): stdin upper-cased to stdout,
// the argument count and $CONF_ENV to stderr, then exit with the code in
// the second argument.
func wasi() {
	in, _ := io.ReadAll(os.Stdin)
	os.Stdout.WriteString(strings.ToUpper(string(in)))
	os.Stderr.WriteString("args=" + strconv.Itoa(len(os.Args)) + " env=" + os.Getenv("CONF_ENV") + "\n")
	code, _ := strconv.Atoi(os.Args[2])
	os.Exit(code)
}

// getString reads a string with the buflen protocol, starting from a
// buffer too small on purpose.
func getString(f func(buf, n, nw uint32) uint32) string {
	buf := make([]byte, 4)
	for {
		var nw uint32
		st := f(bp(buf), uint32(len(buf)), p(&nw))
		if st == 4 {
			buf = make([]byte, nw)
			continue
		}
		if st != 0 {
			return "status " + strconv.Itoa(int(st))
		}
		return string(buf[:nw])
	}
}

func statusPaths() {
	var nw uint32
	buf := make([]byte, 64)
	line("bad request handle", reqMethodGet(12345, bp(buf), 64, p(&nw)))
	line("no handle", reqMethodGet(noHandle, bp(buf), 64, p(&nw)))
	line("body handle as request", reqMethodGet(reqBody, bp(buf), 64, p(&nw)))
	line("bad body handle", bodyWrite(777, bp(buf), 1, 0, p(&nw)))
	line("buffer out of bounds", reqMethodGet(req, 0xFFFFFFF0, 64, p(&nw)))
	line("nwritten out of bounds", reqMethodGet(req, bp(buf), 64, 0xFFFFFFFC))
	line("string out of bounds", reqURISet(req, 0xFFFFFF00, 0x200))
	nw = 0
	st := reqMethodGet(req, bp(buf), 1, p(&nw))
	line("buflen", st, nw)
	var h [2]uint32
	line("misaligned out-pointer", respNew(p(&h[0])+1))
	name, nlen := sp("no-such-store")
	line("config store missing", configStoreOpen(name, nlen, p(&h[0])))
	name, nlen = sp("stdout")
	line("log endpoint reserved", logEndpointGet(name, nlen, p(&h[0])))
}

// headers lists the request's headers with a 6-byte buffer (names and
// values come a few per call, cursors carry on), then builds a response
// with insert, append and remove and reads one back.
func headers() {
	buf := make([]byte, 6)
	cursor := uint32(0)
	var names []string
	calls := 0
	for {
		var ending int64
		var nw uint32
		calls++
		st := reqHeaderNamesGet(req, bp(buf), uint32(len(buf)), cursor, p(&ending), p(&nw))
		if st == 4 {
			line("names buflen", nw)
			buf = make([]byte, nw)
			continue
		}
		if st != 0 {
			line("names status", st)
			return
		}
		for _, n := range strings.Split(string(buf[:nw]), "\x00") {
			if n != "" {
				names = append(names, n)
			}
		}
		if ending < 0 {
			break
		}
		cursor = uint32(ending)
	}
	line("names calls>1", boolStr(calls > 1))
	for _, n := range names {
		if !strings.HasPrefix(n, "x-conf") {
			continue
		}
		line("header "+n, strings.Join(values(n), "|"))
	}
	var resp uint32
	respNew(p(&resp))
	set := func(insert bool, k, v string) uint32 {
		kp, kl := sp(k)
		vp, vl := sp(v)
		if insert { // imports are called, not passed as values (TinyGo)
			return respHeaderInsert(resp, kp, kl, vp, vl)
		}
		return respHeaderAppend(resp, kp, kl, vp, vl)
	}
	line("insert", set(true, "x-out", "one"))
	line("append", set(false, "x-out", "two"))
	line("append other", set(false, "x-gone", "soon"))
	kp, kl := sp("x-gone")
	line("remove", respHeaderRemove(resp, kp, kl))
	line("remove again", respHeaderRemove(resp, kp, kl))
	kp, kl = sp("x-out")
	v := getString(func(b, n, nw uint32) uint32 { return respHeaderValueGet(resp, kp, kl, b, n, nw) })
	line("value_get first", v)
	respond(200, &resp, report.String())
}

func values(name string) []string {
	np, nl := sp(name)
	return pages(3, func(buf, n, cursor, ending, nw uint32) uint32 {
		return reqHeaderValuesGet(req, np, nl, buf, n, cursor, ending, nw)
	})
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// echo streams the downstream body back: the response is sent (streaming)
// before the body is read, then copied through in 7000-byte reads.
func echo() {
	var resp, out uint32
	respNew(p(&resp))
	bodyNew(p(&out))
	if st := respSendDownstream(resp, out, 1); st != 0 {
		os.Exit(11)
	}
	buf := make([]byte, 7000)
	for {
		var nr uint32
		if st := bodyRead(reqBody, bp(buf), uint32(len(buf)), p(&nr)); st != 0 {
			os.Exit(12)
		}
		if nr == 0 {
			break
		}
		for off := uint32(0); off < nr; {
			var nw uint32
			if st := bodyWrite(out, bp(buf)+off, nr-off, 0, p(&nw)); st != 0 {
				os.Exit(13)
			}
			off += nw
		}
	}
	bodyClose(out)
}

// dynamic registers backend "dyn" for the target in the query, checks it
// through fastly_backend, sends the request's URI path /origin to it and
// appends the origin's body to the report.
func dynamic(target string) {
	np, nl := sp("dyn")
	tp, tl := sp(target)
	line("register", reqRegisterDynamicBackend(np, nl, tp, tl, 0, 0))
	line("register again", reqRegisterDynamicBackend(np, nl, tp, tl, 0, 0))
	line("reserved mask bit", reqRegisterDynamicBackend(np, nl, tp, tl, 1, 0))
	var v uint32
	line("exists", backendExists(np, nl, p(&v)), v)
	line("is_dynamic", backendIsDynamic(np, nl, p(&v)), v)
	line("get_port", backendGetPort(np, nl, p(&v)), v)
	mp, ml := sp("nope")
	line("exists nope", backendExists(mp, ml, p(&v)), v)

	var out, ob, resp, rbody uint32
	reqNew(p(&out))
	up, ul := sp("http://" + target + "/origin")
	reqURISet(out, up, ul)
	bodyNew(p(&ob))
	line("send", reqSend(out, ob, np, nl, p(&resp), p(&rbody)))
	var status uint16
	line("status_get", respStatusGet(resp, p(&status)), uint32(status))
	var got []byte
	buf := make([]byte, 5)
	for {
		var nr uint32
		if st := bodyRead(rbody, bp(buf), uint32(len(buf)), p(&nr)); st != 0 || nr == 0 {
			break
		}
		got = append(got, buf[:nr]...)
	}
	line("origin body", string(got))
	line("send consumed request", reqSend(out, ob, np, nl, p(&resp), p(&rbody)))
	reqNew(p(&out))
	reqURISet(out, up, ul)
	bodyNew(p(&ob))
	line("send unknown backend", reqSend(out, ob, mp, ml, p(&resp), p(&rbody)))
}

// asyncIO exercises fastly_async_io against the origin at target (a
// dynamic backend): /async/hold never answers, /async/fast does at once,
// /async/sink answers how many body bytes it read.
func asyncIO(target string) {
	np, nl := sp("async")
	tp, tl := sp(target)
	line("register", reqRegisterDynamicBackend(np, nl, tp, tl, 0, 0))
	send := func(path string, streaming bool) (pending, body uint32) {
		var r uint32
		reqNew(p(&r))
		up, ul := sp("http://" + target + path)
		reqURISet(r, up, ul)
		bodyNew(p(&body))
		// TinyGo takes no import as a value: call each directly.
		send := func() uint32 { return reqSendAsync(r, body, np, nl, p(&pending)) }
		if streaming {
			send = func() uint32 { return reqSendAsyncStreaming(r, body, np, nl, p(&pending)) }
		}
		if st := send(); st != 0 {
			line("send_async "+path, st)
		}
		return pending, body
	}
	// sel and ready answer "status" or "status,value".
	sel := func(timeout uint32, hs ...uint32) string {
		idx := uint32(12345)
		var st uint32
		if len(hs) == 0 {
			st = asyncSelect(0, 0, timeout, p(&idx))
		} else {
			st = asyncSelect(p(&hs[0]), uint32(len(hs)), timeout, p(&idx))
		}
		if st != 0 {
			return strconv.Itoa(int(st))
		}
		return "0," + strconv.FormatUint(uint64(idx), 10)
	}
	ready := func(h uint32) string {
		v := uint32(7)
		if st := asyncIsReady(h, p(&v)); st != 0 {
			return strconv.Itoa(int(st))
		}
		return "0," + strconv.FormatUint(uint64(v), 10)
	}

	line("select empty no timeout", sel(0))
	line("select empty 20ms", sel(20))
	hold, _ := send("/async/hold", false)
	fast, _ := send("/async/fast", false)
	line("select hold,fast", sel(0, hold, fast))
	line("is_ready fast", ready(fast))
	line("is_ready hold", ready(hold))
	line("select hold 30ms", sel(30, hold))

	var resp, rbody uint32
	line("wait fast", reqPendingWait(fast, p(&resp), p(&rbody)))
	line("select body", sel(0, rbody))
	line("body", readAll(rbody))
	line("is_ready body at end", ready(rbody))

	sink, out := send("/async/sink", true)
	line("is_ready streaming body", ready(out))
	line("select streaming body", sel(0, out))
	var nw uint32
	dp, dl := sp("twelve bytes")
	line("write streaming body", bodyWrite(out, dp, dl, 0, p(&nw)), nw)
	line("close streaming body", bodyClose(out))
	line("wait sink", reqPendingWait(sink, p(&resp), p(&rbody)))
	line("sink", readAll(rbody))

	line("is_ready bad handle", ready(12345))
	line("is_ready request handle", ready(req))
	line("select with a bad handle", sel(0, hold, 12345))
	hs := [2]uint32{hold, hold}
	idx := uint32(0)
	line("select misaligned list", asyncSelect(p(&hs[0])+1, 1, 0, p(&idx)))
	line("select list out of bounds", asyncSelect(0xFFFFFFF0, 8, 0, p(&idx)))
}

func readAll(h uint32) string {
	var got []byte
	buf := make([]byte, 5)
	for {
		var nr uint32
		if st := bodyRead(h, bp(buf), uint32(len(buf)), p(&nr)); st != 0 {
			return "status " + strconv.Itoa(int(st))
		}
		if nr == 0 {
			return string(got)
		}
		got = append(got, buf[:nr]...)
	}
}

// selectWait sends the query's path to the static backend "origin" and
// waits for it in fastly_async_io.select without a timeout, then reports
// select's status and index.
func selectWait(path string) {
	var r, b, pending, idx uint32
	reqNew(p(&r))
	up, ul := sp("http://origin.test" + path)
	reqURISet(r, up, ul)
	bodyNew(p(&b))
	np, nl := sp("origin")
	if st := reqSendAsync(r, b, np, nl, p(&pending)); st != 0 {
		respond(500, nil, "send_async="+strconv.Itoa(int(st))+"\n")
		return
	}
	st := asyncSelect(p(&pending), 1, 0, p(&idx))
	respond(200, nil, "select="+strconv.Itoa(int(st))+","+strconv.FormatUint(uint64(idx), 10)+"\n")
}

// spin makes n cheap hostcalls (fastly_http_resp.status_get), for timing
// one hostcall round trip, then responds.
func spin(query string) {
	n, _ := strconv.Atoi(query)
	var resp uint32
	respNew(p(&resp))
	var status uint16
	for i := 0; i < n; i++ {
		respStatusGet(resp, p(&status))
	}
	respond(200, &resp, strconv.Itoa(n)+" calls\n")
}

// sleep sleeps for the query's milliseconds with time.Sleep (WASI
// poll_oneoff on a relative monotonic clock) and reports how long the
// guest's own clock saw it take, in whole milliseconds.
func sleep(query string) {
	ms, _ := strconv.Atoi(query)
	start := time.Now()
	time.Sleep(time.Duration(ms) * time.Millisecond)
	respond(200, nil, "slept="+strconv.FormatInt(time.Since(start).Milliseconds(), 10)+"\n")
}

func stubs() {
	var h uint32
	np, nl := sp("kv")
	line("fastly_object_store.open", objectStoreOpen(np, nl, p(&h)))
	line("fastly_http_req.pending_req_header_remove", pendingReqHeaderRemove(1, np, nl, 0))
}

// purge calls fastly_purge.purge_surrogate_key (abi/README.md): hard,
// soft, with the reply buffer (ret_buf, too small then big enough), and
// with bad arguments.
func purge() {
	var nw uint32
	kp, kl := sp("a-key")
	line("purge hard", purgeSurrogateKey(kp, kl, 0, p(&nw)))
	line("purge soft", purgeSurrogateKey(kp, kl, 1, p(&nw)))
	var small [4]byte
	var big [128]byte
	opts := [3]uint32{p(&small[0]), uint32(len(small)), p(&nw)}
	line("purge ret_buf small", purgeSurrogateKey(kp, kl, 2, p(&opts[0])), nw)
	opts = [3]uint32{p(&big[0]), uint32(len(big)), p(&nw)}
	st := purgeSurrogateKey(kp, kl, 2, p(&opts[0]))
	line("purge ret_buf", st, string(big[:nw]))
	line("purge unknown bit", purgeSurrogateKey(kp, kl, 4, p(&nw)))
	ep, _ := sp("")
	line("purge empty key", purgeSurrogateKey(ep, 0, 0, p(&nw)))
	sp2, sl2 := sp("two keys")
	line("purge two keys", purgeSurrogateKey(sp2, sl2, 0, p(&nw)))
	long := make([]byte, 1025)
	for i := range long {
		long[i] = 'k'
	}
	line("purge long key", purgeSurrogateKey(p(&long[0]), uint32(len(long)), 0, p(&nw)))
	opts = [3]uint32{p(&big[0]), uint32(len(big)), p(&nw) + 1}
	line("purge misaligned nwritten", purgeSurrogateKey(kp, kl, 2, p(&opts[0])))
	line("purge options out of memory", purgeSurrogateKey(kp, kl, 2, 0xFFFFFFF0))
}

// misc covers the remaining families: logging, config store and
// dictionary, body append, the downstream client address.
func misc() {
	var h, nw uint32
	np, nl := sp("conf-log")
	line("log endpoint_get", logEndpointGet(np, nl, p(&h)))
	mp, ml := sp("abiconf log line")
	line("log write", logWrite(h, mp, ml, p(&nw)), nw)

	var cs uint32
	np, nl = sp("settings")
	line("config_store open", configStoreOpen(np, nl, p(&cs)))
	kp, kl := sp("greeting")
	line("config_store get", getString(func(b, n, nw uint32) uint32 { return configStoreGet(cs, kp, kl, b, n, nw) }))
	kp, kl = sp("missing")
	line("config_store get missing", getString(func(b, n, nw uint32) uint32 { return configStoreGet(cs, kp, kl, b, n, nw) }))
	var d uint32
	line("dictionary open", dictionaryOpen(np, nl, p(&d)))

	var a, b uint32
	bodyNew(p(&a))
	bodyNew(p(&b))
	ap, al := sp("left+")
	bodyWrite(a, ap, al, 0, p(&nw))
	ap, al = sp("right")
	bodyWrite(b, ap, al, 0, p(&nw))
	line("body append", bodyAppend(a, b))
	line("appended body closed", bodyClose(b))
	buf := make([]byte, 64)
	var got []byte
	for {
		var nr uint32
		if st := bodyRead(a, bp(buf), 64, p(&nr)); st != 0 || nr == 0 {
			break
		}
		got = append(got, buf[:nr]...)
	}
	line("body after append", string(got))

	var addr [16]byte
	line("client ip", reqDownstreamClientIPAddr(p(&addr[0]), p(&nw)), nw, ipString(addr[:nw]))
}

func ipString(b []byte) string {
	var parts []string
	for _, x := range b {
		parts = append(parts, strconv.Itoa(int(x)))
	}
	return strings.Join(parts, ".")
}

// respond sends status and text, on resp when given (headers already set).
func respond(status uint32, resp *uint32, text string) {
	var r, body uint32
	if resp != nil {
		r = *resp
	} else {
		respNew(p(&r))
	}
	respStatusSet(r, status)
	bodyNew(p(&body))
	if text != "" {
		tp, tl := sp(text)
		var nw uint32
		bodyWrite(body, tp, tl, 0, p(&nw))
	}
	respSendDownstream(r, body, 0)
}

// buf reads a buffer value with the buflen protocol, as "status,value".
func bufValue(f func(buf, n, nw uint32) uint32) string {
	buf := make([]byte, 2)
	var nw uint32
	st := f(bp(buf), uint32(len(buf)), p(&nw))
	if st == 4 {
		buf = make([]byte, nw)
		st = f(bp(buf), uint32(len(buf)), p(&nw))
	}
	if st != 0 {
		return strconv.Itoa(int(st))
	}
	return "0," + string(buf[:nw])
}

// u32Value calls a getter with a u32 out-pointer, as "status,value" (the
// value only on ok).
func u32Value(f func(out uint32) uint32) string {
	var v uint32 = 0xEEEE
	st := f(p(&v))
	if st != 0 {
		return strconv.Itoa(int(st))
	}
	return "0," + strconv.Itoa(int(v))
}

// meta makes every per-request metadata call an SDK makes, in both forms,
// and reports what came back (the request id by its length only: it
// differs per request).
func meta() {
	var addr [16]byte
	var nw uint32
	line("dn client ip", dnClientIPAddr(req, p(&addr[0]), p(&nw)), ipString(addr[:nw]))
	line("dn server ip", dnServerIPAddr(req, p(&addr[0]), p(&nw)), ipString(addr[:nw]))
	id := bufValue(func(b, n, nw uint32) uint32 { return dnRequestID(req, b, n, nw) })
	line("dn request id length", len(id)-2)
	id2 := bufValue(func(b, n, nw uint32) uint32 { return reqDownstreamRequestID(b, n, nw) })
	line("request id forms agree", boolStr(id == id2))
	line("dn h2 fingerprint", bufValue(func(b, n, nw uint32) uint32 { return dnH2Fingerprint(req, b, n, nw) }))
	line("dn oh fingerprint", bufValue(func(b, n, nw uint32) uint32 { return dnOHFingerprint(req, b, n, nw) }))
	line("dn ddos detected", u32Value(func(o uint32) uint32 { return dnDDoSDetected(req, o) }))
	line("dn fastly key valid", u32Value(func(o uint32) uint32 { return dnFastlyKeyIsValid(req, o) }))
	line("dn compliance region", bufValue(func(b, n, nw uint32) uint32 { return dnComplianceRegion(req, b, n, nw) }))
	line("dn ja4", bufValue(func(b, n, nw uint32) uint32 { return dnTLSJA4(req, b, n, nw) }))
	line("dn sni", bufValue(func(b, n, nw uint32) uint32 { return dnTLSServername(req, b, n, nw) }))
	line("dn original header count", u32Value(func(o uint32) uint32 { return dnOriginalHeaderCount(req, o) }))
	line("dn original header names", strings.Join(multi(func(b, n, c, e, nw uint32) uint32 { return dnOriginalHeaderNames(req, b, n, c, e, nw) }), "|"))
	line("dn bot analyzed", u32Value(func(o uint32) uint32 { return dnBotAnalyzed(req, o) }))
	line("dn bot detected", u32Value(func(o uint32) uint32 { return dnBotDetected(req, o) }))
	line("dn bot name", bufValue(func(b, n, nw uint32) uint32 { return dnBotName(req, b, n, nw) }))
	line("dn bot category kind", u32Value(func(o uint32) uint32 { return dnBotCategoryKind(req, o) }))
	line("dn bot verified", u32Value(func(o uint32) uint32 { return dnBotVerified(req, o) }))
	line("dn resvpnproxy anonymous", u32Value(func(o uint32) uint32 { return dnResVPNIsAnonymous(req, o) }))
	line("dn resvpnproxy service", bufValue(func(b, n, nw uint32) uint32 { return dnResVPNServiceName(req, b, n, nw) }))
	line("req h2 fingerprint", bufValue(func(b, n, nw uint32) uint32 { return reqH2Fingerprint(b, n, nw) }))
	line("req ddos detected", u32Value(func(o uint32) uint32 { return reqDDoSDetected(o) }))
	line("req fastly key valid", u32Value(func(o uint32) uint32 { return reqFastlyKeyIsValid(o) }))
	line("req compliance region", bufValue(func(b, n, nw uint32) uint32 { return reqComplianceRegion(b, n, nw) }))
	line("req ja4", bufValue(func(b, n, nw uint32) uint32 { return reqTLSJA4(b, n, nw) }))
	line("req original header count", u32Value(func(o uint32) uint32 { return reqOriginalHeaderCount(o) }))
	// The handle form with a request that is not the downstream one.
	var other uint32
	reqNew(p(&other))
	line("dn other request", u32Value(func(o uint32) uint32 { return dnDDoSDetected(other, o) }))
}

// multi pages through a cursor getter with a small buffer.
func multi(f func(buf, n, cursor, ending, nw uint32) uint32) []string { return pages(8, f) }

// pages pages through a cursor getter f, starting with a size-byte
// buffer and growing it when f answers buflen; a failing status ends the
// list with "status N".
func pages(size int, f func(buf, n, cursor, ending, nw uint32) uint32) []string {
	buf := make([]byte, size)
	cursor := uint32(0)
	var out []string
	for {
		var ending int64
		var nw uint32
		st := f(bp(buf), uint32(len(buf)), cursor, p(&ending), p(&nw))
		if st == 4 {
			buf = make([]byte, nw)
			continue
		}
		if st != 0 {
			return append(out, "status "+strconv.Itoa(int(st)))
		}
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

// earlyHints sends a 103 with a Link header, tries the other 1xx
// statuses, then sends the final response on the same handles, as
// Fastly's Go SDK does (WriteHeader(103), then WriteHeader(200)).
func earlyHints() {
	var resp, body uint32
	respNew(p(&resp))
	bodyNew(p(&body))
	set := func(k, v string) {
		kp, kl := sp(k)
		vp, vl := sp(v)
		respHeaderInsert(resp, kp, kl, vp, vl)
	}
	set("link", "</style.css>; rel=preload; as=style")
	respStatusSet(resp, 103)
	line("103 send", respSendDownstream(resp, body, 0))
	line("103 again", respSendDownstream(resp, body, 0))
	for _, st := range []uint32{100, 101, 102, 199} {
		respStatusSet(resp, st)
		line(strconv.Itoa(int(st))+" send", respSendDownstream(resp, body, 0))
	}
	kp, kl := sp("link")
	respHeaderRemove(resp, kp, kl)
	set("x-final", "yes")
	respStatusSet(resp, 200)
	text := report.String()
	tp, tl := sp(text)
	var nw uint32
	bodyWrite(body, tp, tl, 0, p(&nw))
	if st := respSendDownstream(resp, body, 0); st != 0 {
		os.Exit(20)
	}
}

// framingCheck sends a response or a backend request with manual framing
// headers; the query names the case.
func framingCheck(c string) {
	var resp, body, nw uint32
	respNew(p(&resp))
	bodyNew(p(&body))
	setResp := func(k, v string) {
		kp, kl := sp(k)
		vp, vl := sp(v)
		respHeaderInsert(resp, kp, kl, vp, vl)
	}
	write := func(b uint32, s string) {
		tp, tl := sp(s)
		bodyWrite(b, tp, tl, 0, p(&nw))
	}
	switch c {
	case "resp-cl-stream": // kept: Content-Length on a streamed response
		respFramingHeadersModeSet(resp, 1)
		setResp("content-length", "5")
		respSendDownstream(resp, body, 1)
		write(body, "hello")
		bodyClose(body)
	case "resp-chunked": // kept: chunked although the length is known
		respFramingHeadersModeSet(resp, 1)
		setResp("transfer-encoding", "chunked")
		write(body, "hello")
		respSendDownstream(resp, body, 0)
	case "resp-bad-te": // invalid: automatic framing
		respFramingHeadersModeSet(resp, 1)
		setResp("transfer-encoding", "gzip, chunked")
		write(body, "hello")
		respSendDownstream(resp, body, 0)
	case "resp-bad-cl": // invalid: automatic framing (chunked, streamed)
		respFramingHeadersModeSet(resp, 1)
		setResp("content-length", "5 ")
		respSendDownstream(resp, body, 1)
		write(body, "hello")
		bodyClose(body)
	case "resp-auto": // automatic: the guest's Content-Length is replaced
		setResp("content-length", "99")
		write(body, "hello")
		respSendDownstream(resp, body, 0)
	case "mode-bad":
		line("resp mode 2", respFramingHeadersModeSet(resp, 2))
		line("req mode 2", reqFramingHeadersModeSet(req, 2))
		respond(200, &resp, report.String())
	default: // req-*: a backend request to "origin" with framing headers
		var out, ob, pend, rresp, rbody uint32
		reqNew(p(&out))
		up, ul := sp("http://origin.test/framing")
		reqURISet(out, up, ul)
		hdr := func(k, v string) {
			kp, kl := sp(k)
			vp, vl := sp(v)
			reqHeaderInsert(out, kp, kl, vp, vl)
		}
		bodyNew(p(&ob))
		np, nl := sp("origin")
		// send sends with a buffered body (send) or streams it
		// (send_async_streaming), writing parts.
		send := func(streaming bool, parts ...string) {
			if !streaming {
				for _, part := range parts {
					write(ob, part)
				}
				line("send", reqSend(out, ob, np, nl, p(&rresp), p(&rbody)))
				return
			}
			line("send", reqSendAsyncStreaming(out, ob, np, nl, p(&pend)))
			for _, part := range parts {
				write(ob, part)
			}
			bodyClose(ob)
			line("wait", reqPendingWait(pend, p(&rresp), p(&rbody)))
		}
		switch c {
		case "req-cl-stream": // kept: Content-Length on a streamed body
			reqFramingHeadersModeSet(out, 1)
			hdr("content-length", "5")
			send(true, "hel", "lo")
		case "req-chunked": // kept: chunked although the length is known
			reqFramingHeadersModeSet(out, 1)
			hdr("transfer-encoding", "chunked")
			send(false, "hello")
		case "req-chunked-empty": // kept, with no body at all
			reqFramingHeadersModeSet(out, 1)
			hdr("transfer-encoding", "chunked")
			send(false)
		case "req-bad-cl": // invalid: automatic framing
			reqFramingHeadersModeSet(out, 1)
			hdr("content-length", "five")
			send(false, "hello")
		case "req-both": // invalid: automatic framing (streamed: chunked)
			reqFramingHeadersModeSet(out, 1)
			hdr("content-length", "5")
			hdr("transfer-encoding", "chunked")
			send(true, "hello")
		case "req-auto": // automatic: the guest's Transfer-Encoding is dropped
			hdr("transfer-encoding", "chunked")
			send(false, "hello")
		}
		line("origin saw", readBody(rbody))
		respond(200, nil, report.String())
	}
}

// readBody reads body b to its end; a failed read ends it (the report shows what arrived).
func readBody(b uint32) string {
	var got []byte
	buf := make([]byte, 64)
	for {
		var nr uint32
		if st := bodyRead(b, bp(buf), uint32(len(buf)), p(&nr)); st != 0 || nr == 0 {
			return string(got)
		}
		got = append(got, buf[:nr]...)
	}
}

// envReport lists the FASTLY_* variables, sorted, one per line; the trace
// id by whether it is set (it differs per sandbox).
func envReport() string {
	var lines []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "FASTLY_") {
			continue
		}
		if k == "FASTLY_TRACE_ID" {
			v = "set:" + boolStr(v != "")
		}
		lines = append(lines, k+"="+v)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

// runRequest reports the downstream request of a command run.
func runRequest() {
	var r, b uint32
	line("body_downstream_get", reqBodyDownstreamGet(p(&r), p(&b)))
	req = r
	line("method", getString(func(b, n, nw uint32) uint32 { return reqMethodGet(r, b, n, nw) }))
	line("uri", getString(func(b, n, nw uint32) uint32 { return reqURIGet(r, b, n, nw) }))
	var addr [16]byte
	var nw uint32
	line("client ip", dnClientIPAddr(r, p(&addr[0]), p(&nw)), ipString(addr[:nw]))
	line("server ip", dnServerIPAddr(r, p(&addr[0]), p(&nw)), ipString(addr[:nw]))
	line("body", readBody(b))
	id := bufValue(func(b, n, nw uint32) uint32 { return dnRequestID(r, b, n, nw) })
	line("request id is the trace id", boolStr(id == "0,"+os.Getenv("FASTLY_TRACE_ID")))
	line("ddos detected", u32Value(func(o uint32) uint32 { return dnDDoSDetected(r, o) }))
	var resp uint32
	respNew(p(&resp))
	line("send_downstream", respSendDownstream(resp, noHandle, 0))
	os.Stdout.WriteString(report.String())
}

// stores opens a dictionary through fastly_config_store and a config store
// through fastly_dictionary: one namespace.
func stores() {
	get := func(open func(name, nlen, out uint32) uint32, store, key string) string {
		var h uint32
		np, nl := sp(store)
		if st := open(np, nl, p(&h)); st != 0 {
			return "open " + strconv.Itoa(int(st))
		}
		kp, kl := sp(key)
		return getString(func(b, n, nw uint32) uint32 { return configStoreGet(h, kp, kl, b, n, nw) })
	}
	// TinyGo takes no import as a value: wrap each.
	csOpen := func(name, nlen, out uint32) uint32 { return configStoreOpen(name, nlen, out) }
	dOpen := func(name, nlen, out uint32) uint32 { return dictionaryOpen(name, nlen, out) }
	line("config_store open dictionary", get(csOpen, "legacy", "color"))
	line("dictionary open config store", get(dOpen, "settings", "greeting"))
	line("config_store open missing", get(csOpen, "nope", "x"))
}

// runtimeCheck: the vCPU counter advances while the guest computes and
// not while it sleeps; the heap counter follows memory growth.
func runtimeCheck() {
	vcpu := func() uint64 {
		var v uint64
		if st := runtimeVCPUMs(p(&v)); st != 0 {
			os.Exit(30)
		}
		return v
	}
	heap := func() uint32 {
		var v uint32
		if st := runtimeHeapMiB(p(&v)); st != 0 {
			os.Exit(31)
		}
		return v
	}
	start := vcpu()
	deadline := time.Now().Add(10 * time.Second)
	x := uint64(1)
	for vcpu() < start+20 && time.Now().Before(deadline) {
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	line("vcpu advanced 20ms", boolStr(vcpu() >= start+20), boolStr(x != 0))
	before := vcpu()
	time.Sleep(300 * time.Millisecond)
	line("vcpu during a 300ms sleep under 150ms", boolStr(vcpu()-before < 150))
	h0 := heap()
	keep := make([]byte, 16<<20)
	for i := range keep {
		keep[i] = byte(i)
	}
	h1 := heap()
	line("heap grew by 16 MiB", boolStr(h1 >= h0+16), boolStr(keep[len(keep)-1] == 255))
	line("heap under the sandbox cap", boolStr(h1 <= 128))
	var bad uint64
	line("vcpu misaligned", runtimeVCPUMs(p(&bad)+4))
}

// health asks is_healthy about backends with each health setting.
func health() {
	for _, name := range []string{"healthy", "sick", "plain", "nope"} {
		np, nl := sp(name)
		line("is_healthy "+name, u32Value(func(o uint32) uint32 { return backendIsHealthy(np, nl, o) }))
	}
}

// prefix sends the query as path to backend "prefixed", whose URL has a
// path, and reports the path the origin saw.
func prefix(pathAndQuery string) {
	var out, ob, resp, rbody uint32
	reqNew(p(&out))
	up, ul := sp("http://origin.test/" + pathAndQuery)
	reqURISet(out, up, ul)
	bodyNew(p(&ob))
	np, nl := sp("prefixed")
	line("send", reqSend(out, ob, np, nl, p(&resp), p(&rbody)))
	line("origin saw", readBody(rbody))
}
