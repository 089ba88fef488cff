package jssdk_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest/testhost"
)

// TestJSCacheOverride serves app.js on a host with a readthrough cache
// (README.md, "Caching") and drives fetch with the JS SDK's CacheOverride
// and purgeSurrogateKey: an override TTL stores what the origin's headers
// would not, "pass" goes to the origin every time, a surrogate key from the
// override is purged hard and soft, and every answer says what happened
// in X-Cache. The origin counts its requests per URI.
func TestJSCacheOverride(t *testing.T) {
	wasm := jsGuest(t, "app")
	var mu sync.Mutex
	counts := map[string]int{}
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		counts[r.RequestURI]++
		n := counts[r.RequestURI]
		mu.Unlock()
		w.Header().Set("Cache-Control", r.URL.Query().Get("cc"))
		w.Header().Set("ETag", fmt.Sprintf(`"%d"`, n))
		fmt.Fprintf(w, "%s #%d", r.URL.Path, n)
	}))
	t.Cleanup(origin.Close)
	count := func(uri string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[uri]
	}

	h, c := cacheJSHost(t, wasm, fmt.Sprintf("name = \"jssdk-cache\"\n[local_server.backends.origin]\nurl = %q\n", origin.URL), slog.LevelInfo)

	steps := []struct {
		query  string // of /cache/fetch, or a purge
		xcache string
		body   string
		uri    string // the origin URI to count
		origin int
	}{
		// The origin says max-age=0; the override's TTL stores it.
		{"path=/ttl%3Fcc%3Dmax-age%3D0&mode=override&ttl=60&sk=js-key", "MISS", "/ttl #1", "/ttl?cc=max-age=0", 1},
		{"path=/ttl%3Fcc%3Dmax-age%3D0&mode=override&ttl=60&sk=js-key", "HIT", "/ttl #1", "/ttl?cc=max-age=0", 1},
		// Without the override the same answer is not stored.
		{"path=/none%3Fcc%3Dmax-age%3D0", "MISS", "/none #1", "/none?cc=max-age=0", 1},
		{"path=/none%3Fcc%3Dmax-age%3D0", "MISS", "/none #2", "/none?cc=max-age=0", 2},
		// pass: the origin every time, though it says max-age=60.
		{"path=/pass%3Fcc%3Dmax-age%3D60&mode=pass", "MISS", "/pass #1", "/pass?cc=max-age=60", 1},
		{"path=/pass%3Fcc%3Dmax-age%3D60&mode=pass", "MISS", "/pass #2", "/pass?cc=max-age=60", 2},
		// A hard purge of the override's surrogate key.
		{"purge:key=js-key", "", "", "", 0},
		{"path=/ttl%3Fcc%3Dmax-age%3D0&mode=override&ttl=60&sk=js-key", "MISS", "/ttl #2", "/ttl?cc=max-age=0", 2},
		{"path=/ttl%3Fcc%3Dmax-age%3D0&mode=override&ttl=60&sk=js-key", "HIT", "/ttl #2", "/ttl?cc=max-age=0", 2},
		// A soft purge: the stale object revalidates (the origin's ETag
		// differs, so it answers 200 and replaces it).
		{"purge:key=js-key&soft=1", "", "", "", 0},
		{"path=/ttl%3Fcc%3Dmax-age%3D0&mode=override&ttl=60&sk=js-key", "MISS", "/ttl #3", "/ttl?cc=max-age=0", 3},
	}
	for i, s := range steps {
		if q, ok := strings.CutPrefix(s.query, "purge:"); ok {
			if _, body := h.get(t, "/cache/purge?"+q); body != "purged\n" {
				t.Fatalf("step %d: purge answered %q", i, body)
			}
			continue
		}
		resp, body := h.get(t, "/cache/fetch?"+s.query)
		if got := resp.Header.Get("X-Cache"); got != s.xcache || body != s.body || count(s.uri) != s.origin {
			t.Errorf("step %d (%s): X-Cache %q, body %q, %d origin requests; want %q, %q, %d",
				i, s.query, got, body, count(s.uri), s.xcache, s.body, s.origin)
		}
	}
	if st := c.Stats(); st.Hits != 2 || st.Purged != 2 {
		t.Errorf("cache stats: %d hits, %d purged; want 2, 2", st.Hits, st.Purged)
	}
}

// cacheJSHost serves wasm under manifest with a readthrough cache of
// 8 MiB (testhost), logging from level; at cleanup it fails the test if
// the guest called a stub hostcall, and prints the host's logs when the
// test failed. It returns the host and its cache.
func cacheJSHost(t *testing.T, wasm []byte, manifest string, level slog.Level) (*jsHost, *cache.Cache) {
	t.Helper()
	th := testhost.New(t, wasm, testhost.Config{Manifest: manifest, EngineConfig: engine.Config{CacheDir: shared.cache},
		LogLevel: level, Cache: cache.New(cache.Config{MaxBytes: 8 << 20})})
	h := &jsHost{url: th.Listen(t), logs: th.Logs}
	t.Cleanup(func() {
		h.checkNoStubs(t)
		if t.Failed() {
			t.Logf("host logs:\n%s", th.Logs)
		}
	})
	return h, th.Cache
}
