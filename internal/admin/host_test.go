package admin_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
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

// hostEnv switches the test binary into a host process (see runHost), for
// the tests that kill the host.
const hostEnv = "EDGEHOST_ADMIN_TEST_HOST"

// hostCacheEnv passes the shared compile cache to a host process.
const hostCacheEnv = "EDGEHOST_ADMIN_TEST_CACHE"

// guests holds the fixture modules, built once in TestMain; sharedCache
// is a compile cache the tests share, so that each guest is compiled
// once, not once per test or per run (tests of the cache itself use their
// data dir's).
var (
	guests      = map[string][]byte{}
	sharedCache string
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(hostEnv); dir != "" {
		os.Exit(runHost(dir, os.Getenv(hostCacheEnv)))
	}
	tmp, err := os.MkdirTemp("", "edgehost-admin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The compiled code outlives the run (guesttest.SharedCompileCache),
	// in a directory of this package's own: TestRestart copies it whole.
	sharedCache = filepath.Join(guesttest.SharedCompileCache(tmp), "admin")
	if guests, err = guesttest.Fixtures(tmp, "examples/hello", "examples/proxy", "testdata/guests/fastlystyle", "testdata/guests/badimport", "testdata/guests/badsig", "testdata/guests/hellomany", "testdata/guests/preinitbad"); err != nil {
		fmt.Fprintln(os.Stderr, "building guest fixtures:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// testHost is a whole host on loopback: store, engine with its disk
// cache, one pool manager, downstream server and admin API.
type testHost struct {
	dir      string
	url      string // downstream
	adminURL string
	token    string
	admin    *admin.Admin
	store    *store.Store
	pools    *pool.Manager
	eng      *countingEngine
	stop     func()
}

type hostOpts struct {
	token    string
	maxBytes int64
	// ownCache uses the data dir's compile cache, not sharedCache.
	ownCache bool
	// tiered turns tiered compilation on for every module
	// (engine.Config.Tiered with TieredMinBytes 0).
	tiered bool
	// keep is admin.Config.KeptVersions plus one: 0 takes the default
	// (config.DefaultKeptVersions, as edgehost serve does), 1 keeps none.
	keep int
	// cache gives the host a readthrough cache (as edgehost serve has).
	cache bool
}

// newHost assembles a host the way edgehost serve does; logs go to w.
func newHost(ctx context.Context, dir string, o hostOpts, w io.Writer) (*testHost, error) {
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(dir)
	if err != nil {
		return nil, err
	}
	compileCache := sharedCache
	if o.ownCache || compileCache == "" {
		compileCache = st.CacheDir()
	}
	inner, err := guesttest.Engine(engine.Config{CacheDir: compileCache, Tiered: o.tiered})
	if err != nil {
		st.Close()
		return nil, err
	}
	eng := &countingEngine{Engine: inner}
	kept := config.DefaultKeptVersions
	if o.keep > 0 {
		kept = o.keep - 1
	}
	pools := pool.NewManager(log)
	metrics := admin.NewMetrics(pools)
	linker := hostcall.NewLinker(log)
	linker.OnError = metrics.HostcallError
	loader := &server.Loader{Engine: eng, Linker: linker, Pools: pools, Logger: log, Env: server.GuestEnv("test")}
	var rc *cache.Cache
	if o.cache {
		rc = cache.New(cache.Config{MaxBytes: 16 << 20})
		loader.Cache = rc
	}
	srv := server.New(server.Config{Logger: log, Metrics: metrics})
	adm, err := admin.New(admin.Config{Store: st, Server: srv, Loader: loader, Cache: rc, Metrics: metrics, Token: o.token, MaxUploadBytes: o.maxBytes, Logger: log,
		KeptVersions: kept})
	if err != nil {
		return nil, err
	}
	if _, err := adm.Restore(ctx); err != nil {
		return nil, err
	}
	ds := httptest.NewServer(srv)
	as := httptest.NewServer(adm.Handler())
	h := &testHost{dir: dir, url: ds.URL, adminURL: as.URL, token: o.token, admin: adm, store: st, pools: pools, eng: eng}
	var once sync.Once
	var stop func()
	h.stop = func() { once.Do(stop) } // idempotent: a test may stop the host before its cleanup
	stop = func() {
		as.Close()
		ds.Close()
		adm.Close(context.Background())
		// Retire, not only close, the active version: a parked ServeMany
		// sandbox must end before its module's code goes.
		if v := srv.Activate(nil); v != nil {
			server.Retire(context.Background(), v)
		}
		pools.Close()
		eng.Close(context.Background())
		st.Close()
	}
	return h, nil
}

// startHost starts a host on dir for the test's lifetime.
func startHost(t *testing.T, dir string, o hostOpts) *testHost {
	t.Helper()
	h, err := newHost(context.Background(), dir, o, &testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.stop)
	return h
}

// testLog passes host logs to t.Log.
type testLog struct{ t *testing.T }

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// runHost runs a host on dir (compile cache in cache, else the data
// dir's) until killed, printing its URLs on one line. It is the whole
// of a host process (TestMain), so it sets sharedCache, which newHost
// reads: without it every host process compiled into its data dir.
func runHost(dir, cache string) int {
	sharedCache = cache
	h, err := newHost(context.Background(), dir, hostOpts{}, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "host:", err)
		return 1
	}
	fmt.Printf("admin=%s downstream=%s\n", h.adminURL, h.url)
	select {}
}

// apiResult is an admin API answer.
type apiResult struct {
	status int
	body   map[string]any
	raw    string
}

func (r apiResult) errMsg() string {
	s, _ := r.body["error"].(string)
	return s
}

func (r apiResult) num(key string) int {
	f, _ := r.body[key].(float64)
	return int(f)
}

// call makes one admin API call; token "" sends no Authorization header.
func (h *testHost) call(t *testing.T, method, path string, body io.Reader, contentType, token string) apiResult {
	t.Helper()
	req, err := http.NewRequest(method, h.adminURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := apiResult{status: resp.StatusCode, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return r
}

// deploy uploads body and requires 201.
func (h *testHost) deploy(t *testing.T, body []byte, query string) apiResult {
	t.Helper()
	kind := "application/wasm"
	if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		kind = "application/gzip"
	}
	r := h.call(t, http.MethodPost, "/v1/modules"+query, bytes.NewReader(body), kind, h.token)
	if r.status != http.StatusCreated {
		t.Fatalf("deploy: %d %s", r.status, r.raw)
	}
	return r
}

func (h *testHost) activate(t *testing.T, n int) apiResult {
	t.Helper()
	r := h.call(t, http.MethodPost, fmt.Sprintf("/v1/modules/%d/activate", n), nil, "", h.token)
	if r.status != http.StatusOK {
		t.Fatalf("activate %d: %d %s", n, r.status, r.raw)
	}
	return r
}

// get fetches path from the downstream server.
func (h *testHost) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(h.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// tarEntry is one entry of a test package.
type tarEntry struct {
	name string
	data []byte
	typ  byte // tar.TypeReg when 0
	link string
}

func pack(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the fastest deflate: the race detector makes the default level take seconds per module
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: e.typ, Linkname: e.link}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// originManifest is a fastly.toml with the backend "origin" at url.
func originManifest(url string) []byte {
	return []byte(fmt.Sprintf("manifest_version = 3\nname = \"test\"\n\n[local_server.backends.origin]\nurl = %q\n", url))
}

// dirState lists every file under dir but the compile cache, with sizes
// and contents' hashes, for "nothing changed" checks.
func dirState(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "cache" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			out = append(out, rel+"/")
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %x", rel, len(b), sha256.Sum256(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// waitFor polls cond every few milliseconds until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
