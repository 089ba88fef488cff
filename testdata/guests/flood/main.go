//go:build wasip1

// Command flood is a test guest that grows what a guest can grow, to test
// the host's bounds (README.md, "Limits"). The path picks the flood and
// the query its size; each answers 200 with a one-line report
// ("... n=COUNT status=STATUS") once a hostcall refused (STATUS is the
// first non-ok fastly_status, 0 when all n calls passed).
//
//	/big?mib=N          stream N MiB of response body
//	/upload             read the request body through, answer its length
//	/trailers?n=N       trailer_append on one new body, N times at most
//	/handles?n=N        fastly_http_req.new, N times at most
//	/headers?n=N        header_append on one new response, N times
//	/log?n=N&size=S     N records of S bytes to the log endpoint "flood"
//	/pools?n=N&port=P   N dynamic backends to 127.0.0.1:P, each with its own max_connections (so its own pool)
package main

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/edgehost/edgehost/guestsdk"
)

//go:wasmimport fastly_http_req new
func reqNew(h *uint32) uint32

//go:wasmimport fastly_http_req close
func reqClose(h uint32) uint32

//go:wasmimport fastly_http_resp new
func respNew(h *uint32) uint32

//go:wasmimport fastly_http_resp header_append
func respHeaderAppend(h uint32, name *byte, nlen uint32, val *byte, vlen uint32) uint32

//go:wasmimport fastly_http_body new
func bodyNew(h *uint32) uint32

//go:wasmimport fastly_http_body trailer_append
func bodyTrailerAppend(h uint32, name *byte, nlen uint32, val *byte, vlen uint32) uint32

//go:wasmimport fastly_log endpoint_get
func logEndpointGet(name *byte, nlen uint32, h *uint32) uint32

//go:wasmimport fastly_log write
func logWrite(h uint32, msg *byte, mlen uint32, nw *uint32) uint32

func ptr(s string) (*byte, uint32) { return unsafe.StringData(s), uint32(len(s)) }

func main() { guestsdk.Serve(guestsdk.HandlerFunc(handle)) }

func handle(ctx context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
	q := r.URL.Query()
	num := func(k string, def int) int {
		if n, err := strconv.Atoi(q.Get(k)); err == nil {
			return n
		}
		return def
	}
	n := num("n", 1000)
	report := func(what string, done int, st uint32) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, what+" n="+strconv.Itoa(done)+" status="+strconv.Itoa(int(st))+"\n")
	}
	switch r.URL.Path {
	case "/big":
		chunk := []byte(strings.Repeat("x", 64<<10))
		w.Header().Set("Content-Type", "application/octet-stream")
		for i := 0; i < num("mib", 64)*16; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case "/upload":
		got, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			w.WriteHeader(500)
			io.WriteString(w, "upload read failed after "+strconv.FormatInt(got, 10)+" bytes: "+err.Error()+"\n")
			return
		}
		io.WriteString(w, "upload "+strconv.FormatInt(got, 10)+"\n")
	case "/trailers":
		var b uint32
		bodyNew(&b)
		name, nl := ptr("x-trailer")
		v, vl := ptr(strings.Repeat("t", 1000))
		i, st := 0, uint32(0)
		for ; i < n; i++ {
			if st = bodyTrailerAppend(b, name, nl, v, vl); st != 0 {
				break
			}
		}
		report("trailers", i, st)
	case "/handles":
		i, st := 0, uint32(0)
		var made []uint32
		for ; i < n; i++ {
			var h uint32
			if st = reqNew(&h); st != 0 {
				break
			}
			made = append(made, h)
		}
		for _, h := range made { // room for the report's own handles
			reqClose(h)
		}
		report("handles", i, st)
	case "/headers":
		var resp uint32
		respNew(&resp)
		name, nl := ptr("x-h")
		v, vl := ptr("v")
		start := time.Now()
		i, st := 0, uint32(0)
		for ; i < n; i++ {
			if st = respHeaderAppend(resp, name, nl, v, vl); st != 0 {
				break
			}
		}
		w.Header().Set("X-Elapsed-Ms", strconv.FormatInt(time.Since(start).Milliseconds(), 10))
		report("headers", i, st)
	case "/log":
		var ep uint32
		name, nl := ptr("flood")
		if st := logEndpointGet(name, nl, &ep); st != 0 {
			report("log", 0, st)
			return
		}
		msg, ml := ptr(strings.Repeat("l", num("size", 1000)))
		i, st := 0, uint32(0)
		for ; i < n; i++ {
			var nw uint32
			if st = logWrite(ep, msg, ml, &nw); st != 0 {
				break
			}
		}
		report("log", i, st)
	case "/pools":
		target := "127.0.0.1:" + q.Get("port")
		i := 0
		var err error
		for ; i < n; i++ {
			_, err = guestsdk.RegisterDynamicBackend("b"+strconv.Itoa(i), target,
				guestsdk.BackendOptions{MaxConnections: i%100000 + 1})
			if err != nil {
				break
			}
		}
		st := uint32(0)
		if err != nil {
			st = 1
			w.Header().Set("X-Error", err.Error())
		}
		report("pools", i, st)
	default:
		io.WriteString(w, "flood\n")
	}
}
