// Package admin is edgehost's admin API (README.md, "Deploying"): an
// echo server that receives module uploads, keeps them as versions in a
// store.Store, switches the active version of a server.Server
// atomically, and reports origin pools, health and Prometheus metrics.
//
//	POST /v1/modules                      upload a .wasm or a package .tar.gz; 201 {version, sha256, size, active}
//	                                      (?activate=false stages without activating)
//	GET  /v1/modules                      {active, versions: [...]}, newest first
//	POST /v1/modules/{version}/activate   switch to a stored version (roll back or forward)
//	GET  /v1/pools                        {pools: [...]}: every origin pool, its settings and counters
//	GET  /v1/services                     the active version's ACLs, geolocation, device detection, rate counters, shielding sites (names and sizes)
//	GET  /healthz                         {status: "ok", active, fleet: {node, connected} with a cluster}
//	GET  /v1/fleet                        fleet mode: the fleet's active version and every node (fleet.go)
//	GET  /                                the status page (HTML; see statusPage)
//	POST /ui/activate                     the status page's activate and roll-back buttons (a form)
//	GET  /metrics                         Prometheus text format (see Metrics)
//	POST /v1/purge/{surrogate_key}, POST /v1/purge, GET /v1/cache   the readthrough cache (see cache.go)
//
// Errors are JSON, {"error": "message"}, with 400 for a module that does
// not compile or link or an upload that is not a module or package, 401
// without a token, 403 with a wrong one, 404 for an unknown version, 413
// for an upload over the size limit, 500 for a host failure; in fleet
// mode also 409 for an activation that lost a compare-and-set race and
// 503 when NATS is unreachable.
package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/fleet"
	"github.com/edgehost/edgehost/internal/kvstore"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
	"github.com/edgehost/edgehost/internal/store"
)

// DefaultMaxUploadBytes is the upload size limit when Config.MaxUploadBytes
// is 0: 64 MiB, for the upload and for a package unpacked.
const DefaultMaxUploadBytes = 64 << 20

// TokenEnv is the environment variable holding the admin token, for the
// host and for the CLI's client commands.
const TokenEnv = "EDGEHOST_ADMIN_TOKEN"

// Config configures an Admin. Store, Server and Loader are required.
type Config struct {
	// Store holds the versions.
	Store *store.Store
	// Server is the downstream server whose active version the API sets.
	Server *server.Server
	// Loader compiles uploads; its Pools (one pool.Manager for the whole
	// host) are kept across versions and reported by GET /v1/pools.
	Loader *server.Loader
	// Cache, when set, is the host's readthrough cache, purged and reported
	// by the cache calls.
	Cache *cache.Cache
	// Metrics, when set, is served on GET /metrics and counts deploys.
	Metrics *Metrics
	// Token, when not empty, is required as "Authorization: Bearer TOKEN"
	// on every POST. Empty means no authentication, which CheckAddr allows
	// only on a loopback address.
	Token string
	// Pprof serves Go's runtime profiles (net/http/pprof) under
	// /debug/pprof/, behind the token; New refuses it without a token.
	Pprof bool
	// MaxUploadBytes caps an upload (and a package unpacked); 0 means
	// DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// Logger receives deploy and activation lines; nil discards them.
	Logger *slog.Logger
	// KV is the host's KV database, read and written by /v1/kv (kv.go);
	// nil answers those calls with 503.
	KV kvstore.Backend
	// GuestErrors, when set, holds the recent guest errors the status
	// page (GET /) lists; its Handler must be in the host logger.
	GuestErrors *GuestErrors
	// Engine names the engine, for the status page.
	Engine string
	// Fleet, when set, makes this host a node of a fleet (fleet.go;
	// README.md, "Fleet"); call RunFleet to follow it.
	Fleet *fleet.Fleet
	// AdminURL is this API's URL, reported to the fleet.
	AdminURL string
	// KeptVersions is how many of the most recently replaced versions keep
	// their compiled module open, so that re-activating one switches to it
	// without compiling or loading (kept.go; [edgehost] kept_versions,
	// default config.DefaultKeptVersions). 0 (the zero value) keeps none:
	// a replaced version's module is closed once its requests end.
	KeptVersions int
}

// Admin is the admin API. Its handler is safe for concurrent use.
type Admin struct {
	cfg  Config
	log  *slog.Logger
	echo *echo.Echo

	mu         sync.Mutex // serialises activations
	active     int        // stored version number active on cfg.Server, 0 if none
	activeKept bool       // the active version came from a kept module (kept.go)
	previous   int        // the stored version active before it, 0 if none (the status page's roll-back)
	fleet      fleetState
	fleetMu    sync.Mutex     // in fleet mode, one activation at a time from an entry (fleet.go); taken before mu
	kept       []*keptVersion // replaced versions whose modules are kept, the oldest first (kept.go)
	keptClosed bool           // Close began: keep no more
	retires    sync.WaitGroup // drains and closes of replaced versions
}

// CheckAddr refuses to serve the admin API on addr without a token unless
// addr is a loopback address (127.0.0.0/8, ::1 or localhost); an empty
// host (every interface) is not loopback. Errors: addr is not host:port,
// or the refusal, saying how to fix it.
func CheckAddr(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if token != "" {
		return nil
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("admin address %q is reachable from other machines and no token is set: set %s (or --admin-token), or listen on 127.0.0.1", addr, TokenEnv)
}

// New returns the admin API. It does not change the server's active
// version; call Restore for that.
func New(cfg Config) (*Admin, error) {
	if cfg.Store == nil || cfg.Server == nil || cfg.Loader == nil {
		return nil, errors.New("admin: Store, Server and Loader are required")
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	a := &Admin{cfg: cfg, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = a.errorHandler
	e.POST("/v1/modules", a.upload, a.auth)
	e.GET("/v1/modules", a.list)
	e.POST("/v1/modules/:version/activate", a.activateHandler, a.auth)
	e.GET("/v1/pools", a.pools)
	e.GET("/v1/services", a.services) // services.go
	e.GET("/healthz", a.health)
	e.GET("/v1/fleet", a.fleetInfo) // fleet.go
	a.routeKV(e)
	a.routeCache(e)
	e.GET("/", a.statusPage)
	e.POST("/ui/activate", a.uiActivate)
	if cfg.Metrics != nil {
		e.GET("/metrics", echo.WrapHandler(cfg.Metrics.Handler()))
	}
	if cfg.Pprof {
		if err := a.routePprof(e); err != nil {
			return nil, err
		}
	}
	a.echo = e
	return a, nil
}

// Handler returns the API's HTTP handler.
func (a *Admin) Handler() http.Handler { return a.echo }

// Restore activates the store's active version on the server, if there
// is one, and reports its number (0 when none). Errors: the version
// cannot be read or compiled.
func (a *Admin) Restore(ctx context.Context) (int, error) {
	n, err := a.cfg.Store.Active()
	if err != nil || n == 0 {
		return 0, err
	}
	v, err := a.load(ctx, n)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.swap(n, v, false)
	return n, nil
}

// Close closes the kept modules of replaced versions (kept.go) and waits
// (bounded by ctx) for replaced versions to finish their requests and be
// closed. It leaves the active version open.
func (a *Admin) Close(ctx context.Context) error {
	a.closeKeptAll()
	done := make(chan struct{})
	go func() { a.retires.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// load compiles stored version n.
func (a *Admin) load(ctx context.Context, n int) (*server.Version, error) {
	_, wasm, m, err := a.cfg.Store.Load(n)
	if err != nil {
		return nil, err
	}
	v, err := a.cfg.Loader.Load(ctx, strconv.Itoa(n), wasm, m)
	if err != nil {
		return nil, fmt.Errorf("version %d: %w", n, err)
	}
	return v, nil
}

// swap makes v (stored version n; fromKept: rebound from a kept module)
// active and retires the one it replaced once its requests are done,
// keeping its module when Config.KeptVersions allows (kept.go). a.mu must
// be held.
func (a *Admin) swap(n int, v *server.Version, fromKept bool) {
	old := a.cfg.Server.Activate(v)
	a.active, a.activeKept = n, fromKept
	if a.cfg.Metrics != nil {
		a.cfg.Metrics.activated(n)
	}
	if old != nil {
		a.retire(old, n)
	}
	for _, e := range a.evictKept(n) {
		a.retires.Add(1)
		go func() {
			defer a.retires.Done()
			a.closeKept(e, "evicted")
		}()
	}
}

// activate persists n as active and switches the server to v (fromKept:
// rebound from a kept module, kept.go).
func (a *Admin) activate(n int, v *server.Version, fromKept bool) (previous int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.cfg.Store.SetActive(n); err != nil {
		return 0, err
	}
	previous = a.active
	if previous != 0 && previous != n {
		a.previous = previous
	}
	a.swap(n, v, fromKept)
	return previous, nil
}

// awaitOptimized returns once v runs optimized code when v is to replace
// a version that serves now: a deploy onto live traffic keeps the old
// version serving until the new one's optimized compile ends, so no
// request runs on the interpreter (README.md, "Tiered compilation"). A
// first version, or one that is only stored, starts at once. Errors: the
// cause of ctx's end (the uploader went away).
func (a *Admin) awaitOptimized(ctx context.Context, v *server.Version, activate bool) error {
	t, ok := v.Module.(engine.Tiered)
	if !ok || !activate || a.cfg.Server.Active() == nil {
		return nil
	}
	select {
	case <-t.Optimized():
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// VersionInfo is a version as the API reports it: in the answer to
// POST /v1/modules, in VersionList, and in the answer to
// POST /v1/modules/{version}/activate (with Previous, the version that was
// active before, 0 for none).
type VersionInfo struct {
	store.Version
	Active   bool `json:"active"`
	Previous int  `json:"previous,omitempty"`
	// FromKept is true for a version activated from its kept module
	// (Config.KeptVersions): the activation switched to the compiled code
	// kept from when it last served, without compiling or loading. The
	// answer to POST /v1/modules/{version}/activate and the active
	// version in GET /v1/modules carry it.
	FromKept bool `json:"from_kept,omitempty"`
	// Kept is true, in GET /v1/modules, for a version that does not serve
	// and whose compiled module this host keeps: activating it is
	// instant.
	Kept bool `json:"kept,omitempty"`
	// Tier is the code the version's sandboxes run on, for a version
	// this host has loaded: the active one in GET /v1/modules, the
	// uploaded one in the answer to POST /v1/modules when activated.
	Tier *TierInfo `json:"tier,omitempty"`
}

// TierInfo is a loaded version's engine.TierStatus as the API reports it
// (README.md, "Engines").
type TierInfo struct {
	// Tier is what new sandboxes start on: "interpreter" or "optimized".
	Tier string `json:"tier"`
	// Compiling is true while the optimized code is being compiled.
	Compiling bool `json:"compiling,omitempty"`
	// Sandboxes counts the sandboxes started on each tier, for a version
	// that started on the interpreter.
	Sandboxes map[string]uint64 `json:"sandboxes,omitempty"`
	// SwitchedAfterMS is the time from the start of the compile to the
	// switch to optimized code, in milliseconds; absent before it.
	SwitchedAfterMS int64 `json:"switched_after_ms,omitempty"`
	// Error is why the optimized compile did not end in a switch.
	Error string `json:"error,omitempty"`
}

func tierInfo(v *server.Version) *TierInfo {
	st := v.Tier()
	ti := &TierInfo{Tier: st.Tier, Compiling: st.Compiling, Sandboxes: st.Runs, SwitchedAfterMS: st.SwitchedAfter.Milliseconds()}
	if st.Err != nil {
		ti.Error = st.Err.Error()
	}
	return ti
}

// VersionList is the answer to GET /v1/modules: versions newest first.
type VersionList struct {
	Active   int           `json:"active"`
	Versions []VersionInfo `json:"versions"`
}

// upload handles POST /v1/modules.
func (a *Admin) upload(c echo.Context) error {
	r, w := c.Request(), c.Response()
	activate := true
	if s := c.QueryParam("activate"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return a.rejected(http.StatusBadRequest, "?activate=%q: want true or false", s)
		}
		activate = b
	}
	ifRev, err := ifRevision(c)
	if err != nil {
		return err
	}
	limit := a.cfg.MaxUploadBytes
	if r.ContentLength > limit {
		return a.rejected(http.StatusRequestEntityTooLarge, "upload of %d bytes is over the %d-byte limit", r.ContentLength, limit)
	}
	// MaxBytesReader fails the read past the limit and closes the
	// connection, so an over-size body is never read whole.
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	var raw bytes.Buffer // in fleet mode, the upload as received, for the fleet's object store
	if a.cfg.Fleet != nil {
		body = io.TeeReader(body, &raw)
	}
	st, err := a.cfg.Store.Stage(body, limit)
	switch {
	case errors.Is(err, store.ErrTooLarge):
		return a.rejected(http.StatusRequestEntityTooLarge, "%v", err)
	case errors.Is(err, store.ErrInvalid):
		return a.rejected(http.StatusBadRequest, "%v", err)
	case err != nil:
		a.cfg.Metrics.deployMaybe("failed")
		return echo.NewHTTPError(http.StatusInternalServerError, err.Error())
	}
	defer st.Discard()
	start := time.Now()
	v, err := a.cfg.Loader.Load(r.Context(), "staged", st.Wasm, st.Manifest)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return a.rejected(http.StatusBadRequest, "upload canceled: %v", err)
		}
		return a.rejected(http.StatusBadRequest, "module does not load: %v", err)
	}
	if err := a.awaitOptimized(r.Context(), v, activate); err != nil {
		v.Module.Close(context.Background())
		return a.rejected(http.StatusBadRequest, "upload canceled while its optimized code compiled: %v", err)
	}
	compile := time.Since(start)
	if a.cfg.Fleet != nil {
		return a.fleetUpload(c, st, v, raw.Bytes(), activate, ifRev, compile)
	}
	rec, err := st.Commit()
	if err != nil {
		v.Module.Close(context.Background())
		a.cfg.Metrics.deployMaybe("failed")
		return echo.NewHTTPError(http.StatusInternalServerError, "storing the version: "+err.Error())
	}
	v.ID = strconv.Itoa(rec.Number)
	if activate {
		if _, err := a.activate(rec.Number, v, false); err != nil {
			v.Module.Close(context.Background())
			a.cfg.Metrics.deployMaybe("failed")
			return echo.NewHTTPError(http.StatusInternalServerError, fmt.Sprintf("version %d stored but not activated: %v", rec.Number, err))
		}
	} else {
		v.Module.Close(context.Background())
	}
	a.cfg.Metrics.deployMaybe("ok")
	info := VersionInfo{Version: rec, Active: activate}
	if activate {
		info.Tier = tierInfo(v)
	}
	a.log.Info("deployed", "version", rec.Number, "sha256", rec.SHA256, "size", rec.Size, "package", rec.Package,
		"active", activate, "compile", compile, "tier", v.Tier().Tier)
	return c.JSON(http.StatusCreated, info)
}

// fleetUpload is the end of upload in fleet mode: the version is stored
// in the fleet (numbered there), copied locally, and activated through
// the fleet's entry.
func (a *Admin) fleetUpload(c echo.Context, st *store.Staged, v *server.Version, raw []byte, activate bool, ifRev *uint64, compile time.Duration) error {
	ctx := c.Request().Context()
	n, err := a.cfg.Fleet.Publish(ctx, raw)
	if err != nil {
		v.Module.Close(context.Background())
		a.cfg.Metrics.deployMaybe("failed")
		return fleetHTTPError(err)
	}
	rec, err := st.CommitAs(n)
	if err != nil {
		v.Module.Close(context.Background())
		a.cfg.Metrics.deployMaybe("failed")
		return echo.NewHTTPError(http.StatusInternalServerError, fmt.Sprintf("version %d stored in the fleet, not in the local copy: %v", n, err))
	}
	v.ID = strconv.Itoa(n)
	if activate {
		handed := false // fleetActivate closes v once it has it
		_, _, err := a.fleetActivate(ctx, n, ifRev, func() (*server.Version, bool, error) { handed = true; return v, false, nil })
		if !handed {
			// Not activated, or the watch (follow) activated the version first.
			v.Module.Close(context.Background())
		}
		if err != nil {
			a.cfg.Metrics.deployMaybe("failed")
			var he *echo.HTTPError
			if errors.As(err, &he) {
				he.Message = fmt.Sprintf("version %d stored but not activated: %v", n, he.Message)
			}
			return err
		}
	} else {
		v.Module.Close(context.Background())
	}
	a.cfg.Metrics.deployMaybe("ok")
	a.log.Info("deployed to the fleet", "version", n, "sha256", rec.SHA256, "size", rec.Size, "package", rec.Package,
		"active", activate, "compile", compile)
	return c.JSON(http.StatusCreated, VersionInfo{Version: rec, Active: activate})
}

// rejected counts a refused upload and returns the error to answer.
func (a *Admin) rejected(code int, format string, args ...any) error {
	a.cfg.Metrics.deployMaybe("rejected")
	return echo.NewHTTPError(code, fmt.Sprintf(format, args...))
}

func (m *Metrics) deployMaybe(result string) {
	if m != nil {
		m.deploy(result)
	}
}

// list handles GET /v1/modules.
func (a *Admin) list(c echo.Context) error {
	versions, err := a.cfg.Store.List()
	if err != nil {
		return echo.NewHTTPError(http.StatusInternalServerError, err.Error())
	}
	a.mu.Lock()
	active, activeKept := a.active, a.activeKept
	a.mu.Unlock()
	kept := a.keptNumbers()
	out := VersionList{Active: active, Versions: []VersionInfo{}}
	loaded := a.cfg.Server.Active()
	for _, v := range versions {
		info := VersionInfo{Version: v, Active: v.Number == active}
		if info.Active && loaded != nil && loaded.ID == strconv.Itoa(v.Number) {
			info.Tier = tierInfo(loaded)
			info.FromKept = activeKept
		}
		info.Kept = !info.Active && kept[v.Number]
		out.Versions = append(out.Versions, info)
	}
	return c.JSON(http.StatusOK, out)
}

// activateHandler handles POST /v1/modules/{version}/activate.
func (a *Admin) activateHandler(c echo.Context) error {
	ifRev, err := ifRevision(c)
	if err != nil {
		return err
	}
	info, err := a.activateParamRev(c.Request().Context(), c.Param("version"), ifRev)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

// activateParam activates the stored version that param names (the
// activate call, and the status page's buttons). Errors are
// *echo.HTTPError: 400 not a version number, 404 not stored, 500 it does
// not load or cannot be made active.
func (a *Admin) activateParam(ctx context.Context, param string) (VersionInfo, error) {
	return a.activateParamRev(ctx, param, nil)
}

// activateParamRev is activateParam with, in fleet mode, the revision
// the fleet's active entry must be at (nil: the one read just before).
// Errors also 409 (lost the race) and 503 (NATS unreachable).
func (a *Admin) activateParamRev(ctx context.Context, param string, ifRev *uint64) (VersionInfo, error) {
	n, err := strconv.Atoi(param)
	if err != nil || n <= 0 {
		return VersionInfo{}, echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("version %q: want a version number such as 3 (see GET /v1/modules)", param))
	}
	rec, err := a.localCopy(ctx, n)
	if errors.Is(err, store.ErrNotFound) {
		return VersionInfo{}, echo.NewHTTPError(http.StatusNotFound, fmt.Sprintf("version %d does not exist; GET /v1/modules (edgehost versions) lists the stored ones", n))
	}
	if err != nil {
		if errors.Is(err, fleet.ErrUnavailable) {
			return VersionInfo{}, fleetHTTPError(err)
		}
		return VersionInfo{}, echo.NewHTTPError(http.StatusInternalServerError, err.Error())
	}
	if a.cfg.Fleet != nil {
		start := time.Now()
		previous, fromKept, err := a.fleetActivate(ctx, n, ifRev, func() (*server.Version, bool, error) {
			v, k, err := a.loadOrKept(ctx, n)
			if err != nil {
				return nil, false, echo.NewHTTPError(http.StatusInternalServerError, err.Error())
			}
			return v, k, nil
		})
		if err != nil {
			return VersionInfo{}, err
		}
		a.log.Info("activated in the fleet", "version", n, "previous", previous, "from_kept", fromKept, "took", time.Since(start))
		return VersionInfo{Version: rec, Active: true, Previous: previous, FromKept: fromKept}, nil
	}
	a.mu.Lock()
	already := a.active == n
	a.mu.Unlock()
	previous, fromKept := n, false
	if !already {
		start := time.Now()
		v, k, err := a.loadOrKept(ctx, n)
		if err != nil {
			return VersionInfo{}, echo.NewHTTPError(http.StatusInternalServerError, err.Error())
		}
		if previous, err = a.activate(n, v, k); err != nil {
			v.Module.Close(context.Background())
			return VersionInfo{}, echo.NewHTTPError(http.StatusInternalServerError, err.Error())
		}
		fromKept = k
		a.log.Info("activated", "version", n, "previous", previous, "from_kept", fromKept, "took", time.Since(start))
	}
	return VersionInfo{Version: rec, Active: true, Previous: previous, FromKept: fromKept}, nil
}

// PoolInfo is one origin pool as GET /v1/pools reports it. Durations are
// in milliseconds.
type PoolInfo struct {
	ID           uint64   `json:"id"`
	Scheme       string   `json:"scheme"`
	Addr         string   `json:"addr"`
	HostOverride string   `json:"host_override,omitempty"`
	TLS          *PoolTLS `json:"tls,omitempty"`
	Keepalive    struct {
		HTTPKeepaliveTimeMS int64 `json:"http_keepalive_time_ms"`
		TCPEnabled          bool  `json:"tcp_keepalive_enable"`
		TCPIdleMS           int64 `json:"tcp_keepalive_time_ms"`
		TCPIntervalMS       int64 `json:"tcp_keepalive_interval_ms"`
		TCPCount            int   `json:"tcp_keepalive_probes"`
	} `json:"keepalive"`
	Limits struct {
		MaxConnections int   `json:"max_connections"`
		MaxUse         int   `json:"max_use"`
		MaxLifetimeMS  int64 `json:"max_lifetime_ms"`
	} `json:"limits"`
	DontPool bool      `json:"dont_pool"`
	Stats    PoolStats `json:"stats"`
}

// PoolTLS is the TLS settings of an https pool (versions as crypto/tls
// numbers; CustomCA: the pool trusts only its backend's CA certificate).
type PoolTLS struct {
	SNIHostname  string `json:"sni_hostname,omitempty"`
	NoSNI        bool   `json:"no_sni,omitempty"`
	CertHostname string `json:"cert_hostname,omitempty"`
	CustomCA     bool   `json:"custom_ca,omitempty"`
	MinVersion   uint16 `json:"min_version,omitempty"`
	MaxVersion   uint16 `json:"max_version,omitempty"`
}

// PoolList is the answer to GET /v1/pools.
type PoolList struct {
	Pools []PoolInfo `json:"pools"`
}

// PoolStats is a pool's counters (pool.Stats; Closed by reason).
type PoolStats struct {
	Opened   uint64            `json:"opened"`
	Reused   uint64            `json:"reused"`
	Closed   map[string]uint64 `json:"closed"`
	InUse    int               `json:"in_use"`
	Idle     int               `json:"idle"`
	Requests uint64            `json:"requests"`
	Retries  uint64            `json:"retries"`
	Waits    uint64            `json:"waits"`
}

func poolView(p pool.Snapshot) PoolInfo {
	s := p.Settings
	out := PoolInfo{ID: p.ID, Scheme: s.Scheme, Addr: s.Addr, HostOverride: s.HostOverride, DontPool: s.DontPool}
	if s.Scheme == "https" {
		out.TLS = &PoolTLS{s.TLS.SNIHostname, s.TLS.NoSNI, s.TLS.CertHostname, s.TLS.CACertPEM != "", s.TLS.MinVersion, s.TLS.MaxVersion}
	}
	k := &out.Keepalive
	k.HTTPKeepaliveTimeMS = s.Keepalive.HTTPKeepaliveTime.Milliseconds()
	k.TCPEnabled = !s.Keepalive.TCPDisabled
	k.TCPIdleMS = s.Keepalive.TCPIdle.Milliseconds()
	k.TCPIntervalMS = s.Keepalive.TCPInterval.Milliseconds()
	k.TCPCount = s.Keepalive.TCPCount
	out.Limits.MaxConnections = s.Limits.MaxConnections
	out.Limits.MaxUse = s.Limits.MaxUse
	out.Limits.MaxLifetimeMS = s.Limits.MaxLifetime.Milliseconds()
	st := p.Stats
	out.Stats = PoolStats{Opened: st.Opened, Reused: st.Reused, Closed: closedByReason(st.Closed),
		InUse: st.InUse, Idle: st.Idle, Requests: st.Requests, Retries: st.Retries, Waits: st.Waits}
	return out
}

// pools handles GET /v1/pools.
func (a *Admin) pools(c echo.Context) error {
	out := PoolList{Pools: []PoolInfo{}}
	if a.cfg.Loader.Pools != nil {
		for _, p := range a.cfg.Loader.Pools.Pools() {
			out.Pools = append(out.Pools, poolView(p))
		}
	}
	return c.JSON(http.StatusOK, out)
}

// health handles GET /healthz.
func (a *Admin) health(c echo.Context) error {
	a.mu.Lock()
	active := a.active
	a.mu.Unlock()
	out := map[string]any{"status": "ok", "active": active}
	if a.cfg.Fleet != nil {
		// Still 200: a node cut off from NATS serves its active version.
		out["fleet"] = map[string]any{"node": a.cfg.Fleet.Node(), "connected": a.cfg.Fleet.Connected()}
	}
	return c.JSON(http.StatusOK, out)
}

// auth is the middleware of mutating calls: with a token configured, a
// missing or malformed Authorization header is 401 and a wrong token 403.
// The header is "Bearer", in any case (RFC 9110, section 11.1: the scheme
// is case-insensitive), one or more spaces, then the token exactly: no
// other whitespace and nothing trimmed from it (RFC 9110, section 11.3;
// a token68 holds no whitespace, so one that does is malformed). Tokens
// are compared in constant time (as sha256 digests, so the length does
// not leak either).
func (a *Admin) auth(next echo.HandlerFunc) echo.HandlerFunc {
	want := sha256.Sum256([]byte(a.cfg.Token))
	return func(c echo.Context) error {
		if a.cfg.Token == "" {
			return next(c)
		}
		tok, ok := bearerToken(c.Request().Header.Get("Authorization"))
		if !ok {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="edgehost admin"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "this call needs \"Authorization: Bearer TOKEN\" with the host's admin token ("+TokenEnv+")")
		}
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "wrong admin token")
		}
		return next(c)
	}
}

// bearerToken returns the token of an Authorization header value
// "Bearer TOKEN" (see auth); ok is false when the value is not of that
// form.
func bearerToken(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" || strings.ContainsAny(tok, " \t\r\n\v\f") {
		return "", false
	}
	return tok, true
}

// errorHandler answers every error as {"error": message}.
func (a *Admin) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code, msg := http.StatusInternalServerError, err.Error()
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		msg = fmt.Sprint(he.Message)
	}
	if code >= 500 {
		a.log.Error("admin API", "method", c.Request().Method, "path", c.Request().URL.Path, "err", msg)
	}
	if err := c.JSON(code, map[string]string{"error": msg}); err != nil {
		a.log.Debug("admin API: writing error", "err", err)
	}
}
