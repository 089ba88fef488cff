package pool

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// originIdleMargin is how long before an origin's idle timeout (announced
// or learned) the host retires an idle connection: half the timeout, at
// most this much.
const originIdleMargin = time.Second

// learnTTL is how long an origin idle timeout learned from the origin
// closing idle connections is trusted. Connections retired early teach
// nothing new, so the value is dropped after this and learned again.
const learnTTL = 5 * time.Minute

// Manager owns every origin pool of the host, keyed by Settings.Effective().
// Pools outlive sessions and module versions; backends (static or dynamic,
// any names) with equal effective settings share one pool. A Manager is
// safe for concurrent use.
type Manager struct {
	logger   *slog.Logger
	inflight *budget
	maxPools int
	sweep    *time.Timer

	mu     sync.Mutex
	pools  map[Settings]*Pool
	nextID uint64
	closed bool
}

// Defaults of ManagerConfig.
const (
	// DefaultMaxPools caps the pools of a host (ManagerConfig.MaxPools).
	DefaultMaxPools = 10000
	// DefaultPoolSweep is how often pools nothing uses are looked for.
	DefaultPoolSweep = 30 * time.Second
)

// ManagerConfig configures a Manager. Zero fields take the defaults named.
type ManagerConfig struct {
	// Logger receives the pools' connection opens and closes (with the
	// reason) at debug level; nil discards them.
	Logger *slog.Logger
	// MaxInFlight caps origin requests in flight host-wide, across every
	// pool: from Do until the response body is read to EOF or closed
	// (each holds an origin connection, so a file descriptor). Beyond it
	// Do fails at once with an error wrapping ErrPoolExhausted. 0 is no
	// cap.
	MaxInFlight int
	// MaxPools caps the pools (default DefaultMaxPools). Pools of dynamic
	// backends (Acquire) that no backend uses and that hold no connection
	// are evicted every PoolSweep; at the cap, Acquire evicts such pools
	// at once, then the least recently used unused ones (closing their
	// idle connections), and fails with ErrTooManyPools when every pool
	// is in use. Pools of static backends (Pool) are never evicted.
	MaxPools int
	// PoolSweep is how often unused pools are evicted (default
	// DefaultPoolSweep).
	PoolSweep time.Duration
}

// ErrTooManyPools is Acquire's error when the host has MaxPools pools
// and every one is in use.
var ErrTooManyPools = errors.New("pool: too many origin pools in use")

// budget counts what a host-wide cap bounds; max 0 is no cap.
type budget struct {
	n   atomic.Int64
	max int64
}

func (b *budget) take() bool {
	if b.max <= 0 {
		return true
	}
	if b.n.Add(1) > b.max {
		b.n.Add(-1)
		return false
	}
	return true
}

func (b *budget) give() {
	if b.max > 0 {
		b.n.Add(-1)
	}
}

// NewManager returns an empty Manager with the default ManagerConfig and
// logger (nil discards logs).
func NewManager(logger *slog.Logger) *Manager {
	return NewManagerConfig(ManagerConfig{Logger: logger})
}

// NewManagerConfig returns an empty Manager configured by cfg. Close
// stops its sweeps.
func NewManagerConfig(cfg ManagerConfig) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxPools <= 0 {
		cfg.MaxPools = DefaultMaxPools
	}
	if cfg.PoolSweep <= 0 {
		cfg.PoolSweep = DefaultPoolSweep
	}
	m := &Manager{logger: cfg.Logger, pools: make(map[Settings]*Pool), maxPools: cfg.MaxPools,
		inflight: &budget{max: int64(cfg.MaxInFlight)}}
	m.mu.Lock() // the timer may fire before m.sweep is set
	m.sweep = time.AfterFunc(cfg.PoolSweep, func() {
		m.evict(false)
		m.mu.Lock()
		if !m.closed {
			m.sweep.Reset(cfg.PoolSweep)
		}
		m.mu.Unlock()
	})
	m.mu.Unlock()
	return m
}

// Pool returns the pool for s.Effective(), creating it on first use, for
// a static backend: it is never evicted. It is safe for concurrent use.
// After Close it returns closed pools, whose Do fails with ErrClosed.
func (m *Manager) Pool(s Settings) *Pool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.poolLocked(s.Effective())
	p.pinned = true
	return p
}

// Acquire returns the pool for s.Effective() for a dynamic backend, which
// must Release it when it is done with it (its sandbox ends). Errors:
// ErrTooManyPools (see ManagerConfig.MaxPools).
func (m *Manager) Acquire(s Settings) (*Pool, error) {
	eff := s.Effective()
	m.mu.Lock()
	if p := m.pools[eff]; p != nil {
		p.users++
		m.mu.Unlock()
		return p, nil
	}
	full := len(m.pools) >= m.maxPools
	m.mu.Unlock()
	if full {
		m.evict(true)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pools[eff] == nil && len(m.pools) >= m.maxPools {
		return nil, fmt.Errorf("%w: %d pools", ErrTooManyPools, len(m.pools))
	}
	p := m.poolLocked(eff)
	p.users++
	return p, nil
}

// Release ends a use of p that Acquire began.
func (m *Manager) Release(p *Pool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.users > 0 {
		p.users--
	}
	p.lastUsed = time.Now()
}

func (m *Manager) poolLocked(eff Settings) *Pool {
	if p := m.pools[eff]; p != nil {
		return p
	}
	m.nextID++
	p := newPool(m.nextID, eff, m.logger)
	p.inflight = m.inflight
	if m.closed {
		p.close()
	}
	m.pools[eff] = p
	return p
}

// evict removes the pools that no backend uses and that hold no
// connection; with full, also the least recently used unused pools until
// the count is under MaxPools (their idle connections are closed).
func (m *Manager) evict(full bool) {
	m.mu.Lock()
	var gone, unused []*Pool
	for eff, p := range m.pools {
		if p.pinned || p.users > 0 {
			continue
		}
		if p.quiet() {
			delete(m.pools, eff)
			gone = append(gone, p)
		} else {
			unused = append(unused, p)
		}
	}
	if full && len(m.pools) >= m.maxPools {
		slices.SortFunc(unused, func(a, b *Pool) int { return a.lastUsed.Compare(b.lastUsed) })
		for _, p := range unused {
			if len(m.pools) < m.maxPools {
				break
			}
			delete(m.pools, p.s)
			gone = append(gone, p)
		}
	}
	m.mu.Unlock()
	for _, p := range gone {
		p.close()
	}
	if len(gone) > 0 {
		m.logger.Debug("origin pools evicted", "count", len(gone))
	}
}

// MaxInFlight returns the host-wide cap of origin requests in flight
// (ManagerConfig.MaxInFlight; 0 is no cap).
func (m *Manager) MaxInFlight() int { return int(m.inflight.max) }

// Len returns the number of pools.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.pools)
}

// Pools returns a snapshot of every pool, ordered by address, then scheme,
// then creation.
func (m *Manager) Pools() []Snapshot {
	m.mu.Lock()
	out := make([]Snapshot, 0, len(m.pools))
	for _, p := range m.pools {
		out = append(out, Snapshot{ID: p.id, Settings: p.s, Stats: p.Stats()})
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Snapshot) int {
		return cmp.Or(cmp.Compare(a.Settings.Addr, b.Settings.Addr),
			cmp.Compare(a.Settings.Scheme, b.Settings.Scheme),
			cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Close closes every idle connection and stops the pools' timers.
// Requests in flight finish; their connections are closed when they end
// instead of being kept. Later Do calls fail with ErrClosed.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.sweep.Stop()
	pools := make([]*Pool, 0, len(m.pools))
	for _, p := range m.pools {
		pools = append(pools, p)
	}
	m.mu.Unlock()
	for _, p := range pools {
		p.close()
	}
}

// Pool is the connection pool of one origin with one set of effective
// settings: one http.Transport (HTTP/1.1 only) plus what it lacks
// (max_use, max_lifetime, origin Keep-Alive clamping, a bounded wait at
// max_connections, counters). It is safe for concurrent use.
type Pool struct {
	id        uint64
	s         Settings // effective
	host      string   // the host of s.Addr, for the Guard
	logger    *slog.Logger
	transport *http.Transport
	tlsConfig *tls.Config
	tlsErr    error
	inflight  *budget // the manager's host-wide cap of requests in flight

	// Guarded by the Manager's mu.
	pinned   bool      // a static backend's pool: never evicted
	users    int       // dynamic backends using it (Acquire, Release)
	lastUsed time.Time // the last Release

	mu          sync.Mutex
	conns       map[*conn]struct{} // open connections
	dialing     int                // dials in progress
	pending     int                // request attempts waiting for a connection (GetConn to GotConn)
	nextConnID  uint64
	closed      bool
	learned     bool          // learnedIdle holds a learned origin idle timeout
	learnedIdle time.Duration // shortest idle time at which the origin closed a connection
	learnedAt   time.Time
	stats       Stats // counters; InUse and Idle are computed by Stats
}

func newPool(id uint64, s Settings, logger *slog.Logger) *Pool {
	p := &Pool{id: id, s: s, logger: logger, conns: make(map[*conn]struct{})}
	p.host, _, _ = net.SplitHostPort(s.Addr)
	maxIdle := math.MaxInt
	if s.Limits.MaxConnections > 0 {
		maxIdle = s.Limits.MaxConnections
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	p.transport = &http.Transport{
		DialContext:         p.dialContext,
		MaxConnsPerHost:     s.Limits.MaxConnections,
		MaxIdleConnsPerHost: maxIdle,
		// A backstop: the pool's own timer closes idle connections at
		// HTTPKeepaliveTime or earlier (see idleDeadlineLocked).
		IdleConnTimeout:       s.Keepalive.HTTPKeepaliveTime + time.Second,
		DisableKeepAlives:     s.DontPool,
		DisableCompression:    true, // a proxy passes bodies through as they are
		ExpectContinueTimeout: time.Second,
		Protocols:             &protocols,
	}
	if s.Scheme == "https" {
		p.tlsConfig, p.tlsErr = newTLSConfig(s)
		p.transport.DialTLSContext = p.dialTLSContext
	}
	return p
}

// Settings returns the pool's effective settings.
func (p *Pool) Settings() Settings { return p.s }

// Stats returns the pool's counters.
func (p *Pool) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats
	for c := range p.conns {
		if c.inflight {
			st.InUse++
		} else {
			st.Idle++
		}
	}
	return st
}

// close retires the idle connections and marks the pool closed.
func (p *Pool) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	var idle []*conn
	for c := range p.conns {
		if !c.inflight && !c.closed {
			idle = append(idle, c)
		}
	}
	p.mu.Unlock()
	for _, c := range idle {
		c.retire(reasonShutdown)
	}
	p.transport.CloseIdleConnections()
}

// quiet reports whether p holds no connection and no request waits.
func (p *Pool) quiet() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns) == 0 && p.dialing == 0 && p.pending == 0
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// countCloseLocked counts a closed connection once. It returns a function
// that logs the close, to be called after unlocking, or nil if c was
// counted already.
func (p *Pool) countCloseLocked(c *conn) func() {
	if c.counted {
		return nil
	}
	c.counted = true
	delete(p.conns, c)
	p.stats.Closed.add(c.reason)
	reason, uses := c.reason, c.uses
	return func() {
		p.logger.Debug("origin connection closed", "pool", p.id, "addr", p.s.Addr,
			"conn", c.id, "reason", reason.String(), "uses", uses,
			"age", time.Since(c.created).Round(time.Millisecond))
	}
}

// waitingLocked reports whether a request asking for a connection now has
// to wait for one to be released: the pool is at MaxConnections and every
// connection is in use or claimed by an earlier waiting request.
func (p *Pool) waitingLocked() bool {
	max := p.s.Limits.MaxConnections
	if max <= 0 {
		return false
	}
	busy := p.pending
	for c := range p.conns {
		if c.inflight {
			busy++
		}
	}
	return busy >= max
}

// acquire records that c was handed to a request. It returns the request's
// sequence number on c and whether this is c's last request (then the
// request asks the origin to close the connection after it). pending: the
// request was counted in p.pending.
func (p *Pool) acquire(c *conn, reused, pending bool) (seq int, last bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pending {
		p.pending--
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	c.uses++
	seq = c.uses
	if c.closed {
		// Retired a moment ago; the write fails with nothing written and
		// the Transport retries on another connection.
		return seq, false
	}
	c.idle, c.inflight = false, true
	if reused {
		p.stats.Reused++
	}
	l := p.s.Limits
	switch {
	case c.reason != reasonNone:
		return seq, true
	case l.MaxUse > 0 && c.uses >= l.MaxUse:
		c.reason = reasonMaxUse
		return seq, true
	case l.MaxLifetime > 0 && time.Since(c.created) >= l.MaxLifetime:
		c.reason = reasonLifetime
		return seq, true
	}
	return seq, false
}

// markIdle records that the Transport put c back in its idle list after
// request seq (httptrace PutIdleConn). It retires c at once when it
// reached a limit, else arms its idle timer.
func (p *Pool) markIdle(c *conn, seq int) {
	p.mu.Lock()
	if c.uses != seq || !c.inflight || c.closed {
		p.mu.Unlock()
		return
	}
	c.inflight, c.idle = false, true
	c.idleSince = time.Now()
	if p.closed && c.reason == reasonNone {
		c.reason = reasonShutdown
	}
	retire := c.reason != reasonNone || p.scheduleLocked(c)
	p.mu.Unlock()
	if retire {
		c.Close()
	}
}

// finish records the end of request seq on c (response body at EOF or
// closed, or the request failed). A connection the Transport did not put
// back idle is being closed; finish decides the reason and counts it if it
// is closed already.
func (p *Pool) finish(c *conn, seq int, err error, respClose bool) {
	p.mu.Lock()
	if c.uses != seq || !c.inflight {
		p.mu.Unlock()
		return
	}
	c.inflight = false
	switch {
	case err != nil && originClosed(c, err):
		c.reason = reasonOriginClose
	case err != nil:
		c.reason = reasonError
	case c.reason != reasonNone:
		// Planned: MaxUse, Lifetime, DontPool.
	case respClose || c.peerGone.Load():
		c.reason = reasonOriginClose
	default:
		// Not put back idle for a reason the pool cannot see.
		c.reason = reasonError
	}
	var logClose func()
	if c.closed {
		logClose = p.countCloseLocked(c)
	}
	p.mu.Unlock()
	if logClose != nil {
		logClose()
	}
}

// setOriginIdle records the origin's announced idle timeout for c (from
// request seq's response) and reschedules c if it is idle already.
func (p *Pool) setOriginIdle(c *conn, seq int, d time.Duration) {
	p.mu.Lock()
	if c.uses != seq || c.closed {
		p.mu.Unlock()
		return
	}
	c.originIdle, c.hasOriginIdle = d, true
	retire := c.idle && p.scheduleLocked(c)
	p.mu.Unlock()
	if retire {
		c.Close()
	}
}

// readFailed notes that a read on c failed: unless the pool closed c
// itself, the origin closed or reset it. An origin closing an idle
// connection teaches the pool the origin's idle timeout.
func (p *Pool) readFailed(c *conn, err error) {
	p.mu.Lock()
	if c.closed {
		p.mu.Unlock()
		return
	}
	c.peerGone.Store(true)
	var retire []*conn
	if c.idle && c.reason == reasonNone {
		c.reason = reasonOriginClose
		retire = p.learnLocked(c)
	}
	p.mu.Unlock()
	for _, o := range retire {
		o.Close()
	}
}

// transportClosedLocked decides why the Transport closed c, which carried
// no request, without the pool asking: the pool is shutting down; c was
// idle for HTTPKeepaliveTime (the Transport's IdleConnTimeout is a backstop
// a little longer than the pool's timer); else the origin closed it (with a
// TLS connection the pool's conn does not see the EOF: the TLS layer read
// the origin's close_notify alert). It returns idle connections to retire
// after learning the origin's idle timeout.
func (p *Pool) transportClosedLocked(c *conn) []*conn {
	since := c.created
	if c.idle {
		since = c.idleSince
	}
	switch {
	case c.peerGone.Load():
		c.reason = reasonOriginClose
	case p.closed:
		c.reason = reasonShutdown
	case time.Since(since) >= p.s.Keepalive.HTTPKeepaliveTime:
		c.reason = reasonIdleTimeout
	default:
		c.reason = reasonOriginClose
		if c.idle {
			return p.learnLocked(c)
		}
	}
	return nil
}

// learnLocked learns the origin's idle timeout from idle connection c,
// which the origin just closed, and reschedules the other idle
// connections; it returns those whose new deadline has passed.
func (p *Pool) learnLocked(c *conn) []*conn {
	d := time.Since(c.idleSince)
	now := time.Now()
	if !p.learned || d < p.learnedIdle || now.Sub(p.learnedAt) > learnTTL {
		p.learned, p.learnedIdle = true, d
		p.logger.Debug("origin idle timeout learned", "pool", p.id, "addr", p.s.Addr, "idle", d)
	}
	p.learnedAt = now
	var retire []*conn
	for o := range p.conns {
		if o != c && o.idle && !o.closed && o.reason == reasonNone && p.scheduleLocked(o) {
			retire = append(retire, o)
		}
	}
	return retire
}

// idleDeadlineLocked returns when idle connection c is to be closed, and
// why: after HTTPKeepaliveTime idle, before the origin's idle timeout runs
// out, or at the end of its lifetime, whichever comes first.
func (p *Pool) idleDeadlineLocked(c *conn) (time.Time, closeReason) {
	at, r := c.idleSince.Add(p.s.Keepalive.HTTPKeepaliveTime), reasonIdleTimeout
	origin, ok := c.originIdle, c.hasOriginIdle
	if p.learned && time.Since(p.learnedAt) < learnTTL && (!ok || p.learnedIdle < origin) {
		origin, ok = p.learnedIdle, true
	}
	if ok {
		keep := origin - min(origin/2, originIdleMargin)
		if t := c.idleSince.Add(keep); t.Before(at) {
			at, r = t, reasonOriginIdleTimeout
		}
	}
	if lt := p.s.Limits.MaxLifetime; lt > 0 {
		if t := c.created.Add(lt); t.Before(at) {
			at, r = t, reasonLifetime
		}
	}
	return at, r
}

// scheduleLocked arms idle connection c's timer for its deadline. When the
// deadline has passed it sets c's reason (unless decided already) and
// reports true: the caller closes c after unlocking.
func (p *Pool) scheduleLocked(c *conn) bool {
	at, r := p.idleDeadlineLocked(c)
	d := time.Until(at)
	if d <= 0 {
		if c.reason == reasonNone {
			c.reason = r
		}
		return true
	}
	// One timer per connection, made on its first idle period and reset
	// on every later one: a request costs no new timer.
	c.timerSeq = c.uses
	if c.timer == nil {
		c.timer = time.AfterFunc(d, func() { p.idleTimerFired(c) })
	} else {
		c.timer.Reset(d)
	}
	return false
}

// idleTimerFired retires c if it is still idle since the request its timer
// was armed after, and its deadline has come. A firing that raced with a
// reset finds c busy, or re-arms the timer for the deadline not yet come.
func (p *Pool) idleTimerFired(c *conn) {
	p.mu.Lock()
	if c.uses != c.timerSeq || !c.idle || c.closed {
		p.mu.Unlock()
		return
	}
	retire := p.scheduleLocked(c)
	p.mu.Unlock()
	if retire {
		c.Close()
	}
}
