package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/edgehost/edgehost/host/config"
	"github.com/edgehost/edgehost/host/engine"
	"github.com/edgehost/edgehost/host/guesttest"
	"github.com/edgehost/edgehost/host/hostcall"
	"github.com/edgehost/edgehost/host/pool"
	"github.com/edgehost/edgehost/host/server"
)

// The benchmarks run on the engine EDGEHOST_TEST_ENGINE names (wazero
// when unset):
//
//	go test -run '^$' -bench . -benchmem ./host/server/
//	EDGEHOST_TEST_ENGINE=wasmtime go test -run '^$' -bench . -benchmem ./host/server/
//
// Each reports cpu-ns/op beside ns/op: the process's CPU time per request,
// which a busy shared machine disturbs less than wall-clock time.

// benchServer serves the guest module wasm with manifest (config text,
// "" for none), with no network.
func benchServer(b *testing.B, wasm []byte, manifest string) *server.Server {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := guesttest.Engine(engine.Config{CacheDir: compileCache})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close(context.Background()) })
	m := config.Default()
	if manifest != "" {
		if m, err = config.Parse("fastly.toml", []byte(manifest), b.TempDir()); err != nil {
			b.Fatal(err)
		}
	}
	pools := pool.NewManager(log)
	b.Cleanup(pools.Close)
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pools, Logger: log, Policy: localDev(b)}
	v, err := loader.Load(context.Background(), "1", wasm, m)
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(server.Config{Logger: log})
	srv.Activate(v)
	b.Cleanup(func() { server.Retire(context.Background(), v) })
	return srv
}

// BenchmarkSandbox measures one request's sandbox cost, no network:
// examples/hello (instantiate, _start, respond), the same handler with
// sandbox reuse (testdata/guests/hellomany: a parked sandbox serves it),
// and examples/hello built with TinyGo (skipped without TinyGo, see
// guesttest.RequireTinyGo).
func BenchmarkSandbox(b *testing.B) {
	for _, guest := range []string{"hello", "hellomany", "hello-tinygo"} {
		b.Run(guest, func(b *testing.B) {
			wasm := guests[guest]
			if guest == "hello-tinygo" {
				wasm = guesttest.RequireTinyGoFixtures(b, "examples/hello")["hello"]
			}
			srv := benchServer(b, wasm, "")
			req := httptest.NewRequest(http.MethodGet, "/bench", nil)
			b.ReportAllocs()
			b.ResetTimer()
			defer guesttest.ReportCPU(b)()
			for i := 0; i < b.N; i++ {
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkSandboxParallel is BenchmarkSandbox/hello with 8×GOMAXPROCS
// goroutines sending at once.
func BenchmarkSandboxParallel(b *testing.B) {
	srv := benchServer(b, guests["hello"], "")
	b.ReportAllocs()
	b.ResetTimer()
	defer guesttest.ReportCPU(b)()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/bench", nil)
		for pb.Next() {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req)
			if w.Code != 200 {
				b.Errorf("status %d: %s", w.Code, w.Body)
				return
			}
		}
	})
}

// BenchmarkProxy is one request through examples/dynamic-backend (a
// ServeMany guest registering a dynamic backend) to a loopback origin
// answering a short body: the guest's hostcalls, the origin pool and a
// real HTTP/1.1 round trip on a kept-alive connection. The downstream
// side has no network, as in BenchmarkSandbox.
func BenchmarkProxy(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello from the origin\n")
	}))
	defer origin.Close()
	srv := benchServer(b, guests["dynamic-backend"], exampleDynManifest(origin.Listener.Addr().String()))
	req := httptest.NewRequest(http.MethodGet, "/bench", nil)
	b.ReportAllocs()
	b.ResetTimer()
	defer guesttest.ReportCPU(b)()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkCompile measures compiling examples/hello, built with Go and
// with TinyGo (skipped without TinyGo), on the selected engine: cold (no
// compiled-code cache) and cached (the engine's on-disk cache already
// holds it, as after a restart).
func BenchmarkCompile(b *testing.B) {
	link := hostcall.NewLinker(nil).Link
	compile := func(b *testing.B, wasm []byte, dir string) {
		eng, err := guesttest.Engine(engine.Config{CacheDir: dir})
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
	for _, guest := range []string{"hello", "hello-tinygo"} {
		b.Run(guest, func(b *testing.B) {
			wasm := guests[guest]
			if guest == "hello-tinygo" {
				wasm = guesttest.RequireTinyGoFixtures(b, "examples/hello")["hello"]
			}
			b.Logf("module size %d bytes", len(wasm))
			b.Run("cold", func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					compile(b, wasm, "")
				}
			})
			b.Run("cached", func(b *testing.B) {
				dir := b.TempDir()
				compile(b, wasm, dir)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					compile(b, wasm, dir)
				}
			})
		})
	}
}
