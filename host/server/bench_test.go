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

// BenchmarkSandboxHello measures one request's sandbox cost for
// examples/hello: instantiate, _start, respond (no network).
func BenchmarkSandboxHello(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := guesttest.Engine(engine.Config{CacheDir: compileCache})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close(context.Background())
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pool.NewManager(log), Logger: log}
	v, err := loader.Load(context.Background(), "1", guests["hello"], config.Default())
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(server.Config{Logger: log})
	srv.Activate(v)
	req := httptest.NewRequest(http.MethodGet, "/bench", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkSandboxHelloParallel is BenchmarkSandboxHello with
// GOMAXPROCS goroutines sending at once.
func BenchmarkSandboxHelloParallel(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := guesttest.Engine(engine.Config{CacheDir: compileCache})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close(context.Background())
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pool.NewManager(log), Logger: log}
	v, err := loader.Load(context.Background(), "1", guests["hello"], config.Default())
	if err != nil {
		b.Fatal(err)
	}
	srv := server.New(server.Config{Logger: log})
	srv.Activate(v)
	b.ReportAllocs()
	b.ResetTimer()
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
