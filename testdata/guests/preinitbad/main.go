//go:build wasip1

// Command preinitbad is a pre-initialized guest (guestsdk/preinit)
// whose init function calls a hostcall, which the host does not give
// at deploy time: loading it must fail with an error naming
// fastly_http_req.new.
package main

import (
	_ "github.com/edgehost/edgehost/guestsdk/preinit"
)

//go:wasmimport fastly_http_req new
func reqNew(handle *uint32) uint32

var handle uint32

func init() { reqNew(&handle) }

func main() {}
