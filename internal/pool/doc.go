// Package pool holds edgehost's origin connection pools.
//
// A Manager owns every pool of the host, keyed by Settings.Effective(): the
// backends (static from fastly.toml, dynamic from the
// register_dynamic_backend hostcall) whose connection settings are equal
// share one pool, across requests, sandboxes, guests and module versions;
// different settings never share a connection. Pool.Do sends one request.
//
// Each pool is one net/http.Transport (HTTP/1.1 only) dialing through a
// net.Dialer with KeepAliveConfig. What the Transport does is kept:
// MaxConnsPerHost for Limits.MaxConnections, DisableKeepAlives for
// DontPool, its idle list and its retries. Added around it:
//
//   - a connection wrapper from DialContext, plus httptrace hooks (GetConn,
//     GotConn, PutIdleConn, WroteRequest, GotFirstResponseByte), that count
//     connections and follow each one from use to idle to close;
//   - an idle timer per connection closing it at HTTPKeepaliveTime, before
//     the origin's own idle timeout (see below), or at MaxLifetime,
//     whichever comes first (the Transport's IdleConnTimeout stays as a
//     backstop one second later);
//   - MaxUse and MaxLifetime: a connection's last request carries
//     Connection: close, so the Transport does not keep it; a connection
//     found over a limit when it goes idle is closed at once;
//   - Connect, FirstByte and BetweenBytes timeouts per request (Timeouts is
//     not part of the key), and a wait for a free connection at
//     MaxConnections bounded by Connect (then ErrPoolExhausted);
//   - TLS with SNI, certificate host name and CA settings of its own
//     (DialTLSContext), since the Transport would take the server name from
//     the URL;
//   - for dynamic backends (Settings.Guard), a check of every address
//     dialled, after name resolution, in net.Dialer.Control (Guard): this
//     host's own listeners and, by default, non-public addresses are
//     refused with ErrDialRefused.
//
// Never stale. An origin that sends "Keep-Alive: timeout=N" has its
// connections retired N/2 (at most 1 s) before N runs out. An origin that
// closes idle connections without saying so teaches the pool its idle
// timeout: the shortest idle time at which it closed one, trusted for five
// minutes, applied the same way. A request that still loses the race with
// an origin-side close on a reused connection is retried: the Transport
// (Go 1.26, persistConn.shouldRetryRequest) retries on another connection,
// on a reused connection only, when nothing was written (any method, if the
// body is empty or has GetBody), and, for GET, HEAD, OPTIONS, TRACE or
// requests with an Idempotency-Key header and a replayable body, when the
// read of the first response byte failed or hit EOF. Pool.Do adds one retry
// for what that leaves out: PUT and DELETE, and write errors after part of
// the request went out, with the same conditions (reused connection closed
// by the origin, no response byte, replayable body). A POST whose bytes
// were written is never retried: the origin may have acted on it.
package pool
