package server_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
)

// floodReport parses the flood guest's "WHAT n=COUNT status=STATUS" line.
func floodReport(t *testing.T, url string) (n int, st abi.Status, resp *http.Response) {
	t.Helper()
	resp, body := get(t, url)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %q", url, resp.StatusCode, body)
	}
	var what string
	var s int
	if _, err := fmt.Sscanf(body, "%s n=%d status=%d", &what, &n, &s); err != nil {
		t.Fatalf("GET %s: report %q: %v", url, body, err)
	}
	return n, abi.Status(s), resp
}

// floodRequests is how many requests each flood sends (20;
// EDGEHOST_TEST_FLOOD_N sets another count).
func floodRequests() int {
	if n, err := strconv.Atoi(os.Getenv("EDGEHOST_TEST_FLOOD_N")); err == nil && n > 0 {
		return n
	}
	return 20
}

// TestSandboxFloods: each per-sandbox resource a guest can grow stops at
// its bound with the status README.md's Limits table names, the host
// holds its memory (RSS logged before and after each flood) and goes on
// serving.
func TestSandboxFloods(t *testing.T) {
	const maxHeader = 64 << 10
	manifest := fmt.Sprintf("[edgehost]\nmax_header_bytes = %d\n[local_server.log_endpoints.flood]\n", maxHeader)
	h := startHost(t, guests["flood"], manifest, hostOpts{timeout: 30 * time.Second})
	field := len("x-trailer") + 1000 + 4
	var lastDuration time.Duration // of the request whose report is checked
	tests := []struct {
		name, path string
		want       abi.Status
		check      func(n int) error
	}{
		{"trailers", "/trailers?n=1000000", abi.LimitExceeded, func(n int) error {
			if n*field > maxHeader || (n+1)*field <= maxHeader {
				return fmt.Errorf("%d trailers of %d bytes passed; the cap is %d bytes", n, field, maxHeader)
			}
			return nil
		}},
		{"handles", "/handles?n=100000000", abi.LimitExceeded, func(n int) error {
			if n > hostcall.DefaultMaxHandles || n < hostcall.DefaultMaxHandles-16 {
				return fmt.Errorf("%d req.new passed; the cap is %d handles", n, hostcall.DefaultMaxHandles)
			}
			return nil
		}},
		{"header_append", "/headers?n=8000", abi.OK, func(n int) error {
			if n != 8000 {
				return fmt.Errorf("%d of 8000 appends passed", n)
			}
			return nil
		}},
		{"header_append past the cap", "/headers?n=1000000", abi.HTTPHeadTooLarge, func(n int) error {
			if f := len("x-h") + 1 + 4; n*f > maxHeader || (n+1)*f <= maxHeader {
				return fmt.Errorf("%d appends passed", n)
			}
			return nil
		}},
		{"log rate", "/log?n=100000&size=10000", abi.LimitExceeded, func(n int) error {
			// The burst, and what refilled while the request ran (long
			// under the race detector on a loaded machine).
			if n*10000 > hostcall.DefaultLogBytesPerSecond*(1+int(lastDuration/time.Second)+1) || n == 0 {
				return fmt.Errorf("%d records of 10000 bytes passed; the rate is %d bytes/s", n, hostcall.DefaultLogBytesPerSecond)
			}
			return nil
		}},
		{"log record size", "/log?n=1&size=100000", abi.LimitExceeded, func(n int) error {
			if n != 0 {
				return fmt.Errorf("a record of 100000 bytes passed")
			}
			return nil
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rss0, fd0 := rssKB(t), openFDs(t)
			logs0 := len(h.logs.String())
			start := time.Now()
			for range floodRequests() {
				began := time.Now()
				n, st, _ := floodReport(t, h.url+tc.path)
				lastDuration = time.Since(began)
				if st != tc.want {
					t.Fatalf("status %v after %d calls, want %v", st, n, tc.want)
				}
				if err := tc.check(n); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%d requests in %v: RSS %d MB before, %d MB after; fds %d before, %d after; host log grew %d KB",
				floodRequests(), time.Since(start).Round(time.Millisecond), rss0/1024, rssKB(t)/1024, fd0, openFDs(t), (len(h.logs.String())-logs0)/1024)
			if _, body := get(t, h.url+"/"); body != "flood\n" {
				t.Fatalf("after the flood: %q", body)
			}
		})
	}
}

// TestPoolFlood: requests that each register many dynamic backends of
// distinct settings (each its own origin pool) keep the host's pool count
// under its cap, a request that would hold more than the cap gets
// limitexceeded, and the pools are evicted once their sandboxes ended.
func TestPoolFlood(t *testing.T) {
	const maxPools = 300
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	h := startHost(t, guests["flood"], "", hostOpts{timeout: 30 * time.Second,
		pools: &pool.ManagerConfig{MaxPools: maxPools, PoolSweep: 200 * time.Millisecond}})
	rss0, fd0 := rssKB(t), openFDs(t)
	peak := 0
	for i := range floodRequests() {
		n, st, resp := floodReport(t, h.url+"/pools?n=200&port="+port)
		if st != 0 || n != 200 {
			t.Fatalf("request %d: %d backends registered, status %d (%s)", i, n, st, resp.Header.Get("X-Error"))
		}
		peak = max(peak, h.loader.Pools.Len())
		if peak > maxPools {
			t.Fatalf("request %d: %d pools, over the cap of %d", i, peak, maxPools)
		}
	}
	// One sandbox wanting more pools than the host may have.
	n, st, resp := floodReport(t, h.url+"/pools?n=1000&port="+port)
	if st == 0 || !strings.Contains(resp.Header.Get("X-Error"), "limitexceeded") || n > maxPools {
		t.Fatalf("a sandbox registering 1000 backends: %d passed, status %d, error %q", n, st, resp.Header.Get("X-Error"))
	}
	// Unused pools without connections go at the next sweep.
	deadline := time.Now().Add(10 * time.Second)
	for h.loader.Pools.Len() > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if left := h.loader.Pools.Len(); left > 0 {
		t.Fatalf("%d pools left after their sandboxes ended", left)
	}
	t.Logf("%d requests × 200 pools: at most %d pools at once (cap %d); RSS %d MB before, %d MB after; fds %d before, %d after",
		floodRequests(), peak, maxPools, rss0/1024, rssKB(t)/1024, fd0, openFDs(t))
}
