//go:build wasip1

// Command vcpumany is hellomany that reads its CPU time: a
// guestsdk.ServeMany guest importing fastly_compute_runtime.get_vcpu_ms,
// so that the host runs it with the thread CPU clock (see abi/README.md,
// fastly_compute_runtime). Every answer starts "served N vcpu V" (N
// requests served by this instance, V its get_vcpu_ms reading when the
// request came in). /burn?ms=N then computes until the counter advanced
// N ms (10 s of wall-clock time at most) and adds "burned V1 wall W":
// the reading after and the wall-clock milliseconds the burn took.
// /sleep?ms=N sleeps N ms and adds "slept V1 wall W".
package main

import (
	"context"
	"io"
	"strconv"
	"time"
	"unsafe"

	"github.com/edgehost/edgehost/guestsdk"
)

//go:wasmimport fastly_compute_runtime get_vcpu_ms
func getVCPUMs(out uint32) uint32

var served int

// vcpu reads get_vcpu_ms; a failed call reads as 1<<62, which no check
// passes.
func vcpu() uint64 {
	var v uint64
	if st := getVCPUMs(uint32(uintptr(unsafe.Pointer(&v)))); st != 0 {
		return 1 << 62
	}
	return v
}

func main() {
	guestsdk.ServeMany(guestsdk.HandlerFunc(handle), guestsdk.ServeManyOptions{NextTimeout: 5 * time.Second})
}

// x keeps the burn's arithmetic from being optimised away.
var x uint64 = 1

func handle(_ context.Context, w guestsdk.ResponseWriter, r *guestsdk.Request) {
	served++
	v0 := vcpu()
	out := "served " + strconv.Itoa(served) + " vcpu " + strconv.FormatUint(v0, 10)
	ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
	start := time.Now()
	switch r.URL.Path {
	case "/burn":
		deadline := start.Add(10 * time.Second)
		for vcpu() < v0+uint64(ms) && time.Now().Before(deadline) {
			for i := 0; i < 20000; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		out += " burned " + strconv.FormatUint(vcpu(), 10)
	case "/sleep":
		time.Sleep(time.Duration(ms) * time.Millisecond)
		out += " slept " + strconv.FormatUint(vcpu(), 10)
	}
	if r.URL.Path != "/" {
		out += " wall " + strconv.FormatInt(time.Since(start).Milliseconds(), 10)
	}
	if x == 0 {
		out += " x"
	}
	io.WriteString(w, out)
}
