package cache

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkHit is the cost of one hit on a 1 KiB object, from Do to the
// body read and closed.
func BenchmarkHit(b *testing.B) {
	c := New(Config{})
	o := newOrigin(b, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, strings.Repeat("x", 1024))
	})
	get(b, c, o, "s", "/", Override{})
	req, _ := http.NewRequest(http.MethodGet, o.URL+"/", nil)
	key := Key{Service: "s", Backend: "origin", URL: req.URL.String()}
	fetch := o.fetch()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Do(context.Background(), req, key, Override{}, fetch)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Cache") != "HIT" {
			b.Fatal("not a hit")
		}
	}
	if o.n.Load() != 1 {
		b.Fatalf("origin requests %d", o.n.Load())
	}
}

// BenchmarkStore stores one new 1 KiB object per iteration (a miss on a
// fetch that answers from memory, so no network cost) and reports the
// heap each stored object keeps, headers, keys and index included.
func BenchmarkStore(b *testing.B) {
	c := New(Config{MaxBytes: 8 << 30})
	body := strings.Repeat("x", 1024)
	fetch := func(_ context.Context, req *http.Request) (*http.Response, error) {
		h := http.Header{"Cache-Control": {"max-age=3600"}, "Content-Type": {"text/plain"},
			"Content-Length": {"1024"}, "Date": {"Tue, 01 Dec 2026 13:00:00 GMT"}, "Surrogate-Key": {"k1 k2"}}
		return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: 1024, Request: req}, nil
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://origin.test/object/%d", n), nil)
		n++
		resp, err := c.Do(context.Background(), req, Key{Service: "s", Backend: "origin", URL: req.URL.String()}, Override{}, fetch)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.StopTimer()
	c.store.CleanUp()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if s := c.Stats(); s.Stored != uint64(n) || s.Objects != n {
		b.Fatalf("stored %d, holding %d, of %d", s.Stored, s.Objects, n)
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-B/object")
	runtime.KeepAlive(c)
}

func TestMetrics(t *testing.T) {
	c := New(Config{MaxBytes: 1 << 20})
	o := newOrigin(t, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		io.WriteString(w, "hello")
	})
	get(t, c, o, "s", "/", Override{})
	get(t, c, o, "s", "/", Override{})
	get(t, c, o, "s", "/", Override{Pass: true})
	reg := prometheus.NewRegistry()
	reg.MustRegister(c.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		if m.Counter != nil {
			got[mf.GetName()] = m.Counter.GetValue()
		} else {
			got[mf.GetName()] = m.Gauge.GetValue()
		}
	}
	for name, want := range map[string]float64{
		"edgehost_cache_hits_total": 1, "edgehost_cache_misses_total": 1, "edgehost_cache_passes_total": 1,
		"edgehost_cache_stored_total": 1, "edgehost_cache_objects": 1, "edgehost_cache_max_bytes": 1 << 20,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if got["edgehost_cache_bytes"] < 5 {
		t.Errorf("edgehost_cache_bytes = %v", got["edgehost_cache_bytes"])
	}
}

// BenchmarkOrigin compares a miss (a new URL each time: fill, stream,
// store) with a pass, both through a loopback origin answering 1 KiB.
func BenchmarkOrigin(b *testing.B) {
	for _, mode := range []string{"pass", "miss"} {
		b.Run(mode, func(b *testing.B) {
			c := New(Config{MaxBytes: 1 << 30})
			o := newOrigin(b, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Cache-Control", "max-age=3600")
				io.WriteString(w, strings.Repeat("x", 1024))
			})
			fetch := o.fetch()
			ov := Override{Pass: mode == "pass"}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/%d", o.URL, n), nil)
				n++
				resp, err := c.Do(context.Background(), req, Key{Backend: "origin", URL: req.URL.String()}, ov, fetch)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
