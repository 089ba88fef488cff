// Package jssdk_test serves guests built with Fastly's JS SDK
// (@fastly/js-compute, pinned in testdata/jsguests/package-lock.json) end
// to end: real loopback HTTP to edgehost, real origin servers behind it,
// on the engine EDGEHOST_TEST_ENGINE names.
//
// Every test shares one host serving testdata/jsguests/app.js, so the
// 11 MB module is built (or taken from guesttest.JSCacheDir) and compiled
// at most once per test binary: compiled code is kept in
// guesttest.SharedCompileCache, since a cold compile takes minutes under
// -race. Without node and npm the tests skip, unless CI is "true": then
// they fail.
package jssdk_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// shared is the one host of the test binary, started on first use.
var shared struct {
	once    sync.Once
	h       *jsHost
	err     error
	closers []func()
	dir     string // a temporary directory
	cache   string // the compiled-code cache
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgehost-jssdk-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared.dir = dir
	shared.cache = guesttest.SharedCompileCache(dir + "/compile-cache")
	code := m.Run()
	for i := len(shared.closers) - 1; i >= 0; i-- {
		shared.closers[i]()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// jsGuests caches BuildJS results for the test binary.
var jsGuests sync.Map // name -> []byte

// jsGuest returns testdata/jsguests/<name>.js built; it skips the test
// when node or npm is missing, unless CI=true.
func jsGuest(tb testing.TB, name string) []byte {
	tb.Helper()
	if b, ok := jsGuests.Load(name); ok {
		return b.([]byte)
	}
	b, took, err := guesttest.BuildJS(name)
	skipOrFail(tb, err)
	if took > 0 {
		tb.Logf("built %s.js with js-compute-runtime in %v (%d bytes)", name, took.Round(time.Millisecond), len(b))
	}
	jsGuests.Store(name, b)
	return b
}

func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if errors.Is(err, guesttest.ErrNoNode) && os.Getenv("CI") != "true" {
		tb.Skip(err)
	}
	tb.Fatal(err)
}

// jsHost is edgehost serving app.js, and the origins behind it.
type jsHost struct {
	url     string
	logs    *guesttest.LogBuffer
	pools   *pool.Manager
	origin  *jsOrigin // the static backend "origin"
	dyn     *jsOrigin // the target of dynamic backends
	version string    // the deployed version id
	compile time.Duration
}

const appVersion = "7"

// app returns the shared host, starting it on first use.
func app(t *testing.T) *jsHost {
	t.Helper()
	wasm := jsGuest(t, "app") // skips or fails here; cached after the first
	shared.once.Do(func() { shared.h, shared.err = startApp(wasm) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	t.Cleanup(func() { shared.h.checkNoStubs(t) })
	return shared.h
}

func startApp(wasm []byte) (*jsHost, error) {
	h := &jsHost{logs: &guesttest.LogBuffer{}, version: appVersion}
	h.origin, h.dyn = newJSOrigin(), newJSOrigin()
	shared.closers = append(shared.closers, h.origin.Close, h.dyn.Close)
	manifest := fmt.Sprintf(`manifest_version = 3
name = "jssdk-test"

[local_server.backends.origin]
url = %q

[local_server.config_stores.settings]
format = "inline-toml"
[local_server.config_stores.settings.contents]
greeting = "hello from the config store"

[local_server.log_endpoints.applog]

%s
[edgehost]
allowed_backend_targets = ["127.0.0.1"]
`, h.origin.URL, servicesManifest(h.origin.URL))
	m, err := config.Parse("fastly.toml", []byte(manifest), shared.dir)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	eng, err := guesttest.Engine(engine.Config{CacheDir: shared.cache})
	if err != nil {
		return nil, err
	}
	shared.closers = append(shared.closers, func() { eng.Close(context.Background()) })
	h.pools = pool.NewManager(log)
	shared.closers = append(shared.closers, h.pools.Close)
	// The test's origins are on loopback: local development policy.
	guard, err := pool.NewGuard(pool.GuardConfig{Allowed: m.Host.AllowedBackendTargets, AllowPrivate: true})
	if err != nil {
		return nil, err
	}
	loader := &server.Loader{
		Engine: eng, Linker: hostcall.NewLinker(log), Pools: h.pools, Logger: log,
		Policy: &hostcall.Policy{Guard: guard}, Env: server.GuestEnvFor(m),
	}
	start := time.Now()
	v, err := loader.Load(context.Background(), h.version, wasm, m)
	if err != nil {
		return nil, fmt.Errorf("load app.js: %w", err)
	}
	h.compile = time.Since(start)
	srv := server.New(server.Config{Logger: log})
	srv.Activate(v)
	hs := httptest.NewServer(srv)
	shared.closers = append(shared.closers, func() { server.Retire(context.Background(), v) }, hs.Close)
	h.url = hs.URL
	return h, nil
}

// checkNoStubs fails the test when the guest called a hostcall edgehost
// does not implement.
func (h *jsHost) checkNoStubs(t *testing.T) {
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, "does not implement") {
			t.Errorf("guest called an unimplemented hostcall: %s", line)
		}
	}
}

// do sends a request to the host and returns the response with its body
// read.
func (h *jsHost) do(t *testing.T, method, path string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return resp, b
}

// get is do with GET; it fails the test unless the status is 200.
func (h *jsHost) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, b := h.do(t, http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, b)
	}
	return resp, string(b)
}

// jsOrigin is an origin server for app.js:
//
//	/echo            "echo <request URI> x-from-js=<header>", X-Origin: yes
//	/barrier?key&n&i  answers "i=<i>" once n requests of key are in flight
//	                 together, "i=<i> alone" if they are not within 10 s
//	/delay?ms&i      answers "i=<i>" after ms milliseconds
//	/letters?n       n bytes of "abc…z0…9" repeated, written 64 KiB at a time
//	/sink            reads the body, answers it back with X-Length and
//	                 X-Sha256 (hex) of what it read
type jsOrigin struct {
	*httptest.Server
	mu       sync.Mutex
	seen     []seenReq
	barriers map[string]*barrier
}

type seenReq struct {
	path, uri, host, remote string
	header                  http.Header
}

type barrier struct {
	n, arrived int
	full       chan struct{}
}

func newJSOrigin() *jsOrigin {
	o := &jsOrigin{barriers: map[string]*barrier{}}
	o.Server = httptest.NewServer(http.HandlerFunc(o.serve))
	return o
}

func (o *jsOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.seen = append(o.seen, seenReq{r.URL.Path, r.RequestURI, r.Host, r.RemoteAddr, r.Header.Clone()})
	o.mu.Unlock()
	q := r.URL.Query()
	switch r.URL.Path {
	case "/echo":
		w.Header().Set("X-Origin", "yes")
		fmt.Fprintf(w, "echo %s x-from-js=%s", r.RequestURI, r.Header.Get("X-From-Js"))
	case "/barrier":
		n, _ := strconv.Atoi(q.Get("n"))
		key := q.Get("key")
		o.mu.Lock()
		b := o.barriers[key]
		if b == nil {
			b = &barrier{n: n, full: make(chan struct{})}
			o.barriers[key] = b
		}
		b.arrived++
		if b.arrived == b.n {
			close(b.full)
		}
		o.mu.Unlock()
		select {
		case <-b.full:
			fmt.Fprintf(w, "i=%s", q.Get("i"))
		case <-time.After(10 * time.Second):
			fmt.Fprintf(w, "i=%s alone", q.Get("i"))
		case <-r.Context().Done():
		}
	case "/delay":
		ms, _ := strconv.Atoi(q.Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			fmt.Fprintf(w, "i=%s", q.Get("i"))
		case <-r.Context().Done():
		}
	case "/letters":
		n, _ := strconv.Atoi(q.Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		body := letters(n)
		for len(body) > 0 {
			k := min(len(body), 64<<10)
			if _, err := w.Write(body[:k]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			body = body[k:]
		}
	case "/sink":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(b)
		w.Header().Set("X-Length", strconv.Itoa(len(b)))
		w.Header().Set("X-Sha256", hex.EncodeToString(sum[:]))
		w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// requests returns what the origin saw for path.
func (o *jsOrigin) requests(path string) []seenReq {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []seenReq
	for _, s := range o.seen {
		if s.path == path {
			out = append(out, s)
		}
	}
	return out
}

func letters(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	return b
}
