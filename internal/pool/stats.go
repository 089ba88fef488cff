package pool

// Stats are a pool's counters since it was created. Counts are totals;
// InUse and Idle are the current numbers of open connections. Every opened
// connection is, at any time, exactly one of: in use, idle, or counted in
// Closed, so Opened == InUse + Idle + Closed.Total().
type Stats struct {
	// Opened counts TCP connections established to the origin.
	Opened uint64
	// Reused counts requests that were given a connection that had served
	// an earlier request (httptrace.GotConnInfo.Reused).
	Reused uint64
	// Closed counts closed connections by the reason they were closed.
	Closed ClosedStats
	// InUse is the number of connections carrying a request now.
	InUse int
	// Idle is the number of open connections carrying no request.
	Idle int
	// Requests counts calls of Pool.Do.
	Requests uint64
	// Retries counts attempts beyond the first: those http.Transport made
	// by itself on a reused connection the origin had closed, and the ones
	// Pool.Do adds (see Pool.Do).
	Retries uint64
	// Waits counts request attempts that found no idle connection while
	// the pool was at Limits.MaxConnections, and so had to wait.
	Waits uint64
}

// ClosedStats counts closed connections by reason.
type ClosedStats struct {
	// IdleTimeout: idle for Keepalive.HTTPKeepaliveTime.
	IdleTimeout uint64
	// OriginIdleTimeout: idle long enough to come near the origin's own
	// idle timeout, announced in a "Keep-Alive: timeout=N" response header
	// or learned from the origin closing idle connections; the host closed
	// it first so that it is never used stale.
	OriginIdleTimeout uint64
	// MaxUse: served Limits.MaxUse requests.
	MaxUse uint64
	// Lifetime: older than Limits.MaxLifetime.
	Lifetime uint64
	// OriginClose: the origin closed the connection, or asked for it to be
	// closed (Connection: close).
	OriginClose uint64
	// Error: the host closed it because a request on it failed (timeout,
	// cancellation, invalid response, TLS handshake failure) or its
	// response body was closed before EOF.
	Error uint64
	// DontPool: closed after its single request (Settings.DontPool).
	DontPool uint64
	// Shutdown: closed by Manager.Close.
	Shutdown uint64
}

// Total returns the number of closed connections.
func (c ClosedStats) Total() uint64 {
	return c.IdleTimeout + c.OriginIdleTimeout + c.MaxUse + c.Lifetime +
		c.OriginClose + c.Error + c.DontPool + c.Shutdown
}

// Snapshot is one pool as Manager.Pools reports it.
type Snapshot struct {
	// ID numbers pools in creation order, from 1.
	ID uint64
	// Settings are the pool's effective settings (its key).
	Settings Settings
	// Stats are its counters at the time of the call.
	Stats Stats
}

// closeReason says why a connection was (or will be) closed.
type closeReason uint8

const (
	reasonNone closeReason = iota
	reasonIdleTimeout
	reasonOriginIdleTimeout
	reasonMaxUse
	reasonLifetime
	reasonOriginClose
	reasonError
	reasonDontPool
	reasonShutdown
)

func (r closeReason) String() string {
	switch r {
	case reasonIdleTimeout:
		return "idle_timeout"
	case reasonOriginIdleTimeout:
		return "origin_idle_timeout"
	case reasonMaxUse:
		return "max_use"
	case reasonLifetime:
		return "lifetime"
	case reasonOriginClose:
		return "origin_close"
	case reasonError:
		return "error"
	case reasonDontPool:
		return "dont_pool"
	case reasonShutdown:
		return "shutdown"
	}
	return "none"
}

// add counts one connection closed for r.
func (c *ClosedStats) add(r closeReason) {
	switch r {
	case reasonIdleTimeout:
		c.IdleTimeout++
	case reasonOriginIdleTimeout:
		c.OriginIdleTimeout++
	case reasonMaxUse:
		c.MaxUse++
	case reasonLifetime:
		c.Lifetime++
	case reasonOriginClose:
		c.OriginClose++
	case reasonDontPool:
		c.DontPool++
	case reasonShutdown:
		c.Shutdown++
	default:
		c.Error++
	}
}
