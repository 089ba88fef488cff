package admin_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestDeployUnderLoad runs a steady stream of proxied requests from
// several goroutines while 20 deploys and rollbacks switch between two
// guests that answer differently (examples/proxy adds X-Edgehost-Proxy,
// testdata/guests/fastlystyle adds X-Fastlystyle), both in packages whose
// backend is the same origin. No request may fail; every response must
// come from a guest that was active at some point during its request; and
// the origin must not see new connections at each deploy (one pool for
// the host, kept across versions).
func TestDeployUnderLoad(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin "+r.URL.Path)
	})
	h := startHost(t, t.TempDir(), hostOpts{})
	manifest := originManifest(origin.URL)
	pkgs := map[string][]byte{
		"proxy":       pack(t, tarEntry{name: "fastly.toml", data: manifest}, tarEntry{name: "bin/main.wasm", data: guests["proxy"]}),
		"fastlystyle": pack(t, tarEntry{name: "fastly.toml", data: manifest}, tarEntry{name: "bin/main.wasm", data: guests["fastlystyle"]}),
	}
	// Compile both once (cold) before the clock starts; version 1 is
	// fastlystyle, staged, version 2 proxy, active.
	h.deploy(t, pkgs["fastlystyle"], "?activate=false")
	h.deploy(t, pkgs["proxy"], "")
	kindOf := map[int]string{1: "fastlystyle", 2: "proxy"}

	// The switch timeline: a guest may be active from the start of the
	// call that activates it to the end of the next switch's call. A
	// window is opened before its call starts, so a worker never sees a
	// switch its timeline does not know yet.
	type window struct {
		kind       string
		start, end time.Time
	}
	var mu sync.Mutex
	windows := []window{{kind: "proxy", start: time.Time{}}}
	valid := func(kind string, s, e time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, w := range windows {
			if w.kind == kind && !w.start.After(e) && (w.end.IsZero() || !w.end.Before(s)) {
				return true
			}
		}
		return false
	}

	const workers = 4
	var (
		done       atomic.Bool
		served     atomic.Int64
		failures   atomic.Int64
		maxLatency atomic.Int64
		wg         sync.WaitGroup
		firstErr   sync.Once
		errMsg     string
	)
	fail := func(format string, args ...any) {
		failures.Add(1)
		firstErr.Do(func() { errMsg = fmt.Sprintf(format, args...) })
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 10 * time.Second}
	connsBefore := origin.Conns()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !done.Load(); i++ {
				path := fmt.Sprintf("/proxy/w%d/%d", w, i)
				s := time.Now()
				resp, err := client.Get(h.url + path)
				if err != nil {
					fail("GET %s: %v", path, err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				e := time.Now()
				if d := int64(e.Sub(s)); d > maxLatency.Load() {
					maxLatency.Store(d)
				}
				kind := ""
				switch {
				case resp.Header.Get("X-Edgehost-Proxy") == "1":
					kind = "proxy"
				case resp.Header.Get("X-Fastlystyle") == "1":
					kind = "fastlystyle"
				}
				switch {
				case err != nil || resp.StatusCode != 200 || string(body) != "origin "+path:
					fail("GET %s: %d %q %v", path, resp.StatusCode, body, err)
				case kind == "":
					fail("GET %s: response from neither guest: %v", path, resp.Header)
				case !valid(kind, s, e):
					fail("GET %s: answered by %s, which was not active during the request", path, kind)
				}
				served.Add(1)
			}
		}()
	}
	// Let traffic settle, so that the pool holds its working set.
	waitFor(t, 20*time.Second, "requests to flow", func() bool { return served.Load() >= 50 })
	connsSettled := origin.Conns()

	// 20 switches: 10 uploads alternating the two packages, then 10
	// rollbacks to earlier versions. After each, wait for 20 more
	// responses so that every version really serves.
	start := time.Now()
	var perSwitch []int64
	for i := range 20 {
		before := origin.Conns()
		// Even switches bring fastlystyle, odd ones proxy.
		kind := []string{"fastlystyle", "proxy"}[i%2]
		mu.Lock()
		windows = append(windows, window{kind: kind, start: time.Now()})
		mu.Unlock()
		if i < 10 {
			r := h.deploy(t, pkgs[kind], "")
			kindOf[r.num("version")] = kind
		} else {
			// Roll back to an earlier version of that guest.
			var candidates []int
			for n, k := range kindOf {
				if k == kind {
					candidates = append(candidates, n)
				}
			}
			slices.Sort(candidates)
			h.activate(t, candidates[(i*3)%len(candidates)])
		}
		mu.Lock()
		windows[len(windows)-2].end = time.Now()
		mu.Unlock()
		target := served.Load() + 20
		waitFor(t, 20*time.Second, "responses after a switch", func() bool { return served.Load() >= target })
		perSwitch = append(perSwitch, origin.Conns()-before)
	}
	elapsed := time.Since(start)
	done.Store(true)
	wg.Wait()

	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed; first: %s", n, served.Load(), errMsg)
	}
	total := origin.Conns()
	t.Logf("deploy under load: %d requests from %d goroutines during 20 switches in %v (%.0f req/s), max latency %v, 0 failed; origin connections: %d before, %d settled, %d after (new per switch: %v)",
		served.Load(), workers, elapsed.Round(time.Millisecond), float64(served.Load())/time.Since(start).Seconds(),
		time.Duration(maxLatency.Load()).Round(time.Millisecond), connsBefore, connsSettled, total, perSwitch)
	// Each switch may at most meet a momentary peak of concurrency; a pool
	// per version would open a full working set (up to `workers`) each time.
	if grew := total - connsSettled; grew > workers {
		t.Errorf("origin connections grew by %d over 20 switches (per switch %v): pools were not kept across versions", grew, perSwitch)
	}
}
