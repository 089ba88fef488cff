// Package server is edgehost's downstream HTTP server: it runs one sandbox
// per request on the active module version, bounded by a host-wide cap on
// concurrent sandboxes and a per-sandbox wall-clock limit.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/hostcall"
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

	inflight  sync.WaitGroup // requests running on this version
	sandboxes sync.WaitGroup // sandbox goroutines, parked ones included
	mu        sync.Mutex
	parked    []*sandbox // sandboxes waiting in next_request_wait
	retiring  bool       // Retire began: no more inflight.Add, no parking
	// inline is set by Loader.Load when the module imports neither
	// next_request nor next_request_wait: its sandboxes can never park,
	// so each runs on its request's own goroutine (ServeHTTP), which
	// waits for the sandbox's end either way.
	inline bool
	// noVCPU is set by Loader.Load when the module does not import
	// get_vcpu_ms: nothing reads its sandboxes' CPU clock, so they run
	// without one (hostcall.Session.RunGuest).
	noVCPU bool
}

// Tier reports which code v's sandboxes run on: its module's
// engine.TierStatus when the module is tiered (engine.Config.Tiered),
// else engine.TierOptimized with no counts.
func (v *Version) Tier() engine.TierStatus {
	if t, ok := v.Module.(engine.Tiered); ok {
		return t.TierStatus()
	}
	return engine.TierStatus{Tier: engine.TierOptimized}
}

// Config configures a Server. Zero fields take the defaults named.
type Config struct {
	// Logger receives the server's lines; nil discards them.
	Logger *slog.Logger
	// MaxConcurrentSandboxes caps sandboxes running a request at once
	// (default 1024); beyond it a request gets 503 with Retry-After. A
	// sandbox blocked on its client gives its slot back for a waiting
	// place (MaxWaitingSandboxes).
	MaxConcurrentSandboxes int
	// SandboxTimeout is a sandbox's wall-clock limit (default 60 s); a
	// guest still running then is stopped and the client gets 504.
	SandboxTimeout time.Duration
	// Env holds extra guest environment variables every sandbox gets,
	// after its version's own (Loader.Env) and before FASTLY_TRACE_ID,
	// which is added per sandbox (see SandboxEnv).
	Env [][2]string
	// Metrics, when set, observes every request (see Metrics).
	Metrics Metrics
	// ReadStallTimeout bounds one read of a request body by a guest
	// (default DefaultReadStallTimeout, 10 s): a client that sends nothing
	// for that long is cut, and the guest's read fails.
	ReadStallTimeout time.Duration
	// WriteStallTimeout bounds one write of a response to the client
	// (default DefaultWriteStallTimeout, 10 s): a client that takes
	// nothing for that long is cut, and the guest's write fails.
	WriteStallTimeout time.Duration
	// MaxWaitingSandboxes caps, host-wide, the sandboxes that gave their
	// slot back because a read of the request body or a write of the
	// response blocked on the client for ClientWaitRelease (default
	// MaxConcurrentSandboxes; README.md, "Limits"). Such a sandbox keeps
	// its memory; with every waiting place taken a blocked sandbox keeps
	// its slot until the stall timeout.
	MaxWaitingSandboxes int
}

// Server serves downstream HTTP with the active version.
type Server struct {
	cfg    Config
	log    *slog.Logger
	active atomic.Pointer[Version]
	slots  chan struct{}  // one value per sandbox running a request
	waits  chan struct{}  // one value per sandbox waiting on its client without a slot
	logPC  atomic.Uintptr // the source of request lines, found once (logRequest)
}

// New returns a server with no active version (requests get 503 until
// Activate).
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConcurrentSandboxes <= 0 {
		cfg.MaxConcurrentSandboxes = 1024
	}
	if cfg.SandboxTimeout <= 0 {
		cfg.SandboxTimeout = 60 * time.Second
	}
	if cfg.ReadStallTimeout <= 0 {
		cfg.ReadStallTimeout = DefaultReadStallTimeout
	}
	if cfg.WriteStallTimeout <= 0 {
		cfg.WriteStallTimeout = DefaultWriteStallTimeout
	}
	if cfg.MaxWaitingSandboxes <= 0 {
		cfg.MaxWaitingSandboxes = cfg.MaxConcurrentSandboxes
	}
	return &Server{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxConcurrentSandboxes),
		waits: make(chan struct{}, cfg.MaxWaitingSandboxes)}
}

// Activate makes v the version new requests run on and returns the one
// it replaced (nil if none). Requests in flight finish on the old version;
// Retire waits for them. v's cache generation becomes its service's
// (hostcall.Env.ActivateCache): a changed generation empties the service's
// objects in the readthrough cache, which otherwise outlives the version.
func (s *Server) Activate(v *Version) *Version {
	if v != nil && v.Env != nil {
		if n := v.Env.ActivateCache(); n > 0 && s.log != nil {
			s.log.Info("cache generation changed: objects dropped", "version", v.ID, "dropped", n)
		}
	}
	return s.active.Swap(v)
}

// Active returns the active version, or nil.
func (s *Server) Active() *Version { return s.active.Load() }

// Retire waits until no request runs on v any more and every sandbox of
// v has ended (parked ones are told to end), then closes its compiled
// module. Call it after Activate replaced v.
func Retire(ctx context.Context, v *Version) error {
	Drain(v)
	return v.Module.Close(ctx)
}

// Drain is Retire without the close: it returns once no request runs on
// v any more and every sandbox of v has ended (parked ones are told to
// end), leaving v's compiled module open for Loader.Rebind. v serves no
// request again. Call it after Activate replaced v.
func Drain(v *Version) {
	v.mu.Lock()
	v.retiring = true
	v.mu.Unlock()
	v.inflight.Wait()
	v.mu.Lock()
	parked := v.parked
	v.parked = nil
	v.mu.Unlock()
	for _, sb := range parked {
		sb.inbox <- nil // ends its wait
	}
	v.sandboxes.Wait()
}

// acquire takes the active version for one request. The Add happens
// under v.mu before Retire began, so Retire's Wait cannot miss it; a
// version being retired was already replaced by Activate, so acquire
// loads again.
func (s *Server) acquire() *Version {
	for {
		v := s.active.Load()
		if v == nil {
			return nil
		}
		v.mu.Lock()
		if !v.retiring {
			v.inflight.Add(1)
			v.mu.Unlock()
			return v
		}
		v.mu.Unlock()
		if s.active.Load() == v {
			return nil // retired while still active: the server is stopping
		}
	}
}

// handoff is one downstream request handed to a sandbox, new or parked.
type handoff struct {
	id     string
	d      *hostcall.Downstream // points at ds
	done   chan result          // receives exactly one result
	ds     hostcall.Downstream
	client *client // the connection: stall timeouts, cut at the limit
}

// exchange is what ServeHTTP makes for one request, in one allocation:
// the handoff, the counting and stall-bounded writers and the guest's
// copy of the request.
type exchange struct {
	h  handoff
	cw countingWriter
	cl client
	gr http.Request
}

// result is how a request's sandbox work ended.
type result struct {
	out hostcall.Outcome
	err error // the sandbox's run error, if it ended with this request
}

// ServeHTTP runs r in a sandbox: a parked one of the active version that
// asked for another request (next_request), else a fresh one.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	conn := connWatch(r.Context())
	closeConn := smuggled(conn)
	if closeConn {
		w.Header().Set("Connection", "close")
	}
	// The slot is the client's (initClient) from here: a read or write
	// that blocks on the client gives it back while it waits.
	select {
	case s.slots <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 Service Unavailable: too many sandboxes running, retry shortly", http.StatusServiceUnavailable)
		s.observe(http.StatusServiceUnavailable, false, start)
		s.logRequest(r.Context(), r, "", "", http.StatusServiceUnavailable, nil, start, sandboxNone, 0)
		return
	}
	v := s.acquire()
	if v == nil {
		<-s.slots
		http.Error(w, "503 Service Unavailable: no module is active; deploy one", http.StatusServiceUnavailable)
		s.observe(http.StatusServiceUnavailable, false, start)
		s.logRequest(r.Context(), r, "", "", http.StatusServiceUnavailable, nil, start, sandboxNone, 0)
		return
	}
	defer v.inflight.Done()

	x := new(exchange)
	cw := &x.cw
	cw.ResponseWriter = w
	cl := &x.cl
	initClient(cl, cw, r, s.cfg.ReadStallTimeout, s.cfg.WriteStallTimeout, s.slots, s.waits)
	cl.closeConn = closeConn
	defer cl.finish()
	// The guest reads a copy with the stall-bounded body: net/http keeps
	// reading r.Body (its type tells whether the body was closed early).
	gr := &x.gr
	*gr = *r
	gr.Body = clientBody{cl}
	h := &x.h
	*h = handoff{
		id:   newRequestID(),
		done: make(chan result, 1),
		ds: hostcall.Downstream{
			Request:  gr,
			Writer:   clientWriter{cl},
			ClientIP: addrIP(r.RemoteAddr),
			ServerIP: localIP(r),
		},
		client: cl,
	}
	downstreamConn(r, &h.ds)
	h.d = &h.ds
	v.mu.Lock()
	var sb *sandbox
	if n := len(v.parked); n > 0 {
		sb = v.parked[n-1]
		v.parked = v.parked[:n-1]
	}
	v.mu.Unlock()
	kind := sandboxFresh
	switch {
	case sb != nil:
		kind = sandboxReused
		sb.inbox <- h
	case v.inline:
		// No goroutine to start and wake, and a stack that earlier
		// requests of the connection already grew.
		s.newSandbox(v, h).run(h)
	default:
		go s.newSandbox(v, h).run(h)
	}
	res := <-h.done
	s.observe(res.out.Status, true, start)
	s.logRequest(r.Context(), r, h.id, v.ID, res.out.Status, cw, start, kind, res.out.BackendRequests)
	// The attributes are built only for a warning: the request line
	// (logRequest) is logged above.
	attrs := func() []any {
		return []any{"request_id", h.id, "version", v.ID, "method", r.Method, "path", r.URL.Path,
			"status", res.out.Status, "duration", time.Since(start)}
	}
	switch {
	case res.err != nil:
		s.log.Warn("sandbox failed", append(attrs(), "err", res.err)...)
	case !res.out.Sent:
		s.log.Warn("guest sent no response", attrs()...)
	}
	if res.out.Aborted {
		// The client must see the streamed body as incomplete.
		panic(http.ErrAbortHandler)
	}
}

// sandbox is one running instance. It serves the request it was started
// for and, when the guest asks (next_request), further ones handed to it
// while it is parked. Each request has the wall-clock limit: past it the
// instance is stopped.
type sandbox struct {
	srv    *Server
	v      *Version
	inbox  chan *handoff   // nil: end the wait
	ctx    context.Context // the guest's, for its whole run
	cancel context.CancelCauseFunc
	cur    *handoff
	live   atomic.Pointer[handoff] // cur, for the time limit's goroutine
	held   result                  // cur's result, held until the sandbox parks or ends
	isHeld bool                    // held is set
	timer  *time.Timer             // the current request's wall-clock limit, reused
	park   *time.Timer             // Next's wait, reused
	logs   [2]*LogWriter           // point at logw
	logw   [2]LogWriter            // stdout's and stderr's, in the sandbox's allocation
}

// newSandbox makes the sandbox for first, a request no parked sandbox
// took; its run (on this goroutine or another) serves it.
func (s *Server) newSandbox(v *Version, first *handoff) *sandbox {
	v.sandboxes.Add(1)
	ctx, cancel := context.WithCancelCause(context.Background())
	sb := &sandbox{srv: s, v: v, inbox: make(chan *handoff, 1), ctx: ctx, cancel: cancel}
	sb.logw[0].init(s.log, first.id, "stdout")
	sb.logw[1].init(s.log, first.id, "stderr")
	sb.logs = [2]*LogWriter{&sb.logw[0], &sb.logw[1]}
	sb.begin(first)
	return sb
}

// run runs the guest to its end: the first request, and any the guest
// takes after it (next_request).
func (sb *sandbox) run(first *handoff) {
	s, v, ctx := sb.srv, sb.v, sb.ctx
	defer v.sandboxes.Done()
	defer sb.cancel(nil)
	sess := v.Env.NewSession(ctx, first.id, first.d)
	sess.SetReuse(sb)
	rc := engine.RunConfig{
		Args:   []string{"edgehost-guest"},
		Env:    SandboxEnv(v, first.id, s.cfg.Env),
		Stdout: sb.logs[0],
		Stderr: sb.logs[1],
	}
	guest := func() error { return v.Module.Run(hostcall.WithSession(ctx, sess), rc) }
	var runErr error
	if v.noVCPU {
		runErr = guest()
	} else {
		runErr = sess.RunGuest(guest)
	}
	errStatus := http.StatusInternalServerError
	if errors.Is(runErr, engine.ErrTimeout) {
		errStatus = http.StatusGatewayTimeout
	}
	out := sess.Finish(runErr, errStatus)
	sess.Close()
	flushLogs(rc.Stdout, rc.Stderr)
	if sb.isHeld {
		// The request was complete before the guest ended.
		sb.deliverHeld()
		if runErr != nil {
			s.log.Warn("sandbox failed after its request", "version", v.ID, "err", runErr)
		}
	} else if sb.cur != nil {
		sb.end(result{out: out, err: runErr})
	} else if runErr != nil && !errors.Is(runErr, engine.ErrTimeout) {
		s.log.Warn("parked sandbox failed", "version", v.ID, "err", runErr)
	}
}

// unpark leaves the parked list after a wait ran out. If a request (or
// Retire) picked this sandbox meanwhile, its handoff is on the way and is
// returned, to be served.
func (sb *sandbox) unpark() *handoff {
	v := sb.v
	v.mu.Lock()
	for i, p := range v.parked {
		if p == sb {
			v.parked = append(v.parked[:i], v.parked[i+1:]...)
			v.mu.Unlock()
			return nil
		}
	}
	v.mu.Unlock()
	return <-sb.inbox
}

// begin makes h the sandbox's current request and arms its time limit.
func (sb *sandbox) begin(h *handoff) {
	sb.cur = h
	sb.live.Store(h)
	for _, l := range sb.logs {
		l.SetRequestID(h.id)
	}
	if sb.timer != nil {
		sb.timer.Reset(sb.srv.cfg.SandboxTimeout)
		return
	}
	sb.timer = time.AfterFunc(sb.srv.cfg.SandboxTimeout, func() {
		sb.cancel(fmt.Errorf("request ran past the %v wall-clock limit", sb.srv.cfg.SandboxTimeout))
		// A hostcall blocked on the client (a read of a body that does
		// not come, a write the client does not take) returns now.
		if h := sb.live.Load(); h != nil {
			h.client.expire()
		}
	})
}

// end delivers the current request's result.
func (sb *sandbox) end(res result) {
	sb.timer.Stop()
	sb.live.Store(nil)
	sb.cur.done <- res
	sb.cur = nil
}

// Done implements hostcall.Reuse: the guest finished this request. The
// result is held until the sandbox has parked (Next) or ended, so the
// client sees its response complete only once the sandbox can take the
// next request; the request's time limit keeps running until then.
func (sb *sandbox) Done(out hostcall.Outcome) {
	if sb.cur != nil {
		sb.held, sb.isHeld = result{out: out}, true
	}
}

// deliverHeld ends the current request with the result Done held.
func (sb *sandbox) deliverHeld() {
	if sb.isHeld {
		res := sb.held
		sb.held, sb.isHeld = result{}, false
		sb.end(res)
	}
}

// Next implements hostcall.Reuse: park until a request is handed over.
func (sb *sandbox) Next(ctx context.Context, timeout time.Duration) (string, *hostcall.Downstream, bool) {
	v := sb.v
	v.mu.Lock()
	if v.retiring || sb.srv.active.Load() != v {
		v.mu.Unlock()
		sb.deliverHeld()
		return "", nil, false
	}
	v.parked = append(v.parked, sb)
	v.mu.Unlock()
	sb.deliverHeld()
	if sb.park == nil {
		sb.park = time.NewTimer(timeout)
	} else {
		sb.park.Reset(timeout)
	}
	defer sb.park.Stop()
	var h *handoff
	select {
	case h = <-sb.inbox: // nil: Retire ends the wait
	case <-sb.park.C:
		h = sb.unpark()
	case <-ctx.Done():
		h = sb.unpark()
	}
	if h == nil {
		return "", nil, false
	}
	sb.begin(h)
	return h.id, h.d, true
}

// NewRequestID returns a fresh request id: 16 random hex digits. Request
// ids tag log lines and are what downstream_client_request_id returns.
func NewRequestID() string { return newRequestID() }

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
	switch a := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr:
		return a.IP
	case net.Addr:
		return addrIP(a.String())
	}
	return nil
}
