package hostcall

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/kvstore"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/secretstore"
)

// Env is the host-wide state shared by every session of one module
// version: static backends with their pools, config stores and
// dictionaries, limits and the dynamic backend policy. It is immutable once
// built; a deploy builds a new Env.
type Env struct {
	Logger *slog.Logger
	pools  *pool.Manager
	limits Limits
	policy *Policy

	backends     map[string]*backend
	configStores map[string]map[string]string
	dictionaries map[string]map[string]string
	envVars      [][2]string
	fastlyKeys   []string
	kv           kvstore.Backend
	kvNames      map[string]bool
	secretStores map[string]*secretstore.Store
	svc          services // services.go

	cache    *cache.Cache // nil: sends go straight to the pools
	cacheSvc string
	cacheGen uint64
}

// StaticBackend is a backend declared in fastly.toml.
type StaticBackend struct {
	Name     string
	Settings pool.Settings
	Timeouts pool.Timeouts
	// PathPrefix, when not "" or "/", is prepended to the path of every
	// request sent to the backend (the path of the backend's URL).
	PathPrefix string
	// Health is what fastly_backend.is_healthy answers: abi.HealthUnknown
	// (the zero value), abi.HealthHealthy or abi.HealthUnhealthy.
	Health uint32
}

// Limits are the per-sandbox limits enforced by hostcalls. Zero fields
// take the defaults named on each.
type Limits struct {
	// MaxPendingRequests caps backend requests in flight per sandbox
	// (default 64); beyond it send_async returns limitexceeded.
	MaxPendingRequests int
	// MaxBufferedBodyBytes caps the bytes a sandbox holds in host body
	// buffers (default 64 MiB); beyond it body writes return
	// limitexceeded. Streamed bodies do not count.
	MaxBufferedBodyBytes int64
	// MaxHeaderBytes caps the size of one request's or response's header
	// block built by a guest (default 96 KiB): httpheadtoolarge beyond. A
	// body's trailers have the same cap (limitexceeded beyond).
	MaxHeaderBytes int
	// MaxSandboxHeaderBytes caps the header and trailer bytes of every
	// block a sandbox's guest changed, together (default
	// DefaultMaxSandboxHeaderBytes, 16 MiB): limitexceeded beyond.
	MaxSandboxHeaderBytes int64
	// MaxHandles caps the handles (of every kind, dynamic backends
	// included) a sandbox holds at once (default DefaultMaxHandles, 4096):
	// beyond it the hostcalls that create one answer limitexceeded.
	MaxHandles int
	// MaxLogRecordBytes caps one fastly_log.write record (default
	// DefaultMaxLogRecordBytes, 64 KiB): limitexceeded beyond, nothing
	// logged.
	MaxLogRecordBytes int
	// LogBytesPerSecond is what one sandbox may log per second, with a
	// burst of as much (default DefaultLogBytesPerSecond, 1 MiB): a
	// record beyond answers limitexceeded and is dropped.
	LogBytesPerSecond int
}

func (l Limits) withDefaults() Limits {
	if l.MaxPendingRequests <= 0 {
		l.MaxPendingRequests = 64
	}
	if l.MaxBufferedBodyBytes <= 0 {
		l.MaxBufferedBodyBytes = 64 << 20
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = 96 << 10
	}
	if l.MaxSandboxHeaderBytes <= 0 {
		l.MaxSandboxHeaderBytes = DefaultMaxSandboxHeaderBytes
	}
	if l.MaxHandles <= 0 {
		l.MaxHandles = DefaultMaxHandles
	}
	if l.MaxLogRecordBytes <= 0 {
		l.MaxLogRecordBytes = DefaultMaxLogRecordBytes
	}
	if l.LogBytesPerSecond <= 0 {
		l.LogBytesPerSecond = DefaultLogBytesPerSecond
	}
	return l
}

// EnvConfig is what NewEnv builds an Env from.
type EnvConfig struct {
	// Logger receives the hostcalls' and guests' lines; nil discards them.
	Logger       *slog.Logger
	Pools        *pool.Manager
	Backends     []StaticBackend
	ConfigStores map[string]map[string]string
	Dictionaries map[string]map[string]string
	Limits       Limits
	// Policy decides which dynamic backends guests may register and what
	// their pools may dial; nil is the zero Policy (public addresses only).
	Policy *Policy
	// Env is the guest environment (FASTLY_* variables) every sandbox of
	// the version gets; GuestEnv returns it.
	Env [][2]string
	// FastlyKeys are the values of a downstream Fastly-Key header for
	// which fastly_key_is_valid answers 1 (fake_valid_fastly_keys in
	// fastly.toml); none by default.
	FastlyKeys []string
	// KV is the host's KV database and KVStores the names of the stores
	// the version may open (declared in its manifest, and made in KV by
	// the caller); KV may be nil when KVStores is empty.
	KV       kvstore.Backend
	KVStores []string
	// SecretStores are the version's secret stores, by name.
	SecretStores map[string]*secretstore.Store
	// Services are the ACLs, geolocation, device detection, rate limiting
	// and shielding sites (services.go).
	Services Services
	// Cache is the host's readthrough cache every send hostcall goes
	// through (README.md, "Caching"); nil sends every backend request
	// straight to its origin pool, with no X-Cache headers.
	Cache *cache.Cache
	// CacheService is the service the version's objects and purges belong
	// to (FASTLY_SERVICE_ID), and CacheGeneration its cache generation
	// (FASTLY_CACHE_GENERATION): ActivateCache makes it the service's.
	CacheService    string
	CacheGeneration uint64
}

// NewEnv builds an Env; each static backend gets its pool now. Errors: a
// backend whose Addr is not host:port.
func NewEnv(cfg EnvConfig) (*Env, error) {
	e := &Env{
		Logger:       cfg.Logger,
		pools:        cfg.Pools,
		limits:       cfg.Limits.withDefaults(),
		policy:       cfg.Policy,
		backends:     map[string]*backend{},
		configStores: cfg.ConfigStores,
		dictionaries: cfg.Dictionaries,
		envVars:      cfg.Env,
		fastlyKeys:   cfg.FastlyKeys,
		kv:           cfg.KV,
		kvNames:      map[string]bool{},
		secretStores: cfg.SecretStores,
		cache:        cfg.Cache,
		cacheSvc:     cfg.CacheService,
		cacheGen:     cfg.CacheGeneration,
	}
	for _, n := range cfg.KVStores {
		if e.kv == nil {
			return nil, fmt.Errorf("KV store %q: the host has no KV database", n)
		}
		e.kvNames[n] = true
	}
	if e.Logger == nil {
		e.Logger = slog.New(slog.DiscardHandler)
	}
	if e.policy == nil {
		e.policy = &Policy{}
	}
	if err := e.initServices(cfg.Services); err != nil {
		return nil, err
	}
	for _, sb := range cfg.Backends {
		b, err := newBackend(sb.Name, false, sb.Settings, sb.Timeouts, e.pools)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", sb.Name, err)
		}
		b.pathPrefix, b.health = sb.PathPrefix, sb.Health
		e.backends[sb.Name] = b
	}
	return e, nil
}

// Cache returns the readthrough cache the env's sends go through (nil:
// none).
func (e *Env) Cache() *cache.Cache { return e.cache }

// ActivateCache makes the env's cache generation (EnvConfig.CacheGeneration)
// its service's: when it differs from the one in force, the service's
// cached objects are dropped (cache.Cache.SetGeneration). The server calls
// it when the version becomes active. It returns the number of objects
// dropped; 0 without a cache.
func (e *Env) ActivateCache() int {
	if e.cache == nil {
		return 0
	}
	return e.cache.SetGeneration(e.cacheSvc, e.cacheGen)
}

// Pools returns the pool manager the env's backends use.
func (e *Env) Pools() *pool.Manager { return e.pools }

// GuestEnv returns a copy of the guest environment (EnvConfig.Env), in
// order, for engine.RunConfig.
func (e *Env) GuestEnv() [][2]string { return append([][2]string(nil), e.envVars...) }

// AppendGuestEnv appends the guest environment (EnvConfig.Env), in order,
// to dst; GuestEnvLen is how many variables that is.
func (e *Env) AppendGuestEnv(dst [][2]string) [][2]string { return append(dst, e.envVars...) }

// GuestEnvLen is how many variables the guest environment holds.
func (e *Env) GuestEnvLen() int { return len(e.envVars) }

// backend is a static or dynamic backend resolved to its pool.
type backend struct {
	name     string
	dynamic  bool
	host     string // without port
	port     uint16
	settings pool.Settings // effective
	timeouts pool.Timeouts // effective
	pool     *pool.Pool

	pathPrefix string // static backends: prepended to request paths
	health     uint32 // static backends: abi.Health*
}

func newBackend(name string, dynamic bool, s pool.Settings, t pool.Timeouts, pools *pool.Manager) (*backend, error) {
	host, portStr, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", s.Addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("address %q: bad port", s.Addr)
	}
	var p *pool.Pool
	if dynamic {
		// Released when the session ends (Session.Close); pools nothing
		// uses are evicted (pool.ManagerConfig.MaxPools).
		if p, err = pools.Acquire(s); err != nil {
			return nil, err
		}
	} else {
		p = pools.Pool(s)
	}
	return &backend{
		name: name, dynamic: dynamic, host: host, port: uint16(port),
		settings: p.Settings(), timeouts: t.Effective(), pool: p,
	}, nil
}

// lookupBackend finds name among the session's dynamic backends, then the
// static ones. Errors: inval for an unknown backend.
func (s *Session) lookupBackend(name string) (*backend, error) {
	if b, ok := s.dynamic[name]; ok {
		return b, nil
	}
	if b, ok := s.env.backends[name]; ok {
		return b, nil
	}
	return nil, statusErr(abi.Inval, "unknown backend %q", name)
}
