//go:build wasip1

package guestsdk

import "unsafe"

// The raw hostcall bindings are generated from abi.Hostcalls into
// hostcalls_gen_wasip1.go (their native stand-ins into
// hostcalls_gen_native.go) by go generate in abi/; this file keeps what
// the Wasm build adds by hand.

// pin returns the linear-memory address of p for a pointer field of a
// struct handed to the host. Go's and TinyGo's collectors do not move
// objects, so the address stays valid while p is kept alive.
func pin(p unsafe.Pointer) uint32 { return uint32(uintptr(p)) }
