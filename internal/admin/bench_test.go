package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// BenchmarkActivateJS is POST /v1/modules/{version}/activate of
// testdata/jsguests/hello.js (the 11.5 MB JS SDK hello), switching
// between two stored versions of it on loopback, on the engine
// EDGEHOST_TEST_ENGINE selects (wazero when unset):
//
//	go test -run '^$' -bench ActivateJS -benchtime 20x ./internal/admin/
//	EDGEHOST_TEST_ENGINE=wasmtime go test -run '^$' -bench ActivateJS -benchtime 20x ./internal/admin/
//
// kept_versions=1 switches to the module kept from when the version last
// served; kept_versions=0 loads it from the compiled-code cache each time,
// as edgehost did before kept versions. cpu-ns/op is the process's CPU
// time per activation (guesttest.ReportCPU), from-kept the share of
// activations that used a kept module. The first compile of the module, cold, takes seconds; it goes into the
// package's shared compiled-code cache.
func BenchmarkActivateJS(b *testing.B) {
	wasm := benchJS(b)
	for _, kept := range []int{1, 0} {
		b.Run("kept_versions="+strconv.Itoa(kept), func(b *testing.B) {
			h := benchHost(b, kept, wasm, 2)
			n, fromKept := 1, 0
			b.ResetTimer()
			stop := guesttest.ReportCPU(b)
			for b.Loop() {
				code, out := post(b, fmt.Sprintf("%s/v1/modules/%d/activate", h.adminURL, n), "application/wasm", nil)
				if code != http.StatusOK {
					b.Fatalf("activate %d: %d %v", n, code, out)
				}
				if out["from_kept"] == true {
					fromKept++
				}
				n = 3 - n
			}
			stop()
			b.ReportMetric(float64(fromKept)/float64(b.N), "from-kept")
			b.StopTimer()
			resp, err := http.Get(h.url + "/")
			if err != nil {
				b.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || len(body) == 0 {
				b.Fatalf("after the activations: %d %q", resp.StatusCode, body)
			}
		})
	}
}

// BenchmarkKeptMemoryJS is the memory kept versions cost: four versions
// of testdata/jsguests/hello.js deployed in turn with kept_versions=3
// (the active one and three kept) and 0 (the active one only); rss-MB is
// the process's resident memory after them (a collection and
// debug.FreeOSMemory first), so a kept version costs the difference over
// 3. Run each case in a process of its own, once:
//
//	go test -run '^$' -bench 'KeptMemoryJS/kept_versions=3$' -benchtime 1x ./internal/admin/
//	go test -run '^$' -bench 'KeptMemoryJS/kept_versions=0$' -benchtime 1x ./internal/admin/
func BenchmarkKeptMemoryJS(b *testing.B) {
	wasm := benchJS(b)
	for _, kept := range []int{3, 0} {
		b.Run("kept_versions="+strconv.Itoa(kept), func(b *testing.B) {
			for b.Loop() {
				h := benchHost(b, kept, wasm, 4)
				b.StopTimer()
				if open := len(h.eng.open()); open != kept+1 {
					b.Fatalf("%d modules open, want %d", open, kept+1)
				}
				if rss := settledMB(); rss > 0 {
					b.ReportMetric(rss, "rss-MB")
				}
				h.stop()
				b.StartTimer()
			}
		})
	}
}

// benchJS builds testdata/jsguests/hello.js, or skips.
func benchJS(b *testing.B) []byte {
	b.Helper()
	wasm, _, err := guesttest.BuildJS("hello")
	if err != nil {
		b.Skipf("testdata/jsguests/hello.js: %v", err)
	}
	return wasm
}

// benchHost starts a host keeping kept versions, deploys wasm deploys
// times (versions 1 to deploys, the last active) and waits until the
// replaced versions are kept or closed.
func benchHost(b *testing.B, kept int, wasm []byte, deploys int) *testHost {
	b.Helper()
	h, err := newHost(context.Background(), b.TempDir(), hostOpts{keep: kept + 1}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.stop)
	for range deploys {
		if code, out := post(b, h.adminURL+"/v1/modules", "application/wasm", wasm); code != http.StatusCreated {
			b.Fatalf("deploy: %d %v", code, out)
		}
	}
	want := min(kept, deploys-1) + 1
	for i := 0; len(h.eng.open()) != want; i++ {
		if i == 1000 {
			b.Fatalf("%d modules open after the deploys, want %d", len(h.eng.open()), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return h
}

// settledMB is the process's resident memory in MiB after a collection
// that returns what it can to the kernel; 0 when unknown.
func settledMB() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	return residentMB()
}

// residentMB is the process's VmRSS in MiB (Linux), 0 when unknown.
func residentMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
