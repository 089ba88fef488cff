// Command rawhello is examples/hello written on the raw hostcalls of
// abi/README.md, with no SDK: the same answer (the method, the path and
// the User-Agent, as text/plain) from the same hostcalls guestsdk makes
// for it (the method, the URI, the header names and each name's values;
// a new response with its Content-Type, a body streamed after the head,
// the body closed), so that its cost beside examples/hello's is what
// guestsdk and the handler's Go code add to a request (README.md,
// Benchmarks). It builds with Go (GOOS=wasip1) and with TinyGo.
//
// The program serves one request and ends, so the getters' buffer and
// the response text live in package-level arrays: a fresh sandbox's data
// is zeroed, and nothing is allocated on the heap for them.
package main

import "unsafe"

//go:wasmimport fastly_abi init
func abiInit(version uint64) uint32

//go:wasmimport fastly_http_req body_downstream_get
func bodyDownstreamGet(reqOut, bodyOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req method_get
func methodGet(req uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req uri_get
func uriGet(req uint32, buf unsafe.Pointer, bufLen uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req header_names_get
func headerNamesGet(req uint32, buf unsafe.Pointer, bufLen, cursor uint32, endingCursorOut, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_req header_values_get
func headerValuesGet(req uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLen, cursor uint32, endingCursorOut, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_resp new
func respNew(respOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_resp header_append
func respHeaderAppend(resp uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32) uint32

//go:wasmimport fastly_http_resp send_downstream
func respSendDownstream(resp, body, streaming uint32) uint32

//go:wasmimport fastly_http_body new
func bodyNew(bodyOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_body write
func bodyWrite(body uint32, buf unsafe.Pointer, bufLen, end uint32, nwrittenOut unsafe.Pointer) uint32

//go:wasmimport fastly_http_body close
func bodyClose(body uint32) uint32

// The getters' buffer: the names at its start, each name's values after
// them. Larger blocks than it holds are not read (the hello needs one
// header: a longer block loses nothing but the User-Agent).
var buf [4096]byte

// The response body.
var out [1024]byte

func main() {
	var req, body, resp, rbody, nw, nwNames uint32
	var end int64
	if abiInit(1) != 0 || bodyDownstreamGet(unsafe.Pointer(&req), unsafe.Pointer(&body)) != 0 {
		return
	}
	o := append(out[:0], "hello from edgehost\nmethod: "...)
	if methodGet(req, unsafe.Pointer(&buf[0]), uint32(len(buf)), unsafe.Pointer(&nw)) == 0 {
		o = append(o, buf[:nw]...)
	}
	o = append(o, "\npath: "...)
	if uriGet(req, unsafe.Pointer(&buf[0]), uint32(len(buf)), unsafe.Pointer(&nw)) == 0 {
		o = append(o, path(buf[:nw])...)
	}
	o = append(o, "\nuser-agent: "...)
	// The names, NUL-terminated, then each name's values after them.
	if headerNamesGet(req, unsafe.Pointer(&buf[0]), uint32(len(buf)), 0, unsafe.Pointer(&end), unsafe.Pointer(&nwNames)) == 0 {
		names := buf[:nwNames]
		at := nwNames
		for len(names) > 0 {
			n := 0
			for n < len(names) && names[n] != 0 {
				n++
			}
			name := names[:n]
			if n < len(names) {
				names = names[n+1:]
			} else {
				names = nil
			}
			if headerValuesGet(req, unsafe.Pointer(&name[0]), uint32(len(name)), unsafe.Pointer(&buf[at]), uint32(len(buf))-at, 0, unsafe.Pointer(&end), unsafe.Pointer(&nw)) != 0 {
				continue
			}
			if string(name) == "user-agent" && nw > 0 {
				v := buf[at : at+nw-1] // the first value, without its NUL
				for i, c := range v {
					if c == 0 {
						v = v[:i]
						break
					}
				}
				o = append(o, v...)
			}
			at += nw
		}
	}
	o = append(o, '\n')

	const ctName, ctValue = "content-type", "text/plain; charset=utf-8"
	if respNew(unsafe.Pointer(&resp)) != 0 ||
		respHeaderAppend(resp, unsafe.Pointer(unsafe.StringData(ctName)), uint32(len(ctName)), unsafe.Pointer(unsafe.StringData(ctValue)), uint32(len(ctValue))) != 0 ||
		bodyNew(unsafe.Pointer(&rbody)) != 0 ||
		respSendDownstream(resp, rbody, 1) != 0 {
		return
	}
	for len(o) > 0 {
		if bodyWrite(rbody, unsafe.Pointer(&o[0]), uint32(len(o)), 0, unsafe.Pointer(&nw)) != 0 || nw == 0 {
			break
		}
		o = o[nw:]
	}
	bodyClose(rbody)
}

// path is the path of an absolute URI (http://host/path?query): what
// follows the authority, up to the query or fragment; "/" when empty.
func path(uri []byte) []byte {
	i := 0
	for s := 0; i < len(uri); i++ { // past "scheme://authority"
		if uri[i] == '/' {
			if s++; s == 3 {
				break
			}
		}
	}
	j := i
	for j < len(uri) && uri[j] != '?' && uri[j] != '#' {
		j++
	}
	if j == i {
		return []byte("/")
	}
	return uri[i:j]
}
