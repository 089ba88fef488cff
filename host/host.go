// Package host embeds edgehost in a Go program: a Host serves downstream
// HTTP/1.1 on a net.Listener with one guest module (core Wasm built for
// Fastly Compute's ABI, abi/README.md) under a fastly.toml manifest, takes
// new versions of the module (Deploy) and reports its origin connection
// pools (Pools). It is what `edgehost serve MODULE` runs, without the
// admin API, TLS and the data dir's stored versions (README.md,
// "Embedding").
//
// A Host is safe for concurrent use. Every request runs in a new sandbox
// of the active version; a version replaced by Deploy finishes the
// requests it has in flight.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/engine/wasmtimeengine"
	"github.com/edgehost/edgehost/internal/engine/wazeroengine"
	"github.com/edgehost/edgehost/internal/erl"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/kvstore"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// ErrClosed is returned by Deploy, Shutdown and Close on a Host that
// Shutdown or Close already stopped.
var ErrClosed = errors.New("host: closed")

// Config says what a Host serves. Module is required; zero fields take
// the defaults named.
type Config struct {
	// Module is the guest: core Wasm bytes (a .wasm file's contents).
	Module []byte
	// Manifest is fastly.toml text (README.md, "fastly.toml"): backends,
	// stores, platform services and the [edgehost] settings; relative
	// paths in it are resolved against the current directory. nil, with
	// ManifestPath "", takes the defaults: no backends or stores and the
	// default [edgehost] settings.
	Manifest []byte
	// ManifestPath is a fastly.toml file read instead of Manifest;
	// relative paths in it are resolved against its folder. Setting both
	// is an error.
	ManifestPath string
	// Engine names the Wasm engine, "wazero" or "wasmtime" (wasmtime
	// needs a build with cgo); "" takes the manifest's [edgehost] engine,
	// whose default is wazero.
	Engine string
	// Logger receives the host's log lines and the guest's (stdout,
	// stderr, log endpoints); nil discards them.
	Logger *slog.Logger
	// CacheDir is a folder where compiled modules are kept, by module
	// hash, so a later Start or Deploy of the same module skips
	// compiling; "" compiles every time.
	CacheDir string
	// KVDir is the folder of the host's KV database (kv.db, made when
	// missing), which a manifest with KV stores needs; "" keeps none, and
	// then such a manifest is an error.
	KVDir string
}

// Host is a running edgehost host. Start makes one.
type Host struct {
	log    *slog.Logger
	eng    engine.Engine
	loader *server.Loader
	kv     *kvstore.DB // the KV database Start opened, or nil
	srv    *server.Server
	hs     *http.Server
	addr   net.Addr
	served chan struct{} // closed when hs.Serve returned

	mu       sync.Mutex // serialises Deploy and closing
	closed   bool
	next     int              // the number of the next version
	manifest *config.Manifest // the active version's
	retiring sync.WaitGroup   // versions Deploy replaced, finishing their requests
}

// Start loads cfg.Module as version "1" (ctx bounds the compile) and
// serves it on ln until Shutdown or Close; ln is closed with the Host. Dynamic backends may not
// reach ln's port on this host. Errors (ln is then closed): both
// Manifest and ManifestPath set, a manifest that does not parse or read
// (config errors naming the line), an unknown engine, a module that does
// not compile or link (naming the import), KV stores without KVDir.
func Start(ctx context.Context, ln net.Listener, cfg Config) (h *Host, err error) {
	defer func() {
		if err != nil {
			ln.Close()
		}
	}()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := readManifest(cfg.Manifest, cfg.ManifestPath)
	if err != nil {
		return nil, err
	}
	eng, err := newEngine(cfg.Engine, m.Host, cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	h = &Host{log: log, eng: eng, addr: ln.Addr(), served: make(chan struct{}), next: 1}
	started := h
	defer func() {
		if err != nil {
			started.release(context.Background())
		}
	}()
	guard, err := pool.NewGuard(pool.GuardConfig{
		Allowed:      m.Host.AllowedBackendTargets,
		AllowPrivate: m.Host.AllowPrivateBackends,
		Listeners:    []string{ln.Addr().String()},
	})
	if err != nil {
		return nil, fmt.Errorf("host: allowed_backend_targets: %w", err)
	}
	policy := &hostcall.Policy{Guard: guard}
	if m.Host.AllowedBackendTargets != nil && len(m.Host.AllowedBackendTargets) == 0 {
		policy.Disabled = true
	}
	hostSettings := m.Host
	h.loader = &server.Loader{
		Engine: eng,
		Linker: hostcall.NewLinker(log),
		Pools: pool.NewManagerConfig(pool.ManagerConfig{
			Logger: log, MaxPools: m.Host.MaxOriginPools, MaxInFlight: m.Host.MaxOriginRequests,
		}),
		Logger:     log,
		Policy:     policy,
		Env:        server.GuestEnvFor(m),
		RateLimits: erl.New(nil),
		Host:       &hostSettings,
	}
	if cfg.KVDir != "" {
		if h.kv, err = kvstore.Open(cfg.KVDir, time.Second); err != nil {
			return nil, fmt.Errorf("host: KV database: %w", err)
		}
		h.loader.KV = h.kv
	}
	h.srv = server.New(server.Config{
		Logger:                 log,
		MaxConcurrentSandboxes: m.Host.MaxConcurrentSandboxes,
		SandboxTimeout:         m.Host.SandboxTimeout,
		ReadStallTimeout:       m.Host.ClientReadStall,
		WriteStallTimeout:      m.Host.ClientWriteStall,
	})
	if err := h.load(ctx, cfg.Module, m); err != nil {
		return nil, err
	}
	hs, sln := h.srv.HTTPServer(ln, server.ListenConfig{})
	hs.ReadHeaderTimeout, hs.MaxHeaderBytes = 10*time.Second, m.Host.MaxHeaderBytes
	h.hs = hs
	go func() {
		defer close(h.served)
		if err := hs.Serve(sln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("host: serving stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return h, nil
}

// readManifest parses the manifest of a Config.
func readManifest(data []byte, path string) (*config.Manifest, error) {
	switch {
	case data != nil && path != "":
		return nil, errors.New("host: Manifest and ManifestPath are both set")
	case path != "":
		return config.Load(path)
	case data != nil:
		return config.Parse("fastly.toml", data, "")
	}
	return config.Default(), nil
}

// newEngine makes the engine name (or the manifest's) names, with the
// manifest's sandbox memory limit, caching compiled code in cacheDir.
func newEngine(name string, hs config.Host, cacheDir string) (engine.Engine, error) {
	if name == "" {
		name = hs.Engine
	}
	cfg := engine.Config{MemoryLimitBytes: uint64(hs.SandboxMemoryMiB) << 20, CacheDir: cacheDir,
		Tiered: hs.TieredCompile, TieredMinBytes: hs.TieredCompileMinKiB << 10}
	switch name {
	case "", "wazero":
		return wazeroengine.New(cfg)
	case "wasmtime":
		return wasmtimeengine.New(cfg)
	}
	return nil, fmt.Errorf("host: engine %q: edgehost has wazero and wasmtime", name)
}

// load compiles wasm under m as the next version and activates it; the
// version it replaces is retired in the background. The caller holds
// h.mu (or is Start).
func (h *Host) load(ctx context.Context, wasm []byte, m *config.Manifest) error {
	if len(wasm) == 0 {
		return errors.New("host: no module")
	}
	id := strconv.Itoa(h.next)
	v, err := h.loader.Load(ctx, id, wasm, m)
	if err != nil {
		return fmt.Errorf("host: version %s: %w", id, err)
	}
	h.next++
	h.manifest = m
	if old := h.srv.Activate(v); old != nil {
		h.retiring.Add(1)
		go func() {
			defer h.retiring.Done()
			if err := server.Retire(context.Background(), old); err != nil {
				h.log.Warn("host: retiring a version", "version", old.ID, "err", err)
			}
		}()
	}
	return nil
}

// Addr returns the address the Host serves on (its listener's).
func (h *Host) Addr() net.Addr { return h.addr }

// Version returns the id of the active version: "1" after Start, then
// "2", "3", ... after each Deploy; "" once the Host is stopped.
func (h *Host) Version() string {
	if v := h.srv.Active(); v != nil {
		return v.ID
	}
	return ""
}

// Deploy compiles wasm and makes it the active version, under manifest
// (fastly.toml text, resolved against the current directory; nil keeps
// the active version's manifest), and returns its id. Requests already
// running finish on the version they started on. The [edgehost] settings
// stay those Start read: a deployed manifest's own are ignored, as for a
// package deployed to `edgehost serve` (README.md, "Embedding"). Errors:
// ErrClosed, a manifest that does not parse, a module that does not
// compile or link; the active version is then unchanged.
func (h *Host) Deploy(ctx context.Context, wasm, manifest []byte) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return "", ErrClosed
	}
	m := h.manifest
	if manifest != nil {
		var err error
		if m, err = config.Parse("fastly.toml", manifest, ""); err != nil {
			return "", err
		}
	}
	if err := h.load(ctx, wasm, m); err != nil {
		return "", err
	}
	return h.srv.Active().ID, nil
}

// Pool is the state of one origin connection pool: one per backend
// target (scheme, address and TLS settings), shared by every version.
type Pool struct {
	// Scheme is "http" or "https"; Addr the origin's host:port.
	Scheme, Addr string
	// Requests counts requests sent through the pool; Opened the TCP
	// connections it opened; Reused the requests that went on a
	// connection an earlier request had used.
	Requests, Opened, Reused uint64
	// InUse and Idle are the open connections now carrying a request
	// and waiting for one.
	InUse, Idle int
}

// Pools returns the state of every origin pool, ordered by address, then
// scheme.
func (h *Host) Pools() []Pool {
	snaps := h.loader.Pools.Pools()
	out := make([]Pool, 0, len(snaps))
	for _, s := range snaps {
		out = append(out, Pool{
			Scheme: s.Settings.Scheme, Addr: s.Settings.Addr,
			Requests: s.Stats.Requests, Opened: s.Stats.Opened, Reused: s.Stats.Reused,
			InUse: s.Stats.InUse, Idle: s.Stats.Idle,
		})
	}
	return out
}

// Shutdown stops the Host gracefully: it closes the listener, waits for
// the requests in flight to end (each is bounded by the sandbox timeout,
// [edgehost] sandbox_timeout) and then releases the engine, the pools and
// the KV database. When ctx ends first it closes the remaining
// connections and returns ctx's error. Errors: ErrClosed when already
// stopped.
func (h *Host) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.closed = true
	err := h.hs.Shutdown(ctx)
	if err != nil {
		h.hs.Close()
	}
	<-h.served
	return errors.Join(err, h.release(ctx))
}

// Close stops the Host at once: it closes the listener and every
// connection, waits for the sandboxes still running to end (at most the
// sandbox timeout), and releases the engine, the pools and the KV
// database. Errors: ErrClosed when already stopped.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return ErrClosed
	}
	h.closed = true
	err := h.hs.Close()
	<-h.served
	return errors.Join(err, h.release(context.Background()))
}

// release retires the active version, waits for the replaced ones and
// closes what Start opened.
func (h *Host) release(ctx context.Context) error {
	var errs []error
	if h.srv != nil {
		if v := h.srv.Activate(nil); v != nil {
			errs = append(errs, server.Retire(ctx, v))
		}
	}
	h.retiring.Wait()
	if h.loader != nil {
		h.loader.Pools.Close()
		if h.kv != nil {
			errs = append(errs, h.kv.Close())
		}
	}
	errs = append(errs, h.eng.Close(ctx))
	return errors.Join(errs...)
}
