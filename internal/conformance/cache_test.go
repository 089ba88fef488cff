package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
	"github.com/edgehost/edgehost/internal/store"
)

// The readthrough cache on the send path (README.md, "Caching"): the
// cacheproxy guest sends every downstream request to the backend "origin"
// (a loopback server counting its requests) and copies the answer back.

// testClock is the cache's clock in these tests: moved by hand, so that
// freshness is tested without sleeping.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type cacheHost struct {
	url    string
	cache  *cache.Cache
	srv    *server.Server
	loader *server.Loader
}

// serveCached serves the cacheproxy guest on eng with a backend "origin"
// at originURL, its sends going through c.
func serveCached(t *testing.T, eng engine.Engine, originURL string, c *cache.Cache) *cacheHost {
	t.Helper()
	// A connect timeout well above the 1 s default: 100 sandboxes starting
	// at once under -race on a loaded 2-core machine once kept the
	// collapsing test's one origin connect waiting past 1 s. These tests
	// are about the cache, not connect timeouts.
	manifest := fmt.Sprintf("[local_server.backends.origin]\nurl = %q\nconnect_timeout_ms = 10000\n", originURL)
	m, err := config.Parse("fastly.toml", []byte(manifest), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &guesttest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	pools := pool.NewManager(log)
	t.Cleanup(pools.Close)
	guard, err := pool.NewGuard(pool.GuardConfig{AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pools, Logger: log,
		Env: server.GuestEnvFor(m), Policy: &hostcall.Policy{Guard: guard}, Cache: c}
	v, err := loader.Load(context.Background(), "1", guests["cacheproxy"], m)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Logger: log, MaxConcurrentSandboxes: 256, SandboxTimeout: 30 * time.Second})
	srv.Activate(v)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host logs:\n%s", logs.String())
		}
	})
	return &cacheHost{url: hs.URL, cache: c, srv: srv, loader: loader}
}

// countingOrigin serves handler on loopback and counts requests per path.
type countingOrigin struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int
	last   map[string]http.Header // the last request's headers, per path
}

func newCountingOrigin(t *testing.T, handler http.HandlerFunc) *countingOrigin {
	o := &countingOrigin{counts: map[string]int{}, last: map[string]http.Header{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.counts[r.URL.Path]++
		o.last[r.URL.Path] = r.Header.Clone()
		o.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *countingOrigin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[path]
}

func (o *countingOrigin) lastHeader(path string) http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last[path]
}

// waitStored waits (at most 5 s) until c has stored n objects in all: a
// background refresh stores its object only after its origin body ends.
func waitStored(t *testing.T, c *cache.Cache, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Stored < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d objects stored after 5 s, want %d", c.Stats().Stored, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitCount waits (at most 5 s) until path has had n origin requests.
func (o *countingOrigin) waitCount(t *testing.T, path string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for o.count(path) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d origin requests after 5 s, want %d", path, o.count(path), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCacheHTTPSemantics is the HTTP-semantics table (issue 11): for each
// case, a sequence of requests through the guest's send, the clock moved
// between them, and what each answer says (X-Cache, X-Cache-Hits, Age,
// body) and how many requests the origin has seen by then.
func TestCacheHTTPSemantics(t *testing.T) {
	clock := &testClock{t: time.Now().Truncate(time.Second)}
	// The origin's answers: per path, the headers below; each answer's
	// body names the path and the origin's request count for it. Date is
	// the cache's clock, so that ages are what the test moves.
	var origin *countingOrigin
	origin = newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		now := clock.Now()
		h.Set("Date", now.UTC().Format(http.TimeFormat))
		n := origin.count(r.URL.Path)
		switch r.URL.Path {
		case "/max-age", "/post", "/head", "/async", "/dynamic", "/hits":
			h.Set("Cache-Control", "max-age=60")
		case "/s-maxage":
			h.Set("Cache-Control", "max-age=0, s-maxage=60")
		case "/no-store":
			h.Set("Cache-Control", "no-store, max-age=60")
		case "/private":
			h.Set("Cache-Control", "private, max-age=60")
		case "/vary":
			h.Set("Cache-Control", "max-age=60")
			h.Set("Vary", "Accept-Language")
			fmt.Fprintf(w, "%s lang=%s #%d", r.URL.Path, r.Header.Get("Accept-Language"), n)
			return
		case "/expires":
			h.Set("Expires", now.Add(30*time.Second).UTC().Format(http.TimeFormat))
		case "/revalidate":
			h.Set("Cache-Control", "max-age=10")
			h.Set("ETag", `"v1"`)
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		case "/swr":
			h.Set("Cache-Control", "max-age=10, stale-while-revalidate=30")
		case "/surrogate-control":
			h.Set("Surrogate-Control", "max-age=60")
			h.Set("Cache-Control", "max-age=0")
		case "/set-cookie":
			h.Set("Cache-Control", "max-age=60")
			h.Set("Set-Cookie", "session=1")
		case "/override-ttl", "/override-pass":
			h.Set("Cache-Control", "max-age=0")
			if r.URL.Path == "/override-pass" {
				h.Set("Cache-Control", "max-age=60")
			}
		case "/status-500":
			h.Set("Cache-Control", "max-age=60")
			w.WriteHeader(http.StatusInternalServerError)
		case "/age":
			h.Set("Cache-Control", "max-age=60")
			h.Set("Age", "50")
		}
		fmt.Fprintf(w, "%s #%d", r.URL.Path, n)
	})
	type step struct {
		advance time.Duration
		method  string
		hdr     []string
		xcache  string // X-Cache
		hits    string // X-Cache-Hits; "" not checked
		age     string // Age; "" not checked
		body    string // "" not checked (HEAD: none)
		origin  int    // origin requests for the path after the step
	}
	cases := []struct {
		name, path string
		steps      []step
	}{
		{"max-age", "/max-age", []step{
			{xcache: "MISS", hits: "0", age: "0", body: "/max-age #1", origin: 1},
			{advance: 5 * time.Second, xcache: "HIT", hits: "1", age: "5", body: "/max-age #1", origin: 1},
			{advance: 56 * time.Second, xcache: "MISS", body: "/max-age #2", origin: 2},
		}},
		{"s-maxage over max-age", "/s-maxage", []step{
			{xcache: "MISS", origin: 1}, {advance: 30 * time.Second, xcache: "HIT", body: "/s-maxage #1", origin: 1},
		}},
		{"no-store", "/no-store", []step{{xcache: "MISS", origin: 1}, {xcache: "MISS", body: "/no-store #2", origin: 2}}},
		{"private", "/private", []step{{xcache: "MISS", origin: 1}, {xcache: "MISS", body: "/private #2", origin: 2}}},
		{"vary", "/vary", []step{
			{hdr: []string{"Accept-Language", "en"}, xcache: "MISS", body: "/vary lang=en #1", origin: 1},
			{hdr: []string{"Accept-Language", "en"}, xcache: "HIT", body: "/vary lang=en #1", origin: 1},
			{hdr: []string{"Accept-Language", "fr"}, xcache: "MISS", body: "/vary lang=fr #2", origin: 2},
			{hdr: []string{"Accept-Language", "fr"}, xcache: "HIT", body: "/vary lang=fr #2", origin: 2},
			{hdr: []string{"Accept-Language", "en"}, xcache: "HIT", body: "/vary lang=en #1", origin: 2},
		}},
		{"expires", "/expires", []step{
			{xcache: "MISS", origin: 1}, {advance: 29 * time.Second, xcache: "HIT", origin: 1},
			{advance: 2 * time.Second, xcache: "MISS", body: "/expires #2", origin: 2},
		}},
		{"revalidation with 304", "/revalidate", []step{
			{xcache: "MISS", body: "/revalidate #1", origin: 1},
			{advance: 11 * time.Second, xcache: "MISS", body: "/revalidate #1", origin: 2}, // a 304: the stored body
			{advance: 5 * time.Second, xcache: "HIT", body: "/revalidate #1", origin: 2},   // fresh again
		}},
		{"surrogate-control", "/surrogate-control", []step{
			{xcache: "MISS", origin: 1}, {advance: 30 * time.Second, xcache: "HIT", body: "/surrogate-control #1", origin: 1},
		}},
		{"set-cookie not shared", "/set-cookie", []step{{xcache: "MISS", origin: 1}, {xcache: "MISS", body: "/set-cookie #2", origin: 2}}},
		{"uncacheable status", "/status-500", []step{{xcache: "MISS", origin: 1}, {xcache: "MISS", origin: 2}}},
		{"age on arrival", "/age", []step{
			{xcache: "MISS", age: "50", origin: 1}, {advance: 5 * time.Second, xcache: "HIT", age: "55", origin: 1},
			{advance: 6 * time.Second, xcache: "MISS", origin: 2},
		}},
		{"hits count", "/hits", []step{
			{xcache: "MISS", hits: "0", origin: 1}, {xcache: "HIT", hits: "1", origin: 1}, {xcache: "HIT", hits: "2", origin: 1},
		}},
		{"override ttl", "/override-ttl", []step{
			{hdr: []string{"X-Ov-Ttl", "60"}, xcache: "MISS", origin: 1},
			{advance: 30 * time.Second, hdr: []string{"X-Ov-Ttl", "60"}, xcache: "HIT", body: "/override-ttl #1", origin: 1},
		}},
		{"override pass", "/override-pass", []step{
			{hdr: []string{"X-Ov-Pass", "1"}, xcache: "MISS", origin: 1},
			{hdr: []string{"X-Ov-Pass", "1"}, xcache: "MISS", body: "/override-pass #2", origin: 2},
		}},
		{"post passes", "/post", []step{
			{method: "POST", xcache: "MISS", origin: 1}, {method: "POST", xcache: "MISS", body: "/post #2", origin: 2},
		}},
		{"head from a stored get", "/head", []step{
			{xcache: "MISS", origin: 1}, {method: "HEAD", xcache: "HIT", origin: 1},
		}},
		{"send_async", "/async", []step{
			{hdr: []string{"X-Async", "1"}, xcache: "MISS", origin: 1},
			{hdr: []string{"X-Async", "1"}, xcache: "HIT", body: "/async #1", origin: 1},
			{xcache: "HIT", body: "/async #1", origin: 1}, // send_v2 finds send_async's object
		}},
	}
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		origin.mu.Lock()
		origin.counts = map[string]int{}
		origin.mu.Unlock()
		h := serveCached(t, eng, origin.URL, cache.New(cache.Config{MaxBytes: 8 << 20, Now: clock.Now}))
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				for i, s := range tc.steps {
					clock.Add(s.advance)
					method := s.method
					if method == "" {
						method = http.MethodGet
					}
					req, _ := http.NewRequest(method, h.url+tc.path, nil)
					for j := 0; j+1 < len(s.hdr); j += 2 {
						req.Header.Set(s.hdr[j], s.hdr[j+1])
					}
					resp, body := do(t, req)
					got := resp.Header
					if resp.StatusCode >= 500 && tc.path != "/status-500" {
						t.Fatalf("step %d: status %d: %s", i, resp.StatusCode, body)
					}
					if got.Get("X-Cache") != s.xcache || (s.hits != "" && got.Get("X-Cache-Hits") != s.hits) || (s.age != "" && got.Get("Age") != s.age) {
						t.Errorf("step %d: X-Cache %q, X-Cache-Hits %q, Age %q; want %q, %q, %q", i,
							got.Get("X-Cache"), got.Get("X-Cache-Hits"), got.Get("Age"), s.xcache, s.hits, s.age)
					}
					if s.body != "" && body != s.body {
						t.Errorf("step %d: body %q, want %q", i, body, s.body)
					}
					if got.Get("Surrogate-Control") != "" {
						t.Errorf("step %d: the guest saw Surrogate-Control %q; the cache consumes it", i, got.Get("Surrogate-Control"))
					}
					if n := origin.count(tc.path); n != s.origin {
						t.Errorf("step %d: %d origin requests, want %d", i, n, s.origin)
					}
				}
			})
		}
		t.Run("revalidation is conditional", func(t *testing.T) {
			if inm := origin.lastHeader("/revalidate").Get("If-None-Match"); inm != `"v1"` {
				t.Errorf("the revalidation carried If-None-Match %q, want the stored ETag", inm)
			}
		})
		t.Run("stale-while-revalidate", func(t *testing.T) {
			if _, body := get(t, h.url+"/swr"); body != "/swr #1" {
				t.Fatalf("first answer %q", body)
			}
			stored := h.cache.Stats().Stored
			clock.Add(15 * time.Second) // stale, within the 30 s window
			resp, body := get(t, h.url+"/swr")
			if resp.Header.Get("X-Cache") != "HIT" || body != "/swr #1" {
				t.Errorf("within swr: X-Cache %q, body %q; want the stale object as a HIT", resp.Header.Get("X-Cache"), body)
			}
			origin.waitCount(t, "/swr", 2) // the one background refresh
			waitStored(t, h.cache, stored+1)
			if resp, body := get(t, h.url+"/swr"); resp.Header.Get("X-Cache") != "HIT" || body != "/swr #2" {
				t.Errorf("after the refresh: X-Cache %q, body %q; want the refreshed object", resp.Header.Get("X-Cache"), body)
			}
			if n := origin.count("/swr"); n != 2 {
				t.Errorf("%d origin requests, want 2", n)
			}
			clock.Add(50 * time.Second) // past max-age and the window
			if resp, body := get(t, h.url+"/swr"); resp.Header.Get("X-Cache") != "MISS" || body != "/swr #3" {
				t.Errorf("past swr: X-Cache %q, body %q; want a MISS", resp.Header.Get("X-Cache"), body)
			}
		})
		t.Run("surrogate keys over Fastly's limits", func(t *testing.T) {
			for _, sk := range []string{strings.Repeat("k", 1025), strings.Repeat("key ", 4200)} {
				resp, body := get(t, h.url+"/max-age", "X-Ov-Sk", sk)
				if resp.StatusCode != 503 || !strings.Contains(body, "cache_override_v2_set") || !strings.Contains(body, "inval") {
					t.Errorf("override keys of %d bytes: %d %q, want the guest to see inval", len(sk), resp.StatusCode, body)
				}
			}
		})
		t.Run("dynamic backend", func(t *testing.T) {
			addr := strings.TrimPrefix(origin.URL, "http://")
			for i, want := range []string{"MISS", "HIT"} {
				resp, body := get(t, h.url+"/dynamic", "X-Dyn", addr)
				if resp.Header.Get("X-Cache") != want || body != "/dynamic #1" {
					t.Errorf("request %d: X-Cache %q, body %q; want %s of /dynamic #1", i, resp.Header.Get("X-Cache"), body, want)
				}
			}
			// The static backend is another key: its own miss.
			if resp, _ := get(t, h.url+"/dynamic"); resp.Header.Get("X-Cache") != "MISS" || origin.count("/dynamic") != 2 {
				t.Errorf("static after dynamic: X-Cache %q, %d origin requests; want a MISS, 2", resp.Header.Get("X-Cache"), origin.count("/dynamic"))
			}
		})
	})
}

// TestCacheCollapsing sends 100 concurrent requests for one uncached URL:
// the origin sees one request, every client gets the first half of the
// body before the origin sends the second half (streamed as it arrives),
// and all 100 bodies are complete and equal.
func TestCacheCollapsing(t *testing.T) {
	const clients = 100
	half := bytes.Repeat([]byte("0123456789abcdef"), 4<<10) // 64 KiB
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		release := make(chan struct{})
		origin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=600")
			w.Header().Set("Content-Length", strconv.Itoa(2*len(half)))
			w.Write(half)
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-time.After(20 * time.Second):
			}
			w.Write(bytes.ToUpper(half))
		})
		c := cache.New(cache.Config{MaxBytes: 16 << 20})
		h := serveCached(t, eng, origin.URL, c)
		tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: clients}
		t.Cleanup(tr.CloseIdleConnections)
		client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
		var gotHalf, wg sync.WaitGroup
		gotHalf.Add(clients)
		bodies := make([][]byte, clients)
		errs := make([]error, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				signalled := false
				defer func() {
					if !signalled {
						gotHalf.Done()
					}
				}()
				resp, err := client.Get(h.url + "/collapse")
				if err != nil {
					errs[i] = err
					return
				}
				defer resp.Body.Close()
				first := make([]byte, len(half))
				if _, err := io.ReadFull(resp.Body, first); err != nil {
					errs[i] = fmt.Errorf("first half: %w", err)
					return
				}
				signalled = true
				gotHalf.Done()
				rest, err := io.ReadAll(resp.Body)
				bodies[i], errs[i] = append(first, rest...), err
			}()
		}
		halfDone := make(chan struct{})
		go func() { gotHalf.Wait(); close(halfDone) }()
		select {
		case <-halfDone:
		case <-time.After(20 * time.Second):
			t.Error("not every client had the first half of the body before the origin sent the rest")
		}
		close(release)
		wg.Wait()
		want := append(append([]byte(nil), half...), bytes.ToUpper(half)...)
		for i := range clients {
			if errs[i] != nil {
				t.Fatalf("client %d: %v", i, errs[i])
			}
			if !bytes.Equal(bodies[i], want) {
				t.Fatalf("client %d: body of %d bytes differs from the origin's %d", i, len(bodies[i]), len(want))
			}
		}
		if n := origin.count("/collapse"); n != 1 {
			t.Errorf("%d origin requests for %d concurrent misses, want 1", n, clients)
		}
		if s := c.Stats(); s.Collapsed != clients-1 {
			t.Errorf("collapsed %d, want %d", s.Collapsed, clients-1)
		}
		if resp, body := get(t, h.url+"/collapse"); resp.Header.Get("X-Cache") != "HIT" || body != string(want) {
			t.Errorf("after the fill: X-Cache %q, want a HIT of the whole body", resp.Header.Get("X-Cache"))
		}
	})
}

// TestCachePurge purges by surrogate key from the guest
// (fastly_purge.purge_surrogate_key, hard and soft, keys from the origin's
// Surrogate-Key and from the override) and through the admin API sharing
// the host's cache; the next request sees each purge. It also changes the
// cache generation with a deploy.
func TestCachePurge(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		var origin *countingOrigin
		origin = newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=600")
			w.Header().Set("Surrogate-Key", "all "+strings.TrimPrefix(r.URL.Path, "/"))
			w.Header().Set("ETag", fmt.Sprintf(`"%d"`, origin.count(r.URL.Path)))
			fmt.Fprintf(w, "%s #%d", r.URL.Path, origin.count(r.URL.Path))
		})
		c := cache.New(cache.Config{MaxBytes: 8 << 20})
		h := serveCached(t, eng, origin.URL, c)
		st, err := store.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		metrics := admin.NewMetrics(h.loader.Pools)
		metrics.RegisterCache(c)
		adm, err := admin.New(admin.Config{Store: st, Server: h.srv, Loader: h.loader, Cache: c, Metrics: metrics, Token: "tok"})
		if err != nil {
			t.Fatal(err)
		}
		as := httptest.NewServer(adm.Handler())
		t.Cleanup(as.Close)

		xcache := func(path string, hdr ...string) string {
			t.Helper()
			resp, body := get(t, h.url+path, hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
			}
			return resp.Header.Get("X-Cache")
		}
		expect := func(what, path string, want string, origins int, hdr ...string) {
			t.Helper()
			if got := xcache(path, hdr...); got != want || origin.count(path) != origins {
				t.Errorf("%s: GET %s: X-Cache %q, %d origin requests; want %q, %d", what, path, got, origin.count(path), want, origins)
			}
		}
		expect("first", "/a", "MISS", 1)
		expect("stored", "/a", "HIT", 1)
		expect("other", "/b", "MISS", 1)
		if _, body := get(t, h.url+"/purge/a"); body != "purged a\n" {
			t.Fatalf("guest purge: %q", body)
		}
		expect("after the guest's hard purge", "/a", "MISS", 2)
		expect("another key stays", "/b", "HIT", 1)

		get(t, h.url+"/purge/a?soft=1")
		expect("after the guest's soft purge", "/a", "MISS", 3) // stale: revalidated
		if inm := origin.lastHeader("/a").Get("If-None-Match"); inm == "" {
			t.Error("a soft-purged object was refetched without If-None-Match: it should revalidate")
		}
		expect("refreshed", "/a", "HIT", 3)

		expect("override keys", "/c", "MISS", 1, "X-Ov-Sk", "from-override")
		get(t, h.url+"/purge/from-override")
		expect("after purging the override's key", "/c", "MISS", 2)

		// The admin API purges the same cache.
		req, _ := http.NewRequest(http.MethodPost, as.URL+"/v1/purge/b", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, body := do(t, req)
		var pr admin.PurgeResult
		if err := json.Unmarshal([]byte(body), &pr); resp.StatusCode != 200 || err != nil || pr.Purged != 1 {
			t.Fatalf("POST /v1/purge/b: %d %s", resp.StatusCode, body)
		}
		expect("after the admin purge", "/b", "MISS", 2)

		resp, body = get(t, as.URL+"/v1/cache")
		var stats admin.CacheStats
		if err := json.Unmarshal([]byte(body), &stats); err != nil || stats.Hits < 3 || stats.Purged < 4 || stats.Objects == 0 {
			t.Errorf("GET /v1/cache: %s: want the guest's hits and purges counted", body)
		}
		_, body = get(t, as.URL+"/metrics")
		if want := fmt.Sprintf("edgehost_cache_hits_total %d", stats.Hits); !strings.Contains(body, want) {
			t.Errorf("GET /metrics has no %q line:\n%s", want, grepLines(body, "edgehost_cache_"))
		}

		// A deploy with another cache_generation empties the service's
		// objects; one with the same generation keeps them.
		deploy := func(gen string) {
			manifest := fmt.Sprintf("[local_server.backends.origin]\nurl = %q\n", origin.URL)
			if gen != "" {
				manifest += "[edgehost]\ncache_generation = " + gen + "\n"
			}
			m, err := config.Parse("fastly.toml", []byte(manifest), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			v, err := h.loader.Load(context.Background(), "2", guests["cacheproxy"], m)
			if err != nil {
				t.Fatal(err)
			}
			old := h.srv.Activate(v)
			go server.Retire(context.Background(), old)
		}
		deploy("")
		expect("after a deploy", "/b", "HIT", 2)
		deploy("1")
		expect("after a generation change", "/b", "MISS", 3)
	})
}

// TestCacheEviction fills a 256 KiB cache with 48 objects of 16 KiB: the
// bound holds, objects are evicted, and asking for all of them again
// refetches the evicted ones.
func TestCacheEviction(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		body := strings.Repeat("x", 16<<10)
		origin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=600")
			io.WriteString(w, body)
		})
		const bound = 256 << 10
		c := cache.New(cache.Config{MaxBytes: bound})
		h := serveCached(t, eng, origin.URL, c)
		const objects = 48
		for round := range 2 {
			for i := range objects {
				resp, got := get(t, fmt.Sprintf("%s/obj/%d", h.url, i))
				if resp.StatusCode != 200 || got != body {
					t.Fatalf("round %d, object %d: %d, %d bytes", round, i, resp.StatusCode, len(got))
				}
			}
		}
		s := c.Stats()
		total := 0
		for i := range objects {
			total += origin.count(fmt.Sprintf("/obj/%d", i))
		}
		if s.Evictions == 0 || s.Bytes > bound || total <= objects {
			t.Errorf("evictions %d, %d bytes held (bound %d), %d origin requests for %d objects asked twice: want evictions, the bound kept, refetches",
				s.Evictions, s.Bytes, bound, total, objects)
		}
		// What fits is kept and served: a working set of 4 objects (64 KiB)
		// asked six times is all HITs the sixth time, whatever the
		// admission policy made of the cyclic scan above (W-TinyLFU may
		// keep none of the scanned objects, and admits an object only once
		// it has been asked for more often than what it would evict).
		for pass := range 6 {
			for i := objects - 4; i < objects; i++ {
				resp, got := get(t, fmt.Sprintf("%s/obj/%d", h.url, i))
				if got != body {
					t.Fatalf("working set, object %d: %d, %d bytes", i, resp.StatusCode, len(got))
				}
				if pass == 5 && resp.Header.Get("X-Cache") != "HIT" {
					t.Errorf("working set, sixth pass, object %d: X-Cache %q, want HIT: nothing that fits was kept", i, resp.Header.Get("X-Cache"))
				}
			}
		}
		// An object over the per-object cap (bound/8 = 32 KiB) streams
		// through whole and is not stored.
		big := strings.Repeat("y", 64<<10)
		bigOrigin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=600")
			io.WriteString(w, big)
		})
		hb := serveCached(t, eng, bigOrigin.URL, cache.New(cache.Config{MaxBytes: bound}))
		for i := range 2 {
			resp, got := get(t, hb.url+"/big")
			if got != big || resp.Header.Get("X-Cache") != "MISS" || bigOrigin.count("/big") != i+1 {
				t.Errorf("big object, request %d: %d bytes, X-Cache %q, %d origin requests; want it whole, a MISS, %d",
					i, len(got), resp.Header.Get("X-Cache"), bigOrigin.count("/big"), i+1)
			}
		}
	})
}

// TestCacheBrokenOrigin: an origin that sends less than its
// Content-Length, or dies mid-body, leaves no object: the client sees a
// cut body, and the next request refetches.
func TestCacheBrokenOrigin(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		var origin *countingOrigin
		origin = newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			n := origin.count(r.URL.Path)
			if n > 1 { // the second request gets a whole answer
				w.Header().Set("Cache-Control", "max-age=600")
				io.WriteString(w, "whole")
				return
			}
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			switch r.URL.Path {
			case "/short": // says 100 bytes, sends 10
				fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nContent-Length: 100\r\n\r\n0123456789")
			case "/die": // chunked, dies inside a chunk
				fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nCache-Control: max-age=600\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789")
			}
			buf.Flush()
		})
		c := cache.New(cache.Config{MaxBytes: 8 << 20})
		h := serveCached(t, eng, origin.URL, c)
		for _, path := range []string{"/short", "/die"} {
			resp, err := http.Get(h.url + path)
			if err != nil {
				t.Fatal(err)
			}
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && string(b) == "whole" {
				t.Errorf("%s: the broken answer arrived whole", path)
			}
			resp2, body := get(t, h.url+path)
			if body != "whole" || resp2.Header.Get("X-Cache") != "MISS" || origin.count(path) != 2 {
				t.Errorf("%s: next request: X-Cache %q, body %q, %d origin requests; want a MISS refetching the whole body",
					path, resp2.Header.Get("X-Cache"), body, origin.count(path))
			}
			if resp3, _ := get(t, h.url+path); resp3.Header.Get("X-Cache") != "HIT" {
				t.Errorf("%s: the whole answer was not stored", path)
			}
		}
	})
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestCacheStaleIfError: a guest's send for an object past its freshness
// but within its stale-if-error window gets the stored response (a HIT)
// when the origin drops the revalidation's connection; with
// must-revalidate it gets the failure (the cacheproxy guest answers 503),
// and an origin's own 503 reaches it. The cache's clock is the test's, so
// nothing sleeps.
func TestCacheStaleIfError(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		var now atomic.Int64
		now.Store(time.Now().UnixNano())
		var down atomic.Bool
		origin := newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			if !down.Load() {
				cc := "max-age=60, stale-if-error=600"
				if r.URL.Path == "/must" {
					cc += ", must-revalidate"
				}
				w.Header().Set("Cache-Control", cc)
				io.WriteString(w, "stored "+r.URL.Path)
				return
			}
			if r.URL.Path == "/5xx" {
				http.Error(w, "origin says 503", http.StatusServiceUnavailable)
				return
			}
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close() // no answer at all
			}
		})
		c := cache.New(cache.Config{MaxBytes: 8 << 20, Now: func() time.Time { return time.Unix(0, now.Load()) }})
		h := serveCached(t, eng, origin.URL, c)
		for _, path := range []string{"/sie", "/must", "/5xx"} {
			if resp, body := get(t, h.url+path); resp.StatusCode != 200 || body != "stored "+path {
				t.Fatalf("%s: %d %q", path, resp.StatusCode, body)
			}
		}
		down.Store(true)
		now.Add(int64(120 * time.Second)) // stale, within stale-if-error
		for _, tc := range []struct {
			path   string
			status int
			body   string
			xcache string
		}{
			{"/sie", 200, "stored /sie", "HIT"},
			{"/must", 503, "cacheproxy: ", ""},
			{"/5xx", 503, "origin says 503", "MISS"},
		} {
			resp, body := get(t, h.url+tc.path)
			if resp.StatusCode != tc.status || !strings.HasPrefix(body, tc.body) || tc.xcache != "" && resp.Header.Get("X-Cache") != tc.xcache {
				t.Errorf("%s: %d %q X-Cache %q, want %d %q %q", tc.path, resp.StatusCode, body, resp.Header.Get("X-Cache"), tc.status, tc.body, tc.xcache)
			}
		}
		now.Add(int64(600 * time.Second)) // past the window
		if resp, body := get(t, h.url+"/sie"); resp.StatusCode != 503 {
			t.Errorf("/sie past its stale-if-error window: %d %q, want the failure (503)", resp.StatusCode, body)
		}
		if n := c.Stats().StaleIfError; n != 1 {
			t.Errorf("Stats.StaleIfError %d, want 1", n)
		}
	})
}
