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
func reqPendingReqWait(pending, resp, rbody uint32) uint32

//go:wasmimport fastly_async_io select
func asyncSelect(handles, n, timeoutMs, readyIdx uint32) uint32

//go:wasmimport fastly_async_io is_ready
func asyncIsReady(h, ready uint32) uint32

// Not implemented by edgehost: bound to stubs returning unsupported.

//go:wasmimport fastly_geo lookup
func geoLookup(addr, alen, buf, n, nw uint32) uint32

//go:wasmimport fastly_kv_store open
func kvStoreOpen(name, nlen, out uint32) uint32

//go:wasmimport fastly_erl check_rate
func erlCheckRate(a, b, c, d, e, f, g, h, i uint32) uint32

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
	if len(os.Args) > 1 && os.Args[1] == "wasi" {
		wasi()
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
	set := func(f func(h, name, nlen, val, vlen uint32) uint32, k, v string) uint32 {
		kp, kl := sp(k)
		vp, vl := sp(v)
		return f(resp, kp, kl, vp, vl)
	}
	line("insert", set(respHeaderInsert, "x-out", "one"))
	line("append", set(respHeaderAppend, "x-out", "two"))
	line("append other", set(respHeaderAppend, "x-gone", "soon"))
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
	buf := make([]byte, 3)
	cursor := uint32(0)
	var out []string
	for {
		var ending int64
		var nw uint32
		st := reqHeaderValuesGet(req, np, nl, bp(buf), uint32(len(buf)), cursor, p(&ending), p(&nw))
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
		f := reqSendAsync
		if streaming {
			f = reqSendAsyncStreaming
		}
		if st := f(r, body, np, nl, p(&pending)); st != 0 {
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
	line("wait fast", reqPendingReqWait(fast, p(&resp), p(&rbody)))
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
	line("wait sink", reqPendingReqWait(sink, p(&resp), p(&rbody)))
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
	var nw, h uint32
	line("fastly_geo.lookup", geoLookup(0, 0, 0, 0, p(&nw)))
	np, nl := sp("kv")
	line("fastly_kv_store.open", kvStoreOpen(np, nl, p(&h)))
	line("fastly_erl.check_rate", erlCheckRate(1, 2, 3, 4, 5, 6, 7, 8, 9))
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
