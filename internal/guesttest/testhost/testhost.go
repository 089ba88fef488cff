// Package testhost assembles an edgehost host in a test, the recipe the
// host's own tests share: manifest, log buffer, origin pools, loader,
// server, activation, and (Listen) a loopback HTTP listener in front.
// Everything it makes is closed by the test's cleanup.
//
// It is apart from guesttest because it imports the host packages
// (server, hostcall, pool), whose own tests import guesttest.
package testhost

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// Config says how to assemble a Host. Zero fields take the defaults named.
type Config struct {
	// Engine runs the guest. nil: guesttest.Engine(EngineConfig), the
	// engine EDGEHOST_TEST_ENGINE names, closed at cleanup.
	Engine       engine.Engine
	EngineConfig engine.Config
	// Manifest is fastly.toml text, parsed with a temporary directory as
	// its folder; "": config.Default().
	Manifest string
	// LogLevel is the least level Logs records (default info).
	LogLevel slog.Level
	// DiscardLogs sends the log lines nowhere (benchmarks); Logs stays
	// empty.
	DiscardLogs bool
	// Env is the guest environment; nil: server.GuestEnvFor(manifest).
	Env [][2]string
	// Policy is the dynamic backend policy (nil: hostcall's default,
	// public addresses only).
	Policy *hostcall.Policy
	// Pools configures the origin pools (nil: pool.NewManager's
	// defaults); its Logger is the Host's.
	Pools *pool.ManagerConfig
	// Server configures the server; its Logger is the Host's.
	Server server.Config
	// Cache is the readthrough cache the sends go through (nil: none, every
	// backend request goes to its origin).
	Cache *cache.Cache
}

// Host is an assembled host serving one module version.
type Host struct {
	Logs    *guesttest.LogBuffer // every log line of the host, text format
	Log     *slog.Logger
	Engine  engine.Engine
	Pools   *pool.Manager
	Loader  *server.Loader
	Version *server.Version // loaded as version "1" and active
	Server  *server.Server
	// Cache is Config.Cache: the host's cache (internal/cache), nil when the
	// test host has none.
	Cache *cache.Cache
}

// New loads wasm under cfg, activates it and returns the host; a failure
// to build or load ends the test (tb.Fatal).
func New(tb testing.TB, wasm []byte, cfg Config) *Host {
	tb.Helper()
	h := &Host{Logs: &guesttest.LogBuffer{}}
	var w io.Writer = h.Logs
	if cfg.DiscardLogs {
		w = io.Discard
	}
	h.Log = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: cfg.LogLevel}))
	m := config.Default()
	if cfg.Manifest != "" {
		var err error
		if m, err = config.Parse("fastly.toml", []byte(cfg.Manifest), tb.TempDir()); err != nil {
			tb.Fatalf("manifest: %v", err)
		}
	}
	h.Engine = cfg.Engine
	if h.Engine == nil {
		eng, err := guesttest.Engine(cfg.EngineConfig)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { eng.Close(context.Background()) })
		h.Engine = eng
	}
	if cfg.Pools != nil {
		pc := *cfg.Pools
		pc.Logger = h.Log
		h.Pools = pool.NewManagerConfig(pc)
	} else {
		h.Pools = pool.NewManager(h.Log)
	}
	tb.Cleanup(h.Pools.Close)
	env := cfg.Env
	if env == nil {
		env = server.GuestEnvFor(m)
	}
	h.Cache = cfg.Cache
	// Pre-initialized guests keep their snapshots beside the compiled
	// code, so each is made once per test run.
	h.Loader = &server.Loader{Engine: h.Engine, Linker: hostcall.NewLinker(h.Log), Pools: h.Pools, Logger: h.Log, Env: env, Policy: cfg.Policy, Cache: cfg.Cache,
		CacheDir: cfg.EngineConfig.CacheDir}
	v, err := h.Loader.Load(context.Background(), "1", wasm, m)
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	h.Version = v
	sc := cfg.Server
	sc.Logger = h.Log
	h.Server = server.New(sc)
	h.Server.Activate(v)
	tb.Cleanup(func() { server.Retire(context.Background(), v) })
	return h
}

// Listen serves the host on a loopback HTTP listener (httptest) until
// the test ends and returns its URL, e.g. "http://127.0.0.1:41234". The
// listener is the one edgehost serve uses for plain HTTP
// (Server.HTTPServer: it watches request framing).
func (h *Host) Listen(tb testing.TB) string {
	hs := httptest.NewUnstartedServer(h.Server)
	return h.serve(tb, hs)
}

// Serve is Listen on ln, a listener the test made (say, one whose address
// a dynamic backend policy needs before New); ln is closed when the test
// ends.
func (h *Host) Serve(tb testing.TB, ln net.Listener) string {
	return h.serve(tb, &httptest.Server{Listener: ln, Config: &http.Server{Handler: h.Server}})
}

func (h *Host) serve(tb testing.TB, hs *httptest.Server) string {
	srv, ln := h.Server.HTTPServer(hs.Listener, server.ListenConfig{})
	hs.Listener = ln
	hs.Config.ConnContext = srv.ConnContext
	hs.Start()
	tb.Cleanup(hs.Close)
	return hs.URL
}
