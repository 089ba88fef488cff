//go:build wasip1

// Command guesttests is a guest whose own Go tests run under
// `edgehost run` (go test -exec): one passes, one fails, one reads the
// manifest's config store through the ABI, one reads the downstream
// request a command run gets, one its environment.
package main

import "unsafe"

//go:wasmimport fastly_config_store open
func configStoreOpen(name *byte, n uint32, h *uint32) uint32

//go:wasmimport fastly_config_store get
func configStoreGet(h uint32, key *byte, klen uint32, buf *byte, max uint32, nw *uint32) uint32

//go:wasmimport fastly_http_req body_downstream_get
func bodyDownstreamGet(req, body *uint32) uint32

//go:wasmimport fastly_http_req uri_get
func uriGet(h uint32, buf *byte, max uint32, nw *uint32) uint32

//go:wasmimport fastly_http_downstream downstream_client_ddos_detected
func ddosDetected(h uint32, out *uint32) uint32

// downstreamURI returns the URI of the downstream request and the status
// of the first call that failed.
func downstreamURI() (string, uint32) {
	var req, body uint32
	if st := bodyDownstreamGet(&req, &body); st != 0 {
		return "", st
	}
	var ddos uint32
	if st := ddosDetected(req, &ddos); st != 0 {
		return "", st
	}
	buf := make([]byte, 256)
	var nw uint32
	if st := uriGet(req, &buf[0], uint32(len(buf)), &nw); st != 0 {
		return "", st
	}
	return string(buf[:nw]), 0
}

// lookup reads key from config store store; ok is false on any status.
func lookup(store, key string) (string, bool) {
	var h uint32
	if configStoreOpen(unsafe.StringData(store), uint32(len(store)), &h) != 0 {
		return "", false
	}
	buf := make([]byte, 256)
	var nw uint32
	if configStoreGet(h, unsafe.StringData(key), uint32(len(key)), &buf[0], uint32(len(buf)), &nw) != 0 {
		return "", false
	}
	return string(buf[:nw]), true
}

func main() {}
