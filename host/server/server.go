// Package server is edgehost's downstream HTTP server: it runs one sandbox
// per request on the active module version, bounded by a host-wide cap on
// concurrent sandboxes and a per-sandbox wall-clock limit.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/host/engine"
	"github.com/edgehost/edgehost/host/hostcall"
)

// Version is one deployed module version: compiled code and the Env
// (manifest, backends) it runs with. It is immutable; the server swaps
// the active one atomically.
type Version struct {
	// ID names the version (a number for deployed versions, "dev" for a
	// module served from a file).
	ID     string
	Module engine.Module
	Env    *hostcall.Env

	inflight sync.WaitGroup
}

// Config configures a Server. Zero fields take the defaults named.
type Config struct {
	Logger *slog.Logger
	// MaxConcurrentSandboxes caps sandboxes running at once (default
	// 1024); beyond it a request gets 503 with Retry-After.
	MaxConcurrentSandboxes int
	// SandboxTimeout is a sandbox's wall-clock limit (default 60 s); a
	// guest still running then is stopped and the client gets 504.
	SandboxTimeout time.Duration
	// Env is the guest environment every sandbox gets (FASTLY_* variables);
	// FASTLY_TRACE_ID is added per request.
	Env [][2]string
}

// Server serves downstream HTTP with the active version.
type Server struct {
	cfg    Config
	log    *slog.Logger
	active atomic.Pointer[Version]
	slots  chan struct{}
}

// New returns a server with no active version (requests get 503 until
// Activate).
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxConcurrentSandboxes <= 0 {
		cfg.MaxConcurrentSandboxes = 1024
	}
	if cfg.SandboxTimeout <= 0 {
		cfg.SandboxTimeout = 60 * time.Second
	}
	return &Server{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxConcurrentSandboxes)}
}

// Activate makes v the version new requests run on and returns the one
// it replaced (nil if none). Requests in flight finish on the old version;
// Retire waits for them.
func (s *Server) Activate(v *Version) *Version { return s.active.Swap(v) }

// Active returns the active version, or nil.
func (s *Server) Active() *Version { return s.active.Load() }

// Retire waits until no request runs on v any more, then closes its
// compiled module. Call it after Activate replaced v.
func Retire(ctx context.Context, v *Version) error {
	v.inflight.Wait()
	return v.Module.Close(ctx)
}

// acquire takes the active version for one request. Add happens while
// the version is still active, so Retire cannot miss it.
func (s *Server) acquire() *Version {
	for {
		v := s.active.Load()
		if v == nil {
			return nil
		}
		v.inflight.Add(1)
		if s.active.Load() == v {
			return v
		}
		v.inflight.Done()
	}
}

// ServeHTTP runs one sandbox for r.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 Service Unavailable: too many sandboxes running, retry shortly", http.StatusServiceUnavailable)
		return
	}
	v := s.acquire()
	if v == nil {
		http.Error(w, "503 Service Unavailable: no module is active; deploy one", http.StatusServiceUnavailable)
		return
	}
	defer v.inflight.Done()

	id := newRequestID()
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.SandboxTimeout)
	defer cancel()
	sess := v.Env.NewSession(ctx, id, &hostcall.Downstream{
		Request:  r,
		Writer:   w,
		ClientIP: addrIP(r.RemoteAddr),
		ServerIP: localIP(r),
	})
	rc := engine.RunConfig{
		Args:   []string{"edgehost-guest"},
		Env:    append(append([][2]string(nil), s.cfg.Env...), [2]string{"FASTLY_TRACE_ID", id}, [2]string{"FASTLY_SERVICE_VERSION", v.ID}),
		Stdout: NewLogWriter(s.log, id, "stdout"),
		Stderr: NewLogWriter(s.log, id, "stderr"),
	}
	runErr := v.Module.Run(hostcall.WithSession(ctx, sess), rc)
	errStatus := http.StatusInternalServerError
	if errors.Is(runErr, engine.ErrTimeout) {
		errStatus = http.StatusGatewayTimeout
	}
	out := sess.Finish(runErr, errStatus)
	sess.Close()
	flushLogs(rc.Stdout, rc.Stderr)
	attrs := []any{"request_id", id, "version", v.ID, "method", r.Method, "path", r.URL.Path,
		"status", out.Status, "duration", time.Since(start)}
	switch {
	case runErr != nil:
		s.log.Warn("sandbox failed", append(attrs, "err", runErr)...)
	case !out.Sent:
		s.log.Warn("guest sent no response", attrs...)
	default:
		s.log.Debug("request", attrs...)
	}
	if out.Aborted {
		// The client must see the streamed body as incomplete.
		panic(http.ErrAbortHandler)
	}
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func addrIP(addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	return net.ParseIP(host)
}

func localIP(r *http.Request) net.IP {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return nil
	}
	return addrIP(a.String())
}
