package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/server"
	"github.com/edgehost/edgehost/internal/store"
)

// TestCacheCalls purges a cache through the admin API and reads its
// counters, over loopback HTTP.
func TestCacheCalls(t *testing.T) {
	var origins atomic.Int64
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origins.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Surrogate-Key", "page "+strings.TrimPrefix(r.URL.Path, "/"))
		io.WriteString(w, "hello")
	}))
	defer origin.Close()
	c := cache.New(cache.Config{MaxBytes: 1 << 20})
	fetch := func(ctx context.Context, req *http.Request) (*http.Response, error) {
		return origin.Client().Transport.RoundTrip(req.WithContext(ctx))
	}
	get := func(path string) string {
		req, _ := http.NewRequest(http.MethodGet, origin.URL+path, nil)
		resp, err := c.Do(context.Background(), req, cache.Key{Backend: "o", URL: req.URL.String()}, cache.Override{}, fetch)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.Header.Get("X-Cache")
	}

	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	metrics := admin.NewMetrics(nil)
	metrics.RegisterCache(c)
	adm, err := admin.New(admin.Config{Store: st, Server: server.New(server.Config{}), Loader: &server.Loader{}, Cache: c, Metrics: metrics, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	as := httptest.NewServer(adm.Handler())
	defer as.Close()
	call := func(method, path, token string, out any) int {
		req, _ := http.NewRequest(method, as.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
		return resp.StatusCode
	}

	get("/a")
	get("/b")
	if s := call(http.MethodPost, "/v1/purge/a", "", nil); s != http.StatusUnauthorized {
		t.Errorf("purge without the token: %d", s)
	}
	var pr admin.PurgeResult
	if s := call(http.MethodPost, "/v1/purge/a", "tok", &pr); s != 200 || pr.Purged != 1 {
		t.Errorf("purge a: %d %+v", s, pr)
	}
	if got := get("/a"); got != "MISS" {
		t.Errorf("/a after its purge: %s", got)
	}
	if got := get("/b"); got != "HIT" {
		t.Errorf("/b after /a's purge: %s", got)
	}
	if s := call(http.MethodPost, "/v1/purge/b?soft=true", "tok", &pr); s != 200 || pr.Purged != 1 || !pr.Soft {
		t.Errorf("soft purge b: %d %+v", s, pr)
	}
	if got := get("/b"); got != "MISS" {
		t.Errorf("/b after its soft purge: %s", got)
	}
	if s := call(http.MethodPost, "/v1/purge/b?soft=maybe", "tok", nil); s != http.StatusBadRequest {
		t.Errorf("soft=maybe: %d", s)
	}
	if s := call(http.MethodPost, "/v1/purge", "tok", &pr); s != 200 || pr.Purged != 2 {
		t.Errorf("purge all: %d %+v", s, pr)
	}
	if got := get("/b"); got != "MISS" {
		t.Errorf("/b after purge all: %s", got)
	}
	get("/b")
	var cs admin.CacheStats
	if s := call(http.MethodGet, "/v1/cache", "", &cs); s != 200 || cs.Hits != 2 || cs.Misses != 5 || cs.MaxBytes != 1<<20 || cs.Objects == 0 {
		t.Errorf("GET /v1/cache: %d %+v", s, cs)
	}
	req, _ := http.NewRequest(http.MethodGet, as.URL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), "edgehost_cache_hits_total 2") {
		t.Errorf("/metrics lacks edgehost_cache_hits_total 2")
	}
	if n := origins.Load(); n != 5 {
		t.Errorf("origin requests %d, want 5", n)
	}
}
