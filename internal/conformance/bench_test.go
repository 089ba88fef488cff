package conformance_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/guesttest/testhost"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/server"
)

// The benchmarks run side by side on every engine, with examples/hello
// (built on first use) unless said otherwise:
//
//	go test -run '^$' -bench . ./internal/conformance/

var helloWasm []byte

func hello(b *testing.B) []byte {
	if helloWasm == nil {
		w, err := guesttest.Build("examples/hello", b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		helloWasm = w
	}
	return helloWasm
}

func benchEngines(b *testing.B, f func(b *testing.B, name string)) {
	for _, name := range guesttest.EngineNames() {
		b.Run(name, func(b *testing.B) { f(b, name) })
	}
}

// BenchmarkCompile: compiling and linking hello in a new engine, cold (no
// cache) and from a warm on-disk cache (a new engine each time, as after
// a restart).
func BenchmarkCompile(b *testing.B) {
	wasm := hello(b)
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
	benchEngines(b, func(b *testing.B, name string) {
		b.Run("cold", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				compile(b, name, "")
			}
		})
		b.Run("cached", func(b *testing.B) {
			dir := b.TempDir()
			compile(b, name, dir)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				compile(b, name, dir)
			}
		})
	})
}

func benchServer(b *testing.B, name string, wasm []byte) *server.Server {
	eng, err := guesttest.NewEngine(name, engine.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close(context.Background()) })
	return testhost.New(b, wasm, testhost.Config{Engine: eng, DiscardLogs: true}).Server
}

// BenchmarkSandbox: one request's sandbox (instantiate, _start, respond,
// guest stdio set up), no network; -cpu 1,2 shows the parallel scaling.
func BenchmarkSandbox(b *testing.B) {
	wasm := hello(b)
	benchEngines(b, func(b *testing.B, name string) {
		srv := benchServer(b, name, wasm)
		b.ReportAllocs()
		b.ResetTimer()
		defer guesttest.ReportCPU(b)()
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
	})
}

// BenchmarkHostcall: one hostcall round trip (guest to Go and back,
// fastly_http_resp.status_get), from a guest making 100,000 in a row;
// ns/hostcall excludes the sandbox's own cost, as does cpu-ns/hostcall
// (the process's CPU time, steadier on a shared machine); cpu-ns/op is
// the CPU time of both requests.
func BenchmarkHostcall(b *testing.B) {
	const n = 100000
	benchEngines(b, func(b *testing.B, name string) {
		srv := benchServer(b, name, guests["abiconf"])
		run := func(path string) time.Duration {
			start := time.Now()
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			if w.Code != 200 {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
			return time.Since(start)
		}
		var base, total, baseCPU, totalCPU time.Duration
		b.ResetTimer()
		stop := guesttest.ReportCPU(b)
		for i := 0; i < b.N; i++ {
			c0 := guesttest.CPUTime()
			base += run("/spin?0")
			c1 := guesttest.CPUTime()
			total += run("/spin?100000")
			baseCPU, totalCPU = baseCPU+c1-c0, totalCPU+guesttest.CPUTime()-c1
		}
		stop()
		b.ReportMetric(float64(total-base)/float64(b.N)/n, "ns/hostcall")
		b.ReportMetric(float64(totalCPU-baseCPU)/float64(b.N)/n, "cpu-ns/hostcall")
	})
}

// BenchmarkStdioSetup: the cost of giving a sandbox its stdout and stderr
// writers (on wasmtime, a pipe and a copying goroutine per stream).
func BenchmarkStdioSetup(b *testing.B) {
	wasm := guesttest.NopModule()
	link := hostcall.NewLinker(slog.New(slog.NewTextHandler(io.Discard, nil))).Link
	benchEngines(b, func(b *testing.B, name string) {
		eng, err := guesttest.NewEngine(name, engine.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer eng.Close(context.Background())
		m, err := eng.Compile(context.Background(), wasm, link())
		if err != nil {
			b.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			rc   engine.RunConfig
		}{
			{"none", engine.RunConfig{}},
			{"stdout+stderr", engine.RunConfig{Stdout: io.Discard, Stderr: os.Stderr}},
		} {
			b.Run(tc.name, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					if err := m.Run(context.Background(), tc.rc); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}
