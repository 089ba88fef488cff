package conformance_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
)

// vcpuReport is one answer of testdata/guests/vcpumany: "served N vcpu V",
// then for /burn "burned V1 wall W" and for /sleep "slept V1 wall W".
type vcpuReport struct {
	served         int
	vcpu, after, w uint64 // get_vcpu_ms when the request came in and after its work; the work's wall-clock ms
}

func getVCPU(t *testing.T, url string) vcpuReport {
	t.Helper()
	resp, body := get(t, url)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %q", url, resp.StatusCode, body)
	}
	f := strings.Fields(body)
	num := func(i int) uint64 {
		if i >= len(f) {
			t.Fatalf("GET %s: short answer %q", url, body)
		}
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			t.Fatalf("GET %s: %q: %v", url, body, err)
		}
		return n
	}
	r := vcpuReport{served: int(num(1)), vcpu: num(3)}
	if len(f) > 4 {
		r.after, r.w = num(5), num(7)
	}
	return r
}

// TestVCPUReused: get_vcpu_ms of a reused sandbox
// (testdata/guests/vcpumany, a guestsdk.ServeMany guest) is that
// sandbox's CPU time, as abi/README.md (fastly_compute_runtime) has it:
// it adds up the CPU time of every request the sandbox served; while the
// guest computes it advances no faster than the wall clock (so it is one
// thread's, read on the thread the guest runs on, not the process's or
// another thread's); it stands still while the sandbox is parked between
// requests and while the guest sleeps. A second host with the same guest
// computes beside it all along, so other sandboxes' CPU time is there to
// be miscounted and the scheduler moves goroutines between threads.
func TestVCPUReused(t *testing.T) {
	const (
		burns   = 4
		burnMs  = 40
		parkFor = 300 * time.Millisecond
	)
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serve(t, eng, guests["vcpumany"], "", 30*time.Second)
		bg := serve(t, eng, guests["vcpumany"], "", 30*time.Second)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, bg.url+"/burn?ms=15", nil)
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
					}
				}
			}()
		}
		defer wg.Wait()
		defer stop()

		first := getVCPU(t, h.url+"/")
		if first.served != 1 {
			t.Fatalf("first request: served %d, want 1", first.served)
		}
		end := first.vcpu
		for i := range burns {
			time.Sleep(parkFor) // the sandbox is parked in next_request_wait
			r := getVCPU(t, fmt.Sprintf("%s/burn?ms=%d", h.url, burnMs))
			if r.served != i+2 {
				t.Fatalf("burn %d: served %d, want %d (one sandbox serving in turn)", i, r.served, i+2)
			}
			if r.vcpu < end {
				t.Errorf("burn %d: vcpu went back from %d ms (the end of the last request) to %d ms at this one's start: the parked sandbox's count was lost", i, end, r.vcpu)
			}
			if r.vcpu > end+uint64(parkFor.Milliseconds()/2) {
				t.Errorf("burn %d: vcpu rose from %d to %d ms while the sandbox was parked for %v", i, end, r.vcpu, parkFor)
			}
			if r.after < r.vcpu+burnMs {
				t.Errorf("burn %d: vcpu %d to %d ms, want %d ms more (the guest gave up after %d ms of wall-clock time)", i, r.vcpu, r.after, burnMs, r.w)
			}
			// One thread's CPU time runs no faster than the wall clock; the
			// counter's millisecond rounding gives 2 ms of slack, the
			// wall-clock reading's another.
			if r.after > r.vcpu+r.w+3 {
				t.Errorf("burn %d: vcpu rose %d ms in %d ms of wall-clock time: not the guest's thread's CPU time", i, r.after-r.vcpu, r.w)
			}
			t.Logf("burn %d: parked %d ms to %d ms, burned to %d ms in %d ms", i, end, r.vcpu, r.after, r.w)
			end = r.after
		}
		if end < first.vcpu+burns*burnMs {
			t.Errorf("vcpu after %d burns of %d ms: %d ms, from %d ms: the requests' CPU time does not add up", burns, burnMs, end, first.vcpu)
		}
		s := getVCPU(t, h.url+"/sleep?ms=300")
		if s.served != burns+2 || s.w < 300 {
			t.Fatalf("sleep: served %d, slept %d ms; want served %d, 300 ms", s.served, s.w, burns+2)
		}
		if s.after > s.vcpu+150 {
			t.Errorf("vcpu rose %d ms during a 300 ms sleep", s.after-s.vcpu)
		}
	})
}
