package conformance_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// The HTTP cache API (abi/README.md, "fastly_http_cache"): the httpcache
// guest answers /obj/... through fastly_http_cache, filling misses from
// the backend "origin", a loopback server counting its requests.

// serveHTTPCache serves wasm (the httpcache guest) on eng with a backend
// "origin" at originURL and the host cache c, for service svc-http.
func serveHTTPCache(t *testing.T, eng engine.Engine, wasm []byte, originURL string, c *cache.Cache) string {
	t.Helper()
	// A connect timeout well above the 1 s default, as serveCached's: ten
	// sandboxes starting at once under -race on a loaded machine kept the
	// collapsing test's origin connects waiting past 1 s, twice in a row.
	// These tests are about the cache, not connect timeouts.
	manifest := fmt.Sprintf("service_id = \"svc-http\"\n[local_server.backends.origin]\nurl = %q\nconnect_timeout_ms = 10000\n", originURL)
	m, err := config.Parse("fastly.toml", []byte(manifest), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &guesttest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pools := pool.NewManager(log)
	t.Cleanup(pools.Close)
	guard, err := pool.NewGuard(pool.GuardConfig{AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pools, Logger: log,
		Env: server.GuestEnvFor(m), Policy: &hostcall.Policy{Guard: guard}, Cache: c}
	v, err := loader.Load(context.Background(), "1", wasm, m)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Logger: log, SandboxTimeout: 20 * time.Second})
	srv.Activate(v)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("host logs:\n%s", logs.String())
		}
	})
	return hs.URL
}

// httpCacheOrigin answers per path: /obj/fresh max-age=60 with
// stale-while-revalidate, surrogate keys and an ETag; /obj/smax s-maxage
// over max-age, varying on X-Lang; /obj/reval stale at once (max-age=0,
// swr 60 s), a 304 to If-None-Match "r1"; /obj/private private; /obj/err
// a 500; others max-age=60 with the path in the body.
func httpCacheOrigin(t *testing.T) *countingOrigin {
	return newCountingOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		switch r.URL.Path {
		case "/obj/fresh":
			h.Set("Cache-Control", "max-age=60, stale-while-revalidate=5")
			h.Set("Surrogate-Key", "k1 k2")
			h.Set("ETag", `"v1"`)
			fmt.Fprint(w, "fresh body")
		case "/obj/smax":
			h.Set("Cache-Control", "max-age=10, s-maxage=30")
			h.Set("Vary", "X-Lang")
			fmt.Fprint(w, "smax "+r.Header.Get("X-Lang"))
		case "/obj/reval", "/obj/reval2":
			if r.Header.Get("If-None-Match") == `"r1"` {
				h.Set("Cache-Control", "max-age=60")
				h.Set("X-Gen", "2")
				w.WriteHeader(http.StatusNotModified)
				return
			}
			h.Set("Cache-Control", "max-age=0, stale-while-revalidate=60")
			h.Set("ETag", `"r1"`)
			h.Set("X-Gen", "1")
			fmt.Fprint(w, "reval body")
		case "/obj/private":
			h.Set("Cache-Control", "private")
			fmt.Fprint(w, "private")
		case "/obj/slow":
			time.Sleep(300 * time.Millisecond)
			h.Set("Cache-Control", "max-age=60")
			fmt.Fprint(w, strings.Repeat("slow ", 1000))
		case "/obj/err":
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "err")
		default:
			h.Set("Cache-Control", "max-age=60")
			fmt.Fprint(w, "body of "+r.URL.Path)
		}
	})
}

// TestHTTPCacheConformance drives the httpcache guest through the
// fastly_http_cache hostcalls on each engine against a real origin.
func TestHTTPCacheConformance(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		origin := httpCacheOrigin(t)
		c := cache.New(cache.Config{MaxBytes: 16 << 20})
		url := serveHTTPCache(t, eng, guests["httpcache"], origin.URL, c)
		get := func(path string, hdr ...string) (*http.Response, string) {
			t.Helper()
			req, err := http.NewRequest("GET", url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			return do(t, req)
		}
		// want checks resp's headers (name=value pairs) and body.
		want := func(what string, resp *http.Response, body, wantBody string, kv ...string) {
			t.Helper()
			if body != wantBody {
				t.Errorf("%s: body %q, want %q", what, body, wantBody)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if got := resp.Header.Get(kv[i]); got != kv[i+1] {
					t.Errorf("%s: %s = %q, want %q (status %d, headers %v)", what, kv[i], got, kv[i+1], resp.StatusCode, resp.Header)
				}
			}
		}
		count := func(path string, n int) {
			t.Helper()
			if got := origin.count(path); got != n {
				t.Errorf("origin saw %d requests for %s, want %d", got, path, n)
			}
		}

		// A miss: the obligation (state 8), the origin's response inserted
		// and streamed back; the suggested options are the origin's
		// Cache-Control and Surrogate-Key.
		resp, body := get("/obj/fresh")
		want("miss", resp, body, "fresh body", "X-Role", "inserter", "X-State", "8", "X-Action", "0", "X-Prepare", "0",
			"X-Sugg", "0", "X-Sugg-Max-Age", "60000ms", "X-Sugg-Swr", "5000ms", "X-Sugg-Sk", "k1 k2", "X-Sugg-Length", "10",
			"X-Insert", "0", "X-Close", "0", "Etag", `"v1"`)
		// A second lookup hits with the stored response, header and body.
		resp, body = get("/obj/fresh")
		want("hit", resp, body, "fresh body", "X-Role", "hit", "X-State", "3", "Etag", `"v1"`, "X-Length", "10",
			"X-Max-Age", "60000ms", "X-Swr", "5000ms", "X-Sk", "k1 k2", "X-Hits", "1", "X-Sensitive", "0,0", "Cache-Control", "max-age=60, stale-while-revalidate=5")
		if resp.StatusCode != 200 {
			t.Errorf("hit: status %d", resp.StatusCode)
		}
		resp, _ = get("/obj/fresh")
		want("second hit", resp, "", "", "X-Hits", "2")
		count("/obj/fresh", 1)

		// s-maxage wins over max-age; Vary makes the variants.
		resp, body = get("/obj/smax", "X-Lang", "en")
		want("smax miss", resp, body, "smax en", "X-Role", "inserter", "X-Sugg-Max-Age", "30000ms", "X-Sugg-Vary", "X-Lang")
		resp, body = get("/obj/smax", "X-Lang", "fr")
		want("smax other variant", resp, body, "smax fr", "X-Role", "inserter")
		resp, body = get("/obj/smax", "X-Lang", "en")
		want("smax variant hit", resp, body, "smax en", "X-Role", "hit", "X-Vary", "X-Lang", "X-Max-Age", "30000ms")
		count("/obj/smax", 2)

		// A stale response is found with the obligation (found, usable,
		// stale, must insert or update: 15); the suggested request is
		// conditional, the 304 updates the stored response's header and
		// freshness, the body stays.
		resp, body = get("/obj/reval")
		want("reval miss", resp, body, "reval body", "X-Role", "inserter", "X-Gen", "1", "X-Sugg-Max-Age", "0ms", "X-Sugg-Swr", "60000ms")
		resp, body = get("/obj/reval")
		want("reval update", resp, body, "reval body", "X-Role", "updater", "X-State", "15", "X-Action", "1", "X-Update", "0",
			"X-Gen", "2", "X-Sugg-Max-Age", "60000ms", "X-Max-Age", "60000ms", "Etag", `"r1"`)
		if resp.StatusCode != 200 {
			t.Errorf("reval update: status %d, want the stored 200", resp.StatusCode)
		}
		if got := origin.lastHeader("/obj/reval").Get("If-None-Match"); got != `"r1"` {
			t.Errorf("revalidation's If-None-Match = %q, want \"r1\"", got)
		}
		resp, body = get("/obj/reval")
		want("reval hit", resp, body, "reval body", "X-Role", "hit", "X-State", "3", "X-Gen", "2")
		count("/obj/reval", 2)
		// The suggested backend request passes the readthrough cache by
		// itself: the revalidation reaches the origin.
		get("/obj/reval2?nopass=1")
		resp, body = get("/obj/reval2?nopass=1")
		want("reval without the guest's pass", resp, body, "reval body", "X-Role", "updater", "X-Gen", "2")
		count("/obj/reval2", 2)

		// private: recorded not cacheable; later lookups pass.
		resp, body = get("/obj/private")
		want("private", resp, body, "private", "X-Role", "recorder", "X-Action", "3", "X-Record", "0", "X-Sugg-Max-Age", "120000ms")
		for i := 0; i < 2; i++ {
			resp, body = get("/obj/private")
			want("private pass", resp, body, "private", "X-Role", "pass", "X-State", "0")
		}
		count("/obj/private", 3)

		// An uncacheable status is not stored, and not recorded.
		resp, body = get("/obj/err")
		want("err", resp, body, "err", "X-Role", "nostore", "X-Action", "2")
		resp, _ = get("/obj/err")
		want("err again", resp, "err", "err", "X-Role", "nostore", "X-State", "8")
		count("/obj/err", 2)

		// transaction_insert (no stream back), then a lookup; sensitive data.
		resp, body = get("/obj/plain?plain=1&sensitive=1")
		want("plain insert", resp, body, "body of /obj/plain", "X-Role", "inserter", "X-Insert", "0", "X-Sensitive", "0,1")
		resp, body = get("/obj/plain?plain=1&sensitive=1")
		want("plain hit", resp, body, "body of /obj/plain", "X-Role", "hit", "X-Sensitive", "0,1")
		count("/obj/plain", 1)

		// The override key: two URLs share one object.
		resp, body = get("/obj/a?key=shared")
		want("override miss", resp, body, "body of /obj/a", "X-Role", "inserter")
		resp, body = get("/obj/b?key=shared")
		want("override hit", resp, body, "body of /obj/a", "X-Role", "hit")
		count("/obj/b", 0)

		// A purge by surrogate key reaches HTTP cache objects.
		if n := c.Purge("svc-http", "k1", false); n == 0 {
			t.Errorf("purging k1 purged nothing")
		}
		resp, _ = get("/obj/fresh")
		want("after purge", resp, "", "", "X-Role", "inserter")
		count("/obj/fresh", 2)

		// Bad input gets the ABI's statuses.
		_, report := get("/bad")
		for _, l := range []string{
			"lookup bad request=3", "lookup reserved bit=2", "lookup unknown bit=2",
			"lookup options outside memory=2", "lookup key outside memory=2", "lookup empty key=2",
			"lookup out outside memory=2", "get_state bad handle=3", "close bad handle=3", "get_hits bad handle=3",
			"lookup miss=0", "get_state=0,0", "get_found_response of a miss=10", "get_length of a miss=10",
			"transaction_insert without obligation=1", "transaction_choose_stale without obligation=1",
			"close=0", "close again=3",
			"transaction_lookup=0", "get_state tx=0," + strconv.Itoa(8),
			"transaction_insert unknown bit=2", "transaction_insert reserved bit=2",
			"transaction_insert misaligned options=6", "transaction_insert options outside memory=2",
			"transaction_insert bad response=3", "transaction_update of nothing=1",
			"get_suggested_cache_options unknown bit=2", "get_suggested_cache_options bad response=3",
			"prepare_response_for_storage bad response=3",
			"transaction_abandon=0", "transaction_insert after abandon=1", "close tx=0",
		} {
			if !strings.Contains("\n"+report, "\n"+l+"\n") {
				t.Errorf("bad input: want line %q in\n%s", l, report)
			}
		}
	})
}

// TestHTTPCacheCollapsing: concurrent transaction_lookups of one missing
// key, in separate sandboxes, make one origin request; the others wait for
// the inserter and answer with its response.
func TestHTTPCacheCollapsing(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		origin := httpCacheOrigin(t)
		url := serveHTTPCache(t, eng, guests["httpcache"], origin.URL, cache.New(cache.Config{MaxBytes: 16 << 20}))
		const n = 10
		var wg sync.WaitGroup
		roles := make([]string, n)
		bodies := make([]string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := http.Get(url + "/obj/slow")
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Error(err)
				}
				roles[i], bodies[i] = resp.Header.Get("X-Role"), string(b)
			}()
		}
		wg.Wait()
		if got := origin.count("/obj/slow"); got != 1 {
			t.Errorf("origin saw %d requests, want 1", got)
		}
		inserters := 0
		want := strings.Repeat("slow ", 1000)
		for i := range n {
			if roles[i] == "inserter" {
				inserters++
			} else if roles[i] != "hit" {
				t.Errorf("request %d: role %q", i, roles[i])
			}
			if bodies[i] != want {
				t.Errorf("request %d: body of %d bytes, want %d", i, len(bodies[i]), len(want))
			}
		}
		if inserters != 1 {
			t.Errorf("%d inserters, want 1 (roles %v)", inserters, roles)
		}
	})
}

// TestHTTPCacheTinyGoGuest: the httpcache guest built with TinyGo gives
// the same answers as its Go build, on each engine.
func TestHTTPCacheTinyGoGuest(t *testing.T) {
	tiny := guesttest.RequireTinyGoFixtures(t, "testdata/guests/httpcache")["httpcache"]
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		var reports [2]string
		for i, wasm := range [][]byte{guests["httpcache"], tiny} {
			origin := httpCacheOrigin(t)
			url := serveHTTPCache(t, eng, wasm, origin.URL, cache.New(cache.Config{MaxBytes: 16 << 20}))
			var tr strings.Builder
			for _, path := range []string{"/obj/fresh", "/obj/fresh", "/obj/reval", "/obj/reval", "/obj/private", "/obj/private", "/bad"} {
				req, err := http.NewRequest("GET", url+path, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, body := do(t, req)
				fmt.Fprintf(&tr, "%s -> %d", path, resp.StatusCode)
				for _, k := range []string{"X-Role", "X-State", "X-Action", "X-Sugg-Max-Age", "X-Hits", "X-Gen"} {
					fmt.Fprintf(&tr, " %s=%s", k, resp.Header.Get(k))
				}
				fmt.Fprintf(&tr, " | %s\n", body)
			}
			reports[i] = tr.String()
		}
		if reports[0] != reports[1] {
			t.Errorf("Go and TinyGo builds differ:\n%s\n---\n%s", reports[0], reports[1])
		}
		if !strings.Contains(reports[1], "X-Role=updater X-State=15") || !strings.Contains(reports[1], "close tx=0") {
			t.Errorf("TinyGo build:\n%s", reports[1])
		}
	})
}

// TestHTTPCacheSuggestedCacheKey: get_suggested_cache_key answers the key
// lookups use, 32 bytes (the SHA-256 of the lower-cased host, a NUL and
// the path with its query; abi/README.md, "fastly_http_cache"), and a
// lookup with it as the override key finds the object stored without one.
func TestHTTPCacheSuggestedCacheKey(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		origin := httpCacheOrigin(t)
		url := serveHTTPCache(t, eng, guests["httpcache"], origin.URL, cache.New(cache.Config{MaxBytes: 16 << 20}))
		host := strings.TrimPrefix(url, "http://")
		sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
		_, body := get(t, url+"/key?a=1&B=2")
		want := fmt.Sprintf("key=0,32,%s\nhost key=0,32,%s\nshort buffer=%d,32\nbad request=%d\n",
			sum(host+"\x00/key?a=1&B=2"), sum("example.com\x00/key?a=1&B=2"), abi.Buflen, abi.Badf)
		if body != want {
			t.Errorf("report:\n%s\nwant:\n%s", body, want)
		}
		resp, _ := get(t, url+"/obj/sk")
		if r := resp.Header.Get("X-Role"); r != "inserter" {
			t.Errorf("first lookup: role %q, want inserter", r)
		}
		resp, body = get(t, url+"/obj/sk?sugg=1")
		if r := resp.Header.Get("X-Role"); r != "hit" || body != "body of /obj/sk" {
			t.Errorf("lookup by the suggested key: role %q body %q, want a hit of the stored object", r, body)
		}
		if n := origin.count("/obj/sk"); n != 1 {
			t.Errorf("origin saw %d requests, want 1", n)
		}
	})
}
