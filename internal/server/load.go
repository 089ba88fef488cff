package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/erl"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/kvstore"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/preinit"
)

// Loader compiles guest modules into Versions: one engine, one hostcall
// linker, and the host-wide origin pools every version's backends use.
type Loader struct {
	Engine engine.Engine
	Linker *hostcall.Linker
	Pools  *pool.Manager
	// Logger receives load warnings and is handed to the hostcalls; nil
	// discards.
	Logger *slog.Logger
	// Policy is the dynamic backend policy; nil is the zero Policy (public
	// addresses only). One Policy for every version keeps pools shared.
	Policy *hostcall.Policy
	// Env is the base guest environment (FASTLY_* variables, from
	// GuestEnvFor or GuestEnv); Load adds FASTLY_SERVICE_VERSION.
	Env [][2]string
	// KV is the host's KV database (under the data dir), shared by every
	// version; nil when the host keeps none (then a manifest declaring KV
	// stores does not load).
	KV kvstore.Backend
	// RateLimits holds the host's rate counters and penalty boxes, shared
	// by every version (fastly_erl); nil gives each version its own.
	RateLimits *erl.Store
	// Progress, when set, is called before each compile with the version
	// id and the module's size in bytes; the function it returns (nil for
	// none) is called when the compile ends, with the compiled module
	// (nil on error; an engine.Tiered one may still be on the
	// interpreter, with its optimized code compiling in the background)
	// and the compile's error. The CLI shows a progress line on a
	// terminal with it.
	Progress func(id string, size int) func(mod engine.Module, err error)
	// Cache is the host's readthrough cache, shared by every version (it
	// outlives deploys, as Pools do); nil sends every backend request to
	// its origin. A version's objects belong to its FASTLY_SERVICE_ID; its
	// cache generation is its manifest's [edgehost] cache_generation when
	// that sets one (the version's guests then see it as
	// FASTLY_CACHE_GENERATION too), else FASTLY_CACHE_GENERATION of Env.
	Cache *cache.Cache
	// Host, when set, holds the host's own [edgehost] settings: their
	// per-sandbox limits apply to every version loaded, whatever the
	// version's manifest says (a package deployed through the admin API
	// carries its own fastly.toml). Nil takes each version's own.
	Host *config.Host
	// CacheDir, when set, keeps the snapshots of pre-initialized guests
	// (package preinit) by module hash, so that a restart or a re-deploy
	// of the same module starts from the same snapshot (and the engine's
	// compiled code for it) without running the guest's _initialize
	// again; the serve command points it at the compiled-code cache.
	// Empty makes each snapshot again at each load.
	CacheDir string
}

// Load compiles wasm and binds it to manifest m as version id; a
// pre-initialized guest (abi/README.md, "Pre-initialized modules") is
// first run to the end of its _initialize and compiled from the snapshot
// that leaves (preinit.Prepare). Parts of m that edgehost does not
// implement (m.Ignored) are named in one warning. m's KV stores are made
// in l.KV (storesConfig). Errors: an invalid module (wrapping
// engine.ErrInvalidModule), a failed pre-initialization (wrapping
// preinit.ErrInit or wasmopt.ErrNotSnapshottable), a link error naming
// the import, a backend that cannot be set up, KV stores without l.KV or
// a failed KV database write.
func (l *Loader) Load(ctx context.Context, id string, wasm []byte, m *config.Manifest) (*Version, error) {
	env, err := l.newEnv(id, m)
	if err != nil {
		return nil, err
	}
	if len(m.Ignored) > 0 && l.Logger != nil {
		l.Logger.Warn("the manifest has parts edgehost does not implement yet; they are ignored",
			"version", id, "ignored", strings.Join(m.Ignored, ", "))
	}
	var done func(engine.Module, error)
	if l.Progress != nil {
		done = l.Progress(id, len(wasm))
	}
	orig := wasm
	wasm, pre, err := preinit.Prepare(ctx, wasm, preinit.Options{CacheDir: l.CacheDir, MemoryLimitBytes: l.memoryLimit(m)})
	if err != nil {
		if done != nil {
			done(nil, err)
		}
		return nil, err
	}
	if pre && l.Logger != nil {
		l.Logger.Debug("pre-initialized guest: sandboxes start from its deploy-time snapshot", "version", id, "snapshot_bytes", len(wasm))
	}
	link := l.Linker.Link()
	reuses, vcpu := false, false
	mod, err := l.Engine.Compile(ctx, wasm, func(imp engine.Import) (engine.HostFunc, error) {
		switch {
		case imp.Module == abi.ModuleHTTPDownstream && (imp.Name == "next_request" || imp.Name == "next_request_wait"):
			reuses = true
		case imp.Module == "fastly_compute_runtime" && imp.Name == "get_vcpu_ms":
			vcpu = true
		}
		return link(imp)
	})
	if done != nil {
		done(mod, err)
	}
	if err != nil {
		return nil, err
	}
	v := &Version{ID: id, Module: mod, Env: env, inline: !reuses, noVCPU: !vcpu}
	if t, ok := mod.(engine.Tiered); ok && l.Logger != nil {
		sum := sha256.Sum256(orig) // the module deployed, not its snapshot
		sha := hex.EncodeToString(sum[:])
		l.Logger.Info("serving on the interpreter while the optimized code compiles in the background",
			"version", id, "sha256", sha, "size", len(wasm))
		go func() {
			<-t.Optimized()
			// v.ID is the number the version was stored as by now
			// (admin sets it before it activates the version).
			switch st := t.TierStatus(); {
			case st.Err != nil:
				l.Logger.Warn("optimized compile failed or was stopped; the version stays on the interpreter",
					"sha256", sha, "err", st.Err)
			default:
				l.Logger.Info("switched to optimized code: new sandboxes run on it",
					"sha256", sha, "after", st.SwitchedAfter,
					"interpreter_sandboxes", st.Runs[engine.TierInterpreter])
			}
		}()
	}
	return v, nil
}

// memoryLimit is the sandbox memory limit in bytes that applies to m's
// sandboxes (l.Host's, else m's), 0 for the engines' default.
func (l *Loader) memoryLimit(m *config.Manifest) uint64 {
	h := m.Host
	if l.Host != nil {
		h = *l.Host
	}
	return uint64(h.SandboxMemoryMiB) << 20
}

// Rebind returns a new Version of drained's compiled module bound to
// manifest m as version id, without compiling: a new Env made from m as
// Load makes it (backends, stores, services, FASTLY_SERVICE_VERSION, the
// cache generation Server.Activate applies), no sandbox, no request. m
// must be the manifest drained's module was loaded with (the stored
// version's). drained must have been replaced and drained (Drain, not
// Retire); it is not used again, and the new Version owns the module (its
// Retire closes it). Errors: those of Load's Env (a backend that cannot
// be set up, KV stores without l.KV or a failed KV database write); the
// module is then still open, for the caller to close.
func (l *Loader) Rebind(id string, drained *Version, m *config.Manifest) (*Version, error) {
	env, err := l.newEnv(id, m)
	if err != nil {
		return nil, err
	}
	return &Version{ID: id, Module: drained.Module, Env: env, inline: drained.inline, noVCPU: drained.noVCPU}, nil
}

// newEnv makes the Env of version id from manifest m (Load, Rebind).
func (l *Loader) newEnv(id string, m *config.Manifest) (*hostcall.Env, error) {
	cfg := l.envConfig(id, m)
	if err := l.storesConfig(m, &cfg); err != nil {
		return nil, err
	}
	return hostcall.NewEnv(cfg)
}

func (l *Loader) envConfig(id string, m *config.Manifest) hostcall.EnvConfig {
	cfg := hostcall.EnvConfig{
		Logger:       l.Logger,
		Pools:        l.Pools,
		ConfigStores: m.ConfigStores,
		Dictionaries: m.Dictionaries,
		Policy:       l.Policy,
		Env:          append(append([][2]string(nil), l.Env...), [2]string{"FASTLY_SERVICE_VERSION", serviceVersion(id)}),
		FastlyKeys:   m.FastlyKeys,
		Services: hostcall.Services{
			ACLs: m.Services.ACLs, Geo: m.Services.Geo, Devices: m.Services.Devices,
			Shields: m.Services.Shields, RateLimits: l.RateLimits,
		},
		Limits: Limits(m.Host),
		Cache:  l.Cache,
	}
	if m.Host.IsSet("cache_generation") {
		cfg.Env = setEnv(cfg.Env, "FASTLY_CACHE_GENERATION", strconv.FormatInt(m.Host.CacheGeneration, 10))
	}
	for _, kv := range cfg.Env {
		switch kv[0] {
		case "FASTLY_SERVICE_ID":
			cfg.CacheService = kv[1]
		case "FASTLY_CACHE_GENERATION":
			cfg.CacheGeneration, _ = strconv.ParseUint(kv[1], 10, 64)
		}
	}
	if l.Host != nil {
		cfg.Limits = Limits(*l.Host)
	}
	for name, b := range m.Backends {
		cfg.Backends = append(cfg.Backends, hostcall.StaticBackend{
			Name: name, Settings: b.Conn, Timeouts: b.Timeouts, PathPrefix: b.PathPrefix, Health: uint32(b.Health),
		})
	}
	return cfg
}

// setEnv returns env with name set to value, replacing an entry of that
// name or adding one.
func setEnv(env [][2]string, name, value string) [][2]string {
	for i, kv := range env {
		if kv[0] == name {
			env[i][1] = value
			return env
		}
	}
	return append(env, [2]string{name, value})
}

// Limits returns the per-sandbox limits of the [edgehost] settings h.
func Limits(h config.Host) hostcall.Limits {
	return hostcall.Limits{
		MaxPendingRequests:    h.MaxPendingRequests,
		MaxBufferedBodyBytes:  h.MaxBodyBytes,
		MaxHeaderBytes:        h.MaxHeaderBytes,
		MaxSandboxHeaderBytes: h.MaxSandboxHeaderBytes,
		MaxHandles:            h.MaxHandles,
		MaxLogRecordBytes:     h.MaxLogRecordBytes,
		LogBytesPerSecond:     h.LogBytesPerSec,
	}
}

// serviceVersion is FASTLY_SERVICE_VERSION for version id: the deployed
// version number, or 0 for a module that was not deployed ("dev",
// "welcome", "run"), as Fastly's local server gives.
func serviceVersion(id string) string {
	if n, err := strconv.ParseUint(id, 10, 32); err == nil {
		return strconv.FormatUint(n, 10)
	}
	return "0"
}

// GuestEnv returns the FASTLY_* environment of a host with the default
// [edgehost] settings and service id service.
func GuestEnv(service string) [][2]string {
	h := config.DefaultHost()
	h.ServiceID = service
	return guestEnv(h)
}

// GuestEnvFor returns the FASTLY_* environment m's [edgehost] settings
// give every sandbox (README.md, "WASI"). FASTLY_SERVICE_ID is [edgehost]
// service_id, else m's service_id, else m's name, else "edgehost-local".
// Load adds FASTLY_SERVICE_VERSION, and the server FASTLY_TRACE_ID.
func GuestEnvFor(m *config.Manifest) [][2]string {
	h := m.Host
	for _, id := range []string{m.ServiceID, m.Name, "edgehost-local"} {
		if h.ServiceID == "" {
			h.ServiceID = id
		}
	}
	return guestEnv(h)
}

func guestEnv(h config.Host) [][2]string {
	host := h.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	if host == "" {
		host = "localhost"
	}
	return [][2]string{
		{"FASTLY_CACHE_GENERATION", strconv.FormatInt(h.CacheGeneration, 10)},
		{"FASTLY_CUSTOMER_ID", h.CustomerID},
		{"FASTLY_HOSTNAME", host},
		{"FASTLY_IS_STAGING", "0"},
		{"FASTLY_POP", h.POP},
		{"FASTLY_REGION", h.Region},
		{"FASTLY_SERVICE_ID", h.ServiceID},
		{"EDGEHOST", "1"},
	}
}

// SandboxEnv is the whole environment of one sandbox of v: v's guest
// environment, then extra, then FASTLY_TRACE_ID (the sandbox's id: the id
// of the first request it serves). The server and edgehost run both use
// it, so a guest sees the same variables under each.
func SandboxEnv(v *Version, traceID string, extra [][2]string) [][2]string {
	env := make([][2]string, 0, v.Env.GuestEnvLen()+len(extra)+1)
	env = v.Env.AppendGuestEnv(env)
	env = append(env, extra...)
	return append(env, [2]string{"FASTLY_TRACE_ID", traceID})
}

// ReadModule reads a .wasm file. Errors name the file.
func ReadModule(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	return b, nil
}
