//go:build wasip1

// Command tlsmeta is a guest on raw hostcalls that answers with what the
// host tells it about its downstream connection: the URI, the HTTP
// version, every downstream_tls_* getter and the HTTP/2 fingerprint, one
// "key=value" a line. Bytes are in hex; a getter answering none gives
// "<none>", any other status "<status N>".
package main

import (
	"encoding/hex"
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

//go:wasmimport fastly_http_req uri_get
func reqURIGet(h uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req version_get
func reqVersionGet(h uint32, v *uint32) uint32

//go:wasmimport fastly_http_req downstream_tls_protocol
func reqTLSProtocol(buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req downstream_tls_ja3_md5
func reqTLSJA3(out *byte, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_protocol
func tlsProtocol(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_cipher_openssl_name
func tlsCipher(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_client_servername
func tlsSNI(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_client_hello
func tlsClientHello(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_raw_client_certificate
func tlsClientCert(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_client_cert_verify_result
func tlsVerifyResult(req uint32, out *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_ja3_md5
func tlsJA3(req uint32, out *byte, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_tls_ja4
func tlsJA4(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_h2_fingerprint
func h2Fingerprint(req uint32, buf *byte, n uint32, nw *uint32) uint32

//go:wasmimport fastly_http_resp new
func respNew(h *uint32) uint32

//go:wasmimport fastly_http_resp status_set
func respStatusSet(h uint32, status uint32) uint32

//go:wasmimport fastly_http_resp send_downstream
func respSendDownstream(h, body uint32, streaming uint32) uint32

//go:wasmimport fastly_http_body new
func bodyNew(h *uint32) uint32

//go:wasmimport fastly_http_body write
func bodyWrite(h uint32, buf *byte, n uint32, end uint32, nw *uint32) uint32

//go:wasmimport fastly_http_body close
func bodyClose(h uint32) uint32

func statusText(st uint32) string {
	if st == stNone {
		return "<none>"
	}
	return "<status " + strconv.Itoa(int(st)) + ">"
}

// value reads a buffer getter with a buffer that starts small (buflen
// retries); bin gives the value in hex.
func value(bin bool, f func(buf *byte, n uint32, nw *uint32) uint32) string {
	buf := make([]byte, 2)
	for {
		var nw uint32
		st := f(&buf[0], uint32(len(buf)), &nw)
		if st == stBuflen {
			buf = make([]byte, nw)
			continue
		}
		if st != stOK {
			return statusText(st)
		}
		if bin {
			return hex.EncodeToString(buf[:nw])
		}
		return string(buf[:nw])
	}
}

func md5Value(f func(out *byte, nw *uint32) uint32) string {
	var b [16]byte
	var nw uint32
	if st := f(&b[0], &nw); st != stOK {
		return statusText(st)
	}
	return hex.EncodeToString(b[:nw])
}

func main() {
	if st := abiInit(1); st != stOK {
		panic("init")
	}
	var req, body uint32
	if st := reqBodyDownstreamGet(&req, &body); st != stOK {
		panic("body_downstream_get")
	}
	var r strings.Builder
	put := func(k, v string) { r.WriteString(k + "=" + v + "\n") }
	put("uri", value(false, func(b *byte, n uint32, nw *uint32) uint32 { return reqURIGet(req, b, n, nw) }))
	var version uint32
	if st := reqVersionGet(req, &version); st != stOK {
		panic("version_get")
	}
	put("version", strconv.Itoa(int(version)))
	put("protocol", value(false, func(b *byte, n uint32, nw *uint32) uint32 { return tlsProtocol(req, b, n, nw) }))
	put("req_protocol", value(false, func(b *byte, n uint32, nw *uint32) uint32 { return reqTLSProtocol(b, n, nw) }))
	put("cipher", value(false, func(b *byte, n uint32, nw *uint32) uint32 { return tlsCipher(req, b, n, nw) }))
	put("sni", value(false, func(b *byte, n uint32, nw *uint32) uint32 { return tlsSNI(req, b, n, nw) }))
	put("client_hello", value(true, func(b *byte, n uint32, nw *uint32) uint32 { return tlsClientHello(req, b, n, nw) }))
	put("client_cert", value(true, func(b *byte, n uint32, nw *uint32) uint32 { return tlsClientCert(req, b, n, nw) }))
	var vr uint32
	if st := tlsVerifyResult(req, &vr); st != stOK {
		put("verify", statusText(st))
	} else {
		put("verify", strconv.Itoa(int(vr)))
	}
	put("ja3", md5Value(func(o *byte, nw *uint32) uint32 { return tlsJA3(req, o, nw) }))
	put("req_ja3", md5Value(func(o *byte, nw *uint32) uint32 { return reqTLSJA3(o, nw) }))
	put("ja4", value(false, func(b *byte, n uint32, nw *uint32) uint32 { return tlsJA4(req, b, n, nw) }))
	put("h2", value(false, func(b *byte, n uint32, nw *uint32) uint32 { return h2Fingerprint(req, b, n, nw) }))

	os.Stdout.WriteString("tlsmeta served version " + strconv.Itoa(int(version)) + "\n")
	var resp, out uint32
	respNew(&resp)
	bodyNew(&out)
	respStatusSet(resp, 200)
	text := r.String()
	var nw uint32
	for len(text) > 0 {
		if st := bodyWrite(out, unsafe.StringData(text), uint32(len(text)), 0, &nw); st != stOK {
			panic("write")
		}
		text = text[nw:]
	}
	if st := respSendDownstream(resp, out, 0); st != stOK {
		panic("send_downstream")
	}
}
