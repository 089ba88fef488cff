package jssdk_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestJSHTTPCache serves httpcache.js built with --enable-http-cache, so
// that its fetches go through the HTTP cache API (README.md, "Caching";
// abi/README.md, "fastly_http_cache"): a cacheable answer is fetched
// once; a private one is fetched every time, unless the CacheOverride's
// afterSend hook says to store it, which only the HTTP cache API allows
// (the readthrough cache never stores private answers). No stub hostcall
// is called. The origin counts its requests per path.
func TestJSHTTPCache(t *testing.T) {
	wasm, took, err := guesttest.BuildJS("httpcache", "--enable-http-cache")
	skipOrFail(t, err)
	if took > 0 {
		t.Logf("built httpcache.js with --enable-http-cache in %v", took)
	}
	var mu sync.Mutex
	counts := map[string]int{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.URL.Path]++
		n := counts[r.URL.Path]
		mu.Unlock()
		cc := "max-age=60"
		if r.URL.Path != "/pub" {
			cc = "private"
		}
		w.Header().Set("Cache-Control", cc)
		fmt.Fprintf(w, "%s #%d", r.URL.Path, n)
	}))
	t.Cleanup(origin.Close)
	count := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[path]
	}

	h, _ := cacheJSHost(t, wasm, fmt.Sprintf("name = \"jssdk-httpcache\"\n[local_server.backends.origin]\nurl = %q\n", origin.URL), slog.LevelDebug)

	for _, s := range []struct {
		path, body, origin string
		n                  int
	}{
		{"/pub", "/pub #1", "/pub", 1},
		{"/pub", "/pub #1", "/pub", 1},
		{"/priv", "/priv #1", "/priv", 1},
		{"/priv", "/priv #2", "/priv", 2},
		{"/forced?force=1", "/forced #1", "/forced", 1},
		{"/forced?force=1", "/forced #1", "/forced", 1},
	} {
		resp, err := http.Get(h.url + s.path)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 256)
		n, _ := resp.Body.Read(b)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b[:n]) != s.body {
			t.Errorf("GET %s: %d %q, want 200 %q", s.path, resp.StatusCode, b[:n], s.body)
		}
		if got := count(s.origin); got != s.n {
			t.Errorf("after GET %s: the origin saw %d requests for %s, want %d", s.path, got, s.origin, s.n)
		}
	}
}
