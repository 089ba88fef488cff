package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/fleet"
	"github.com/edgehost/edgehost/internal/fleet/fleettest"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
	"github.com/edgehost/edgehost/internal/store"
)

// fleetNode is one in-process edgehost node of a fleet, assembled as
// edgehost serve --cluster does: store, engine, loader whose KV is the
// fleet's, readthrough cache, server, admin API following the fleet.
type fleetNode struct {
	name          string
	url, adminURL string
	fleet         *fleet.Fleet
	cache         *cache.Cache
}

func startFleetNode(t *testing.T, name string, urls ...string) *fleetNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(&testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("node", name)
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f, err := fleet.Connect(fleet.Config{URLs: urls, Node: name, Replicas: 3, NoDiscovery: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	eng, err := guesttest.Engine(engine.Config{CacheDir: st.CacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	pools := pool.NewManager(log)
	t.Cleanup(pools.Close)
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pools, Logger: log, Env: server.GuestEnv("test"), KV: f.KV()}
	srv := server.New(server.Config{Logger: log})
	c := cache.New(cache.Config{})
	as := httptest.NewUnstartedServer(nil)
	adm, err := admin.New(admin.Config{Store: st, Server: srv, Loader: loader, Cache: c, Logger: log, KV: f.KV(), Fleet: f,
		AdminURL: "http://" + as.Listener.Addr().String(), KeptVersions: config.DefaultKeptVersions})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if srv.Active() == nil {
		v, err := loader.Load(context.Background(), "welcome", admin.WelcomeModule(""), config.Default())
		if err != nil {
			t.Fatal(err)
		}
		srv.Activate(v)
	}
	as.Config.Handler = adm.Handler()
	as.Start()
	ds := httptest.NewServer(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { adm.RunFleet(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		ds.Close()
		as.Close()
		adm.Close(context.Background())
		if v := srv.Active(); v != nil {
			v.Module.Close(context.Background())
		}
	})
	return &fleetNode{name: name, url: ds.URL, adminURL: as.URL, fleet: f, cache: c}
}

// versionModule is a guest whose every answer names tag.
func versionModule(tag string) []byte { return admin.WelcomeModule(tag) }

func servesTag(body, tag string) bool { return strings.Contains(body, "--admin "+tag+" ") }

// body fetches url; "" on any failure.
func body(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post POSTs data as kind and decodes the JSON answer (tests and benchmarks).
func post(t testing.TB, url, kind string, data []byte) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, kind, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// deployTo uploads module to node's admin API and returns its version.
func deployTo(t *testing.T, n *fleetNode, module []byte) int {
	t.Helper()
	code, out := post(t, n.adminURL+"/v1/modules", "application/wasm", module)
	if code != http.StatusCreated {
		t.Fatalf("deploy on %s: %d %v", n.name, code, out)
	}
	return int(out["version"].(float64))
}

// waitServing waits (at most d) until every node answers with tag and
// returns how long it took.
func waitServing(t *testing.T, d time.Duration, tag string, nodes ...*fleetNode) time.Duration {
	t.Helper()
	start := time.Now()
	for _, n := range nodes {
		for {
			if _, b := body(n.url + "/"); servesTag(b, tag) {
				break
			}
			if time.Since(start) > d {
				_, b := body(n.url + "/")
				t.Fatalf("node %s does not serve %q after %v; it answers %.80q", n.name, tag, d, b)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// followBound is the longest a node may take to serve a deploy.
const followBound = 5 * time.Second

// TestFleet runs three nodes on a three-server JetStream cluster (node C
// through a proxy, to cut its link): deploys reach every node, rollback,
// 20 deploys under load without a failed request, a KV write on A read on
// C, a purge on B empties A's and C's caches, a lost NATS server, a cut
// link caught up, and compare-and-set activations.
func TestFleet(t *testing.T) {
	cl := fleettest.Start(t, 3)
	proxy := fleettest.NewProxy(t, cl.URLs[2])
	a := startFleetNode(t, "a", cl.URLs[0], cl.URLs[1])
	b := startFleetNode(t, "b", cl.URLs[1], cl.URLs[2])
	c := startFleetNode(t, "c", proxy.URL)
	nodes := []*fleetNode{a, b, c}

	// Deploy on A: every node serves it.
	v1 := deployTo(t, a, versionModule("v1"))
	t.Logf("deploy on A served by every node in %v", waitServing(t, followBound, "v1", nodes...))
	v2 := deployTo(t, b, versionModule("v2"))
	waitServing(t, followBound, "v2", nodes...)

	// Rollback from C, which keeps v1's module (kept_versions 1).
	if code, out := post(t, fmt.Sprintf("%s/v1/modules/%d/activate", c.adminURL, v1), "", nil); code != http.StatusOK || out["from_kept"] != true {
		t.Fatalf("rollback on C: %d %v, want 200 with from_kept true", code, out)
	}
	t.Logf("rollback served by every node in %v", waitServing(t, followBound, "v1", nodes...))

	// GET /v1/fleet: every node, the version it serves.
	waitFor(t, followBound, "GET /v1/fleet to show every node on the rolled-back version", func() bool {
		resp, err := http.Get(b.adminURL + "/v1/fleet")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var info admin.FleetInfo
		if json.NewDecoder(resp.Body).Decode(&info) != nil || info.Active == nil || info.Active.Version != v1 || len(info.Nodes) != 3 {
			return false
		}
		for _, n := range info.Nodes {
			if n.Version != v1 || n.Since.IsZero() || n.AdminURL == "" {
				return false
			}
		}
		return true
	})

	// Compare-and-set: an activation at a stale revision is 409.
	resp, _ := http.Get(a.adminURL + "/v1/fleet")
	var info admin.FleetInfo
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	rev := info.Active.Revision
	if code, out := post(t, fmt.Sprintf("%s/v1/modules/%d/activate?if_revision=%d", a.adminURL, v2, rev), "", nil); code != http.StatusOK {
		t.Fatalf("activation at the current revision: %d %v", code, out)
	}
	code, out := post(t, fmt.Sprintf("%s/v1/modules/%d/activate?if_revision=%d", b.adminURL, v1, rev), "", nil)
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "revision") {
		t.Fatalf("activation at a stale revision: %d %v, want 409", code, out)
	}
	waitServing(t, followBound, "v2", nodes...)

	t.Run("DeploysUnderLoad", func(t *testing.T) {
		ctx, stop := context.WithCancel(context.Background())
		var requests, failed atomic.Int64
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					code, b := body(n.url + "/")
					requests.Add(1)
					if code != http.StatusOK || !strings.Contains(b, "--admin ") {
						failed.Add(1)
					}
				}
			}()
		}
		var lat, after []time.Duration
		for i := range 20 {
			tag := fmt.Sprintf("load%d", i)
			start := time.Now()
			deployTo(t, nodes[i%3], versionModule(tag))
			answered := time.Now()
			waitServing(t, followBound, tag, nodes...)
			lat = append(lat, time.Since(start))
			after = append(after, time.Since(answered))
		}
		stop()
		wg.Wait()
		slices.Sort(lat)
		slices.Sort(after)
		t.Logf("20 deploys, from the upload to serving on all 3 nodes: p50 %v, max %v; from the deploy's answer: p50 %v, max %v; %d requests during them, %d failed",
			lat[len(lat)/2], lat[len(lat)-1], after[len(after)/2], after[len(after)-1], requests.Load(), failed.Load())
		if failed.Load() != 0 {
			t.Fatalf("%d of %d requests failed during the deploys", failed.Load(), requests.Load())
		}
	})

	t.Run("KV", func(t *testing.T) {
		if err := a.fleet.KV().Declare("shared", nil); err != nil {
			t.Fatal(err)
		}
		var lat []time.Duration
		for i := range 10 {
			val := fmt.Sprintf("value %d", i)
			req, _ := http.NewRequest(http.MethodPut, a.adminURL+"/v1/kv/shared/keys/k", strings.NewReader(val))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusNoContent {
				t.Fatalf("KV put on A: %d", resp.StatusCode)
			}
			start := time.Now()
			for {
				if code, b := body(c.adminURL + "/v1/kv/shared/keys/k"); code == http.StatusOK && b == val {
					break
				}
				if time.Since(start) > followBound {
					t.Fatalf("C does not read %q after %v", val, followBound)
				}
				time.Sleep(time.Millisecond)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		t.Logf("KV write on A (admin API) to read on C: p50 %v, max %v over 10 writes", lat[len(lat)/2], lat[len(lat)-1])
	})

	t.Run("Purge", func(t *testing.T) {
		for _, n := range nodes {
			fill(t, n.cache, "tagged")
		}
		code, out := post(t, b.adminURL+"/v1/purge/tagged", "", nil)
		if code != http.StatusOK || out["purged"].(float64) != 1 {
			t.Fatalf("purge on B: %d %v", code, out)
		}
		for _, n := range []*fleetNode{a, c} {
			waitFor(t, followBound, "the purge to reach node "+n.name, func() bool { return n.cache.Stats().Objects == 0 })
		}
		for _, n := range nodes {
			fill(t, n.cache, "other")
		}
		if code, out := post(t, c.adminURL+"/v1/purge", "", nil); code != http.StatusOK {
			t.Fatalf("purge all on C: %d %v", code, out)
		}
		for _, n := range []*fleetNode{a, b} {
			waitFor(t, followBound, "the purge-all to reach node "+n.name, func() bool { return n.cache.Stats().Objects == 0 })
		}
	})

	t.Run("CutLink", func(t *testing.T) {
		_, before := body(c.url + "/")
		proxy.Cut()
		waitFor(t, followBound, "C to see its link down", func() bool { return !c.fleet.Connected() })
		deployTo(t, a, versionModule("while-c-cut"))
		waitServing(t, followBound, "while-c-cut", a, b)
		// C keeps serving its last version, and its KV calls fail
		// rather than answer stale.
		if _, bd := body(c.url + "/"); bd != before || !strings.Contains(bd, "--admin load19 ") {
			t.Fatalf("cut-off C answers %.80q, want its last version", bd)
		}
		if code, _ := body(c.adminURL + "/v1/kv/shared/keys/k"); code == http.StatusOK {
			t.Fatalf("cut-off C answered a KV read from NATS")
		}
		if err := proxy.Restore(); err != nil {
			t.Fatal(err)
		}
		t.Logf("C caught up %v after its link was restored", waitServing(t, 3*followBound, "while-c-cut", c))
	})

	t.Run("LoseNATSServer", func(t *testing.T) {
		cl.Stop(0)
		deployTo(t, b, versionModule("after-loss"))
		t.Logf("with one NATS server down, a deploy on B served by every node in %v", waitServing(t, 3*followBound, "after-loss", nodes...))
	})
}

// fill stores one object carrying surrogate key sk in c, through the
// cache's own path (a miss filled from a fetch).
func fill(t *testing.T, c *cache.Cache, sk string) {
	t.Helper()
	req := httptestRequest("http://origin.test/" + sk)
	resp, err := c.Do(context.Background(), req, cache.Key{Service: "svc", Backend: "origin", URL: req.URL.String()}, cache.Override{},
		func(ctx context.Context, r *http.Request) (*http.Response, error) {
			h := http.Header{"Cache-Control": {"max-age=600"}, "Surrogate-Key": {sk}}
			return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader("cached")), ContentLength: 6, Request: r}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	waitFor(t, time.Second, "the object to be stored", func() bool { return c.Stats().Objects == 1 })
}

func httptestRequest(url string) *http.Request { return httptest.NewRequest(http.MethodGet, url, nil) }
