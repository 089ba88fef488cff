//go:build wasip1

// Command badsig imports fastly_http_req.new with the wrong signature;
// loading it must fail with a message naming the import.
package main

//go:wasmimport fastly_http_req new
func reqNew(a, b uint32) uint32

func main() { reqNew(1, 2) }
