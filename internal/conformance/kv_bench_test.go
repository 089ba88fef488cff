package conformance_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// BenchmarkKV measures KV operations from a guest (the kvsecret guest, a
// fresh sandbox per request, real loopback HTTP): each iteration is one
// request whose sandbox makes one lookup (lookup + lookup_wait_v2 of a
// 64-byte value) or one insert (insert + insert_wait of 64 bytes, a
// committed bbolt write), timed from the client's send to the answer's
// end. p50-ms and p99-ms are of those times; the parallel variants keep
// 32 requests (32 sandboxes) in flight and report req/s. baseline is the
// same guest answering 404 without a KV call: the sandbox and HTTP cost
// the KV figures include.
//
//	go test -run '^$' -bench BenchmarkKV -benchtime 2000x ./internal/conformance/
func BenchmarkKV(b *testing.B) {
	benchEngines(b, func(b *testing.B, name string) {
		eng, err := guesttest.NewEngine(name, engine.Config{CacheDir: compileCache})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { eng.Close(context.Background()) })
		h := serveKV(b, eng, b.TempDir(), "1")
		value := strings.Repeat("v", 64)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		send := func(b *testing.B, method, path string) time.Duration {
			start := time.Now()
			req, _ := http.NewRequest(method, h.url+path, strings.NewReader(value))
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if strings.HasPrefix(path, "/none") {
				if resp.StatusCode != 404 {
					b.Fatalf("%s: %d", path, resp.StatusCode)
				}
			} else if resp.StatusCode != 200 || resp.Header.Get("X-Kv-Error") != "1" {
				b.Fatalf("%s %s: %d kv_error=%s", method, path, resp.StatusCode, resp.Header.Get("X-Kv-Error"))
			}
			return time.Since(start)
		}
		send(b, "POST", "/kv/put?store=kvs&key=bench") // the key lookups read
		ops := []struct {
			name, method string
			path         func(i int64) string
		}{
			{"baseline", "GET", func(int64) string { return "/none" }},
			{"lookup", "GET", func(int64) string { return "/kv/get?store=kvs&key=bench" }},
			{"insert", "POST", func(i int64) string { return fmt.Sprintf("/kv/put?store=kvs&key=k%d", i%1000) }},
		}
		for _, op := range ops {
			b.Run(op.name, func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					lat = append(lat, send(b, op.method, op.path(int64(i))))
				}
				b.StopTimer()
				reportPercentiles(b, lat)
			})
			b.Run(op.name+"/parallel32", func(b *testing.B) {
				var n atomic.Int64
				var mu sync.Mutex
				lat := make([]time.Duration, 0, b.N)
				b.SetParallelism(32) // 32 × GOMAXPROCS goroutines; sem keeps 32 requests in flight
				sem := make(chan struct{}, 32)
				start := time.Now()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						sem <- struct{}{}
						d := send(b, op.method, op.path(n.Add(1)))
						<-sem
						mu.Lock()
						lat = append(lat, d)
						mu.Unlock()
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
				reportPercentiles(b, lat)
			})
		}
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
