package jssdk_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/guesttest/testhost"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
)

// The benchmarks run testdata/jsguests/hello.js on every engine:
//
//	go test -run '^$' -bench . -benchtime 3x ./internal/jssdk/
//
// A cold compile of the 11 MB module takes seconds, so a few iterations
// are enough (-benchtime Nx).

// BenchmarkJSCompile: compiling and linking hello.js in a new engine, cold
// (no cache) and from a warm on-disk cache (a new engine each time, as
// after a restart; cpu-ns/op is the process's CPU time per load:
// guesttest.ReportCPU). module-MB is the module's size.
func BenchmarkJSCompile(b *testing.B) {
	wasm := jsGuest(b, "hello")
	link := hostcall.NewLinker(slog.New(slog.NewTextHandler(io.Discard, nil))).Link
	compile := func(b *testing.B, name, dir string) {
		eng, err := guesttest.NewEngine(name, engine.Config{CacheDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		m, err := eng.Compile(context.Background(), wasm, link())
		if err != nil {
			b.Fatal(err)
		}
		m.Close(context.Background())
		eng.Close(context.Background())
	}
	for _, name := range guesttest.EngineNames() {
		b.Run(name, func(b *testing.B) {
			b.Run("cold", func(b *testing.B) {
				for b.Loop() {
					compile(b, name, "")
				}
				b.ReportMetric(float64(len(wasm))/(1<<20), "module-MB")
			})
			b.Run("cached", func(b *testing.B) {
				dir := b.TempDir()
				compile(b, name, dir)
				b.ResetTimer()
				stop := guesttest.ReportCPU(b)
				for b.Loop() {
					compile(b, name, dir)
				}
				stop()
			})
		})
	}
}

// BenchmarkJSSandbox: one request's sandbox cost for hello.js on each
// engine, no network: instantiate, run the JS runtime's start-up and the
// handler, respond.
func BenchmarkJSSandbox(b *testing.B) {
	benchRequests(b, "hello", "/bench", testhost.Config{}, func(w *httptest.ResponseRecorder) bool { return w.Body.String() == "hello from js\n" })
}

// BenchmarkJSSandboxReused: requests to testdata/jsguests/hellomany.js,
// which asks for sandbox reuse (setReusableSandboxOptions): one parked
// sandbox serves them in turn, as BenchmarkJSSandbox's hello would if
// every request did not start a sandbox of its own.
func BenchmarkJSSandboxReused(b *testing.B) {
	benchRequests(b, "hellomany", "/bench", testhost.Config{}, func(w *httptest.ResponseRecorder) bool { return strings.HasPrefix(w.Body.String(), "served ") })
}

// BenchmarkJSProxy: GET /static of testdata/jsguests/app.js on each
// engine, a fresh sandbox per request whose fetch goes through the static
// backend "origin" to a loopback origin (the origin pool, a real HTTP/1.1
// round trip on a kept-alive connection), the answer's body read in the
// guest and sent downstream. No downstream network, no readthrough cache.
func BenchmarkJSProxy(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Origin", "bench")
		io.WriteString(w, "from the origin\n")
	}))
	defer origin.Close()
	manifest := fmt.Sprintf("manifest_version = 3\n[local_server.backends.origin]\nurl = %q\n", origin.URL)
	guard, err := pool.NewGuard(pool.GuardConfig{AllowPrivate: true}) // the origin is on loopback
	if err != nil {
		b.Fatal(err)
	}
	benchRequests(b, "app", "/static", testhost.Config{Manifest: manifest, Policy: &hostcall.Policy{Guard: guard}}, func(w *httptest.ResponseRecorder) bool {
		return w.Body.String() == "from the origin\n" && w.Header().Get("X-Origin-Header") == "bench"
	})
}

// benchRequests serves GET path to the JS guest name on each engine
// (httptest recorder, no network) on a test host configured by cfg (its
// Engine is set per engine), each answer 200 and one ok takes. It reports
// the process's CPU time per request (cpu-ns/op, with its system part and
// minor page faults: guesttest.ReportCPU).
func benchRequests(b *testing.B, name, path string, cfg testhost.Config, ok func(w *httptest.ResponseRecorder) bool) {
	wasm := jsGuest(b, name)
	for _, engName := range guesttest.EngineNames() {
		b.Run(engName, func(b *testing.B) {
			eng, err := guesttest.NewEngine(engName, engine.Config{CacheDir: shared.cache})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { eng.Close(context.Background()) })
			cfg := cfg
			cfg.Engine, cfg.DiscardLogs = eng, true
			srv := testhost.New(b, wasm, cfg).Server
			req := httptest.NewRequest(http.MethodGet, path, nil)
			b.ReportAllocs()
			defer guesttest.ReportCPU(b)()
			for b.Loop() {
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK || !ok(w) {
					b.Fatalf("status %d: %q %v", w.Code, w.Body, w.Header())
				}
			}
		})
	}
}
