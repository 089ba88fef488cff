package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// dynManifest configures testdata/guests/dynbackend through its config
// store "dyn".
func dynManifest(kv map[string]string) string {
	var b strings.Builder
	b.WriteString("[local_server.config_stores.dyn]\nformat = \"inline-toml\"\n[local_server.config_stores.dyn.contents]\n")
	for k, v := range kv {
		fmt.Fprintf(&b, "%s = %q\n", k, v)
	}
	return b.String()
}

func exampleDynManifest(target string) string {
	return fmt.Sprintf("[local_server.config_stores.settings]\nformat = \"inline-toml\"\n[local_server.config_stores.settings.contents]\norigin_target = %q\n", target)
}

// sharedHosts serves several modules, each on its own loopback server,
// with one pool manager: the way versions and guests share pools.
type sharedHosts struct {
	loader *server.Loader
}

func newSharedHosts(t *testing.T) *sharedHosts {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := guesttest.Engine(engine.Config{CacheDir: compileCache})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	pools := pool.NewManager(log)
	t.Cleanup(pools.Close)
	return &sharedHosts{loader: &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pools, Logger: log, Policy: localDev(t)}}
}

func (sh *sharedHosts) serve(t *testing.T, wasm []byte, manifest string) string {
	m, err := config.Parse("fastly.toml", []byte(manifest), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := sh.loader.Load(context.Background(), "1", wasm, m)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{Logger: sh.loader.Logger})
	srv.Activate(v)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

// transportDrops returns how many connections of the pools to target
// net/http's Transport closed by itself after a response. It declines to
// reuse a connection for reasons of its own, e.g. when it has not seen the
// request's write end within 50 ms of reading the response
// (persistConn.wroteRequest), which a loaded machine's scheduler can
// delay; the next request then dials anew. The pools count such a close
// under Closed.Error (a connection the Transport did not put back idle,
// for a reason the pool cannot see: pool.Pool.finish), and with every
// request answered 200 nothing else lands there. A close for a reason the
// pool chose itself fails the test: none is due here (keepalive 20 s and
// up, no max_use, no lifetime).
func transportDrops(t *testing.T, sh *sharedHosts, target string) (dropped int64) {
	t.Helper()
	for _, p := range sh.loader.Pools.Pools() {
		if p.Settings.Addr != target {
			continue
		}
		c := p.Stats.Closed
		if own := c.Total() - c.Error; own != 0 {
			t.Errorf("pool %d closed %d connections for its own reasons during the load: %+v", p.ID, own, c)
		}
		dropped += int64(c.Error)
	}
	return dropped
}

// connOrigin records, per origin connection, which guests used it (the
// X-Guest header the proxy guests forward) and how many are open at once.
type connOrigin struct {
	*httptest.Server
	mu       sync.Mutex
	users    map[string]map[string]bool // remote addr -> guests
	open     atomic.Int64
	maxOpen  atomic.Int64
	accepted atomic.Int64
}

func newConnOrigin(t *testing.T, delay time.Duration) *connOrigin {
	o := &connOrigin{users: map[string]map[string]bool{}}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		if o.users[r.RemoteAddr] == nil {
			o.users[r.RemoteAddr] = map[string]bool{}
		}
		o.users[r.RemoteAddr][r.Header.Get("X-Guest")] = true
		o.mu.Unlock()
		time.Sleep(delay)
		io.WriteString(w, "ok")
	}))
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			o.accepted.Add(1)
			n := o.open.Add(1)
			for {
				m := o.maxOpen.Load()
				if n <= m || o.maxOpen.CompareAndSwap(m, n) {
					break
				}
			}
		case http.StateClosed, http.StateHijacked:
			o.open.Add(-1)
		}
	}
	o.Start()
	t.Cleanup(o.Close)
	return o
}

// load sends n requests from workers goroutines, alternating between urls,
// each tagged with X-Guest = its URL's index; every one must be a 200.
func load(t *testing.T, urls []string, n, workers int) {
	var wg sync.WaitGroup
	var failed atomic.Int64
	var next atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				u := int(i) % len(urls)
				req, _ := http.NewRequest(http.MethodGet, urls[u]+"/r", nil)
				req.Header.Set("X-Guest", fmt.Sprint(u))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != "ok" {
					if failed.Add(1) == 1 {
						t.Errorf("status %d body %q", resp.StatusCode, b)
					}
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d requests failed", f, n)
	}
}

func TestDynamicBackendExample(t *testing.T) {
	origin := newConnOrigin(t, 0)
	h := startHost(t, guests["dynamic-backend"], exampleDynManifest(origin.Listener.Addr().String()), hostOpts{})
	resp, body := get(t, h.url+"/x")
	if resp.StatusCode != 200 || body != "ok" || resp.Header.Get("X-Edgehost-Backend") != "dynamic" {
		t.Fatalf("status %d body %q headers %v", resp.StatusCode, body, resp.Header)
	}
}

// TestDynamicBackendExampleManyRequests: one reused sandbox of the
// example proxies many more requests than it may hold handles
// (max_handles 16): each send consumes the request handle it was given
// (abi/README.md, send), so no request leaves one behind.
func TestDynamicBackendExampleManyRequests(t *testing.T) {
	origin := newConnOrigin(t, 0)
	h := startHost(t, guests["dynamic-backend"], "[edgehost]\nmax_handles = 16\n"+exampleDynManifest(origin.Listener.Addr().String()), hostOpts{})
	for i := range 100 {
		resp, body := get(t, h.url+"/x")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: status %d body %q\n%s", i, resp.StatusCode, body, h.logs)
		}
	}
	if n := strings.Count(h.logs.String(), "sandbox=reused"); n < 90 {
		t.Fatalf("%d of 100 requests were served by a reused sandbox, want most", n)
	}
}

// TestDynamicBackendsSharePools: the example guest and a second guest
// module register backends with different names but the same settings;
// 1,000 requests from both use the pool's few connections, shared by both
// guests. With a different keepalive time the second guest gets a pool of
// its own: no connection is used by both.
func TestDynamicBackendsSharePools(t *testing.T) {
	same := map[string]string{
		"keepalive_ms": "30000", "tcp": "on", "tcp_time_s": "60", "tcp_interval_s": "10", "tcp_probes": "5",
		"max_connections": "32", "name": "another-name",
	}
	t.Run("same settings share", func(t *testing.T) {
		origin := newConnOrigin(t, 0)
		target := origin.Listener.Addr().String()
		same["target"] = target
		sh := newSharedHosts(t)
		a := sh.serve(t, guests["dynamic-backend"], exampleDynManifest(target))
		b := sh.serve(t, guests["dynbackend"], dynManifest(same))
		load(t, []string{a, b}, 1000, 4)
		if n, dropped := origin.accepted.Load(), transportDrops(t, sh, target); n-dropped > 4 || dropped > 1000/50 {
			t.Fatalf("1000 requests from 4 clients opened %d origin connections, %d of them after one the Transport dropped; want at most 4 besides those, and few drops", n, dropped)
		}
		shared := false
		for _, g := range origin.users {
			shared = shared || (g["0"] && g["1"])
		}
		if !shared {
			t.Fatalf("no origin connection served both guests: %v", origin.users)
		}
	})
	t.Run("different keepalive does not share", func(t *testing.T) {
		origin := newConnOrigin(t, 0)
		target := origin.Listener.Addr().String()
		diff := map[string]string{}
		for k, v := range same {
			diff[k] = v
		}
		diff["target"], diff["keepalive_ms"] = target, "20000"
		sh := newSharedHosts(t)
		a := sh.serve(t, guests["dynamic-backend"], exampleDynManifest(target))
		b := sh.serve(t, guests["dynbackend"], dynManifest(diff))
		load(t, []string{a, b}, 200, 1)
		if n, dropped := origin.accepted.Load(), transportDrops(t, sh, target); n-dropped != 2 || dropped > 200/50 {
			t.Errorf("sequential requests from two pools opened %d connections, %d of them after one the Transport dropped; want 2 besides those, and few drops", n, dropped)
		}
		for addr, g := range origin.users {
			if g["0"] && g["1"] {
				t.Fatalf("connection %s served both guests despite different keepalive settings", addr)
			}
		}
	})
}

// TestDynamicBackendEffectiveValues: the fastly_backend getters report
// what the pool enforces, defaults filled in for zeros.
func TestDynamicBackendEffectiveValues(t *testing.T) {
	origin := newConnOrigin(t, 0)
	target := origin.Listener.Addr().String()
	tests := []struct {
		name string
		kv   map[string]string
		want map[string]string
	}{
		{"defaults", map[string]string{"name": "d", "target": target},
			map[string]string{"X-Be-Keepalive-Ms": "60000", "X-Be-Tcp": "true", "X-Be-Tcp-Time-S": "15", "X-Be-Tcp-Interval-S": "15", "X-Be-Tcp-Probes": "9", "X-Be-Dynamic": "true"}},
		{"set", map[string]string{"name": "d", "target": target, "keepalive_ms": "1500", "tcp": "on", "tcp_time_s": "7", "tcp_interval_s": "3", "tcp_probes": "4"},
			map[string]string{"X-Be-Keepalive-Ms": "1500", "X-Be-Tcp": "true", "X-Be-Tcp-Time-S": "7", "X-Be-Tcp-Interval-S": "3", "X-Be-Tcp-Probes": "4"}},
		{"tcp off", map[string]string{"name": "d", "target": target, "tcp": "off"},
			map[string]string{"X-Be-Tcp": "false"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startHost(t, guests["dynbackend"], dynManifest(tc.kv), hostOpts{})
			resp, body := get(t, h.url+"/")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			for k, v := range tc.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestDynamicBackendMaxConnections: 64 concurrent downstream requests
// through a backend with max_connections 4 never open more than 4.
func TestDynamicBackendMaxConnections(t *testing.T) {
	origin := newConnOrigin(t, 20*time.Millisecond)
	h := startHost(t, guests["dynbackend"], dynManifest(map[string]string{
		"name": "limited", "target": origin.Listener.Addr().String(), "max_connections": "4", "connect_timeout_ms": "10000",
	}), hostOpts{})
	load(t, []string{h.url}, 128, 64)
	if m := origin.maxOpen.Load(); m > 4 {
		t.Fatalf("origin saw %d connections open at once, want at most 4", m)
	}
}

// TestProxiedResponseAsOriginSentIt: through both proxying examples (the
// dynamic-backend one, a reused sandbox, and the static proxy, a sandbox
// per request), a pass, a cache miss and a cache hit reach the client with
// the origin's status, every field with its values in the origin's order
// (multi-value fields; Set-Cookie on the passes), the example's own field and
// the cache's, and the origin's 300 KiB body byte for byte. The examples
// send the backend response itself downstream (guestsdk CopyResponse);
// this is what a copy field by field gave.
func TestProxiedResponseAsOriginSentIt(t *testing.T) {
	body := make([]byte, 300<<10)
	x := uint32(1)
	for i := range body {
		x = x*1664525 + 1013904223
		body[i] = byte(x >> 24)
	}
	date := time.Now().UTC().Format(http.TimeFormat) // fresh: the cache reckons Age from it
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if !strings.HasPrefix(r.URL.Path, "/cached/") {
			h["Set-Cookie"] = []string{"a=1; Path=/", "b=2"} // never shared by the cache
		}
		h["X-Multi"] = []string{"one", "two, three", "four"}
		h.Set("Vary", "Accept-Encoding")
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Date", date)
		if strings.HasPrefix(r.URL.Path, "/cached/") {
			h.Set("Cache-Control", "max-age=600")
		} else {
			h.Set("Cache-Control", "private")
		}
		w.WriteHeader(203)
		w.Write(body)
	})
	target := origin.Listener.Addr().String()
	for _, g := range []struct {
		guest, manifest, field, value string
	}{
		{"dynamic-backend", "[edgehost]\nmax_handles = 16\n" + exampleDynManifest(target), "X-Edgehost-Backend", "dynamic"},
		{"proxy", backendManifest(origin.URL), "X-Edgehost-Proxy", "1"},
	} {
		t.Run(g.guest, func(t *testing.T) {
			h := startHost(t, guests[g.guest], g.manifest, hostOpts{cache: cache.New(cache.Config{MaxBytes: 8 << 20})})
			for i, c := range []struct {
				path, cacheControl, xCache, hits string
			}{
				{"/pass", "private", "MISS", "0"},
				{"/pass", "private", "MISS", "0"},
				{"/cached/" + g.guest, "max-age=600", "MISS", "0"},
				{"/cached/" + g.guest, "max-age=600", "HIT", "1"},
				{"/cached/" + g.guest, "max-age=600", "HIT", "2"},
			} {
				resp, err := http.Get(h.url + c.path)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatalf("request %d: reading the body: %v", i, err)
				}
				if resp.StatusCode != 203 || !bytes.Equal(got, body) {
					t.Fatalf("request %d (%s): status %d, %d body bytes (equal: %v), want 203 and the origin's %d\n%s",
						i, c.path, resp.StatusCode, len(got), bytes.Equal(got, body), len(body), h.logs)
				}
				if age := resp.Header.Get("Age"); age == "" {
					t.Errorf("request %d: no Age", i)
				}
				resp.Header.Del("Age") // seconds in the cache: 0 or more
				want := http.Header{
					"X-Multi":       {"one", "two, three", "four"},
					"Vary":          {"Accept-Encoding"},
					"Content-Type":  {"application/octet-stream"},
					"Date":          {date},
					"Cache-Control": {c.cacheControl},
					"X-Cache":       {c.xCache},
					"X-Cache-Hits":  {c.hits},
					g.field:         {g.value},
				}
				if c.path == "/pass" {
					want["Set-Cookie"] = []string{"a=1; Path=/", "b=2"}
				}
				if !reflect.DeepEqual(resp.Header, want) {
					t.Errorf("request %d (%s): header\n%v\nwant\n%v", i, c.path, resp.Header, want)
				}
			}
		})
	}
}
