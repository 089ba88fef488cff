//go:build wasip1

// Command guesttests is a guest whose own Go tests run under
// `edgehost run` (go test -exec): one passes, one fails, one reads the
// manifest's config store through the ABI.
package main

import "unsafe"

//go:wasmimport fastly_config_store open
func configStoreOpen(name *byte, n uint32, h *uint32) uint32

//go:wasmimport fastly_config_store get
func configStoreGet(h uint32, key *byte, klen uint32, buf *byte, max uint32, nw *uint32) uint32

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
