//go:build wasip1

// Command fastlystyle is a test guest that calls the ABI the way Fastly's
// Go SDK does (raw hostcalls, send_async plus a pending_req_poll_v2 loop
// with 1 ms sleeps, streamed send_downstream), with no SDK at all. The
// request path picks the behaviour; see handle.
package main

import (
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

const noHandle = 0xFFFFFFFE

//go:wasmimport fastly_abi init
func abiInit(v uint64) uint32

//go:wasmimport fastly_http_req body_downstream_get
func reqBodyDownstreamGet(req, body *uint32) uint32

//go:wasmimport fastly_http_req method_get
func reqMethodGet(h uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req uri_get
func reqURIGet(h uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req header_names_get
func reqHeaderNamesGet(h uint32, buf *byte, n uint32, cursor uint32, ending *int64, nw *uint32) uint32

//go:wasmimport fastly_http_req header_value_get
func reqHeaderValueGet(h uint32, name *byte, nlen uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req send_async
func reqSendAsync(h, body uint32, backend *byte, blen uint32, pending *uint32) uint32

//go:wasmimport fastly_http_req pending_req_poll_v2
func reqPendingPollV2(p uint32, detail *[20]byte, done, resp, body *uint32) uint32

//go:wasmimport fastly_http_resp new
func respNew(h *uint32) uint32

//go:wasmimport fastly_http_resp status_set
func respStatusSet(h uint32, status uint32) uint32

//go:wasmimport fastly_http_resp header_append
func respHeaderAppend(h uint32, name *byte, nlen uint32, val *byte, vlen uint32) uint32

//go:wasmimport fastly_http_resp send_downstream
func respSendDownstream(h, body uint32, streaming uint32) uint32

//go:wasmimport fastly_http_body new
func bodyNew(h *uint32) uint32

//go:wasmimport fastly_http_body write
func bodyWrite(h uint32, buf *byte, n uint32, end uint32, nw *uint32) uint32

//go:wasmimport fastly_http_body read
func bodyRead(h uint32, buf *byte, n uint32, nr *uint32) uint32

//go:wasmimport fastly_http_body close
func bodyClose(h uint32) uint32

//go:wasmimport fastly_purge purge_surrogate_key
func purgeSurrogateKey(key *byte, klen uint32, mask uint32, opts *uint32) uint32

// get_addr_dest_ip is one of the functions edgehost links to a stub.
//
//go:wasmimport fastly_http_resp get_addr_dest_ip
func respGetAddrDestIP(h uint32, out *byte, nw *uint32) uint32

func ptr(s string) (*byte, uint32) {
	if s == "" {
		return nil, 0
	}
	return unsafe.StringData(s), uint32(len(s))
}

func getString(f func(buf *byte, n uint32, nw *uint32) uint32) string {
	buf := make([]byte, 8)
	for {
		var nw uint32
		st := f(&buf[0], uint32(len(buf)), &nw)
		if st == 4 { // buflen
			buf = make([]byte, nw)
			continue
		}
		if st != 0 {
			return ""
		}
		return string(buf[:nw])
	}
}

func main() {
	if st := abiInit(1); st != 0 {
		panic("init: " + strconv.Itoa(int(st)))
	}
	var req, body uint32
	if st := reqBodyDownstreamGet(&req, &body); st != 0 {
		panic("body_downstream_get")
	}
	method := getString(func(b *byte, n uint32, nw *uint32) uint32 { return reqMethodGet(req, b, n, nw) })
	uri := getString(func(b *byte, n uint32, nw *uint32) uint32 { return reqURIGet(req, b, n, nw) })
	path := uri
	if i := strings.Index(uri, "://"); i >= 0 {
		path = uri[i+3:]
		if j := strings.IndexByte(path, '/'); j >= 0 {
			path = path[j:]
		}
	}
	switch {
	case strings.HasPrefix(path, "/trap"):
		var m map[string]int
		m["x"] = 1 // nil map write: a Go panic, the guest exits 2
	case strings.HasPrefix(path, "/nilderef"):
		unreachable()
	case strings.HasPrefix(path, "/exit"):
		os.Exit(3)
	case strings.HasPrefix(path, "/none"):
		return
	case strings.HasPrefix(path, "/loop"):
		for {
		}
	case strings.HasPrefix(path, "/mem"):
		var keep [][]byte
		for {
			keep = append(keep, make([]byte, 16<<20))
		}
	case strings.HasPrefix(path, "/stub"):
		var ip [16]byte
		var nw uint32
		st := respGetAddrDestIP(1, &ip[0], &nw)
		respond(200, "stub status "+strconv.Itoa(int(st))+"\n")
	case strings.HasPrefix(path, "/purge"):
		var opts [3]uint32
		kp, kl := ptr("a-key")
		st := purgeSurrogateKey(kp, kl, 0, &opts[0])
		respond(200, "purge status "+strconv.Itoa(int(st))+"\n")
	case strings.HasPrefix(path, "/proxy"):
		proxy(req, body)
	default:
		names := headerNames(req)
		respond(200, "fastlystyle "+method+" "+path+"\nheaders: "+strings.Join(names, ",")+"\n")
	}
}

func unreachable() { var p *int; _ = *p }

func headerNames(req uint32) []string {
	var out []string
	buf := make([]byte, 16) // small on purpose: exercises the cursor
	cursor := uint32(0)
	for {
		var ending int64
		var nw uint32
		st := reqHeaderNamesGet(req, &buf[0], uint32(len(buf)), cursor, &ending, &nw)
		if st == 4 {
			buf = make([]byte, nw)
			continue
		}
		if st != 0 {
			return append(out, "error"+strconv.Itoa(int(st)))
		}
		for _, n := range strings.Split(string(buf[:nw]), "\x00") {
			if n != "" {
				out = append(out, n)
			}
		}
		if ending < 0 {
			return out
		}
		cursor = uint32(ending)
	}
}

func respond(status uint32, text string) {
	var resp, body uint32
	respNew(&resp)
	respStatusSet(resp, status)
	n, v := ptr("text/plain")
	k, kl := ptr("content-type")
	respHeaderAppend(resp, k, kl, n, v)
	bodyNew(&body)
	respSendDownstream(resp, body, 1)
	p, l := ptr(text)
	var nw uint32
	bodyWrite(body, p, l, 0, &nw)
	bodyClose(body)
}

func proxy(req, body uint32) {
	b, bl := ptr("origin")
	var pending uint32
	if st := reqSendAsync(req, body, b, bl, &pending); st != 0 {
		respond(502, "send_async status "+strconv.Itoa(int(st))+"\n")
		return
	}
	var detail [20]byte
	var done, resp, rbody uint32
	for {
		st := reqPendingPollV2(pending, &detail, &done, &resp, &rbody)
		if st != 0 {
			respond(502, "poll status "+strconv.Itoa(int(st))+" detail "+strconv.Itoa(int(detail[0]))+"\n")
			return
		}
		if done == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	k, kl := ptr("x-fastlystyle")
	v, vl := ptr("1")
	respHeaderAppend(resp, k, kl, v, vl)
	var out uint32
	bodyNew(&out)
	respSendDownstream(resp, out, 1)
	buf := make([]byte, 32<<10)
	for {
		var nr uint32
		if st := bodyRead(rbody, &buf[0], uint32(len(buf)), &nr); st != 0 || nr == 0 {
			break
		}
		var nw uint32
		bodyWrite(out, &buf[0], nr, 0, &nw)
	}
	bodyClose(rbody)
	bodyClose(out)
}
