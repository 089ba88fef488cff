package pool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Do sends one origin request through the pool and returns the response
// headers; the body streams from the origin.
//
// req.URL is absolute; Do sends to the pool's Settings.Scheme and Addr
// whatever its scheme and host. The Host header is Settings.HostOverride
// when set, else req.Host, else req.URL.Host (OriginHost). Do sends req's
// headers as they are, except the hop-by-hop ones (RemoveHopByHop:
// Connection and the headers it names, Keep-Alive, Proxy-Connection, Te,
// Trailer, Transfer-Encoding, Upgrade), and adds no User-Agent or
// Accept-Encoding of its own.
// req is not modified; its body is consumed and closed.
//
// t bounds the request (zero fields mean the defaults): Connect the time
// to get a connection (DNS, TCP connect and TLS handshake of a new one, or
// the wait for a free one when the pool is at MaxConnections); FirstByte
// the wait for the response headers once the request is written;
// BetweenBytes each wait for data in reads of the response body. ctx
// cancels the whole request, body reads included. A dial outlives a
// request that gave up on it: the new connection joins the pool.
//
// A request that loses a race with the origin closing a reused idle
// connection is retried: http.Transport itself retries on another
// connection when nothing was written (any method whose body is empty or
// has GetBody), and when a GET, HEAD, OPTIONS or TRACE (or a request with
// an Idempotency-Key header) with a replayable body read EOF or an error
// before the first response byte. Do adds one retry for what it leaves
// out: PUT and DELETE, and write errors after part of the request was
// sent, still only on a reused connection, before any response byte, with
// an empty or replayable (GetBody) body. A non-idempotent request (POST)
// whose bytes reached a connection is not retried; the pool prevents that
// race by retiring idle connections before the origin's idle timeout
// (announced with Keep-Alive: timeout=N, or learned from the origin
// closing idle connections).
//
// The response body, when not http.NoBody, must be closed by the caller;
// it is read to EOF for the connection to be reused. Errors (from Do and
// from body reads) wrap ErrConnectTimeout, ErrConnectionRefused, ErrDNS,
// ErrTLS, ErrPoolExhausted, ErrFirstByteTimeout, ErrBetweenBytesTimeout,
// ErrConnectionTerminated, ErrInvalidResponse or ErrClosed; a cancelled or
// expired ctx gives its context error.
func (p *Pool) Do(ctx context.Context, req *http.Request, t Timeouts) (*http.Response, error) {
	if p.isClosed() {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, ErrClosed
	}
	if p.inflight != nil && !p.inflight.take() {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w: %d origin requests in flight host-wide", ErrPoolExhausted, p.inflight.max)
	}
	resp, err := p.do(ctx, req, t)
	if _, streams := respBodyOf(resp); !streams && p.inflight != nil {
		p.inflight.give() // no body to read: the request is over
	}
	return resp, err
}

// respBodyOf returns resp's body when it is one the pool follows.
func respBodyOf(resp *http.Response) (*respBody, bool) {
	if resp == nil {
		return nil, false
	}
	b, ok := resp.Body.(*respBody)
	return b, ok
}

func (p *Pool) do(ctx context.Context, req *http.Request, t Timeouts) (*http.Response, error) {
	t = t.Effective()
	p.mu.Lock()
	p.stats.Requests++
	p.mu.Unlock()

	base := p.outgoing(req)
	resp, cl, err := p.roundTrip(ctx, base, base.Body, t, false)
	if err == nil || !cl.retryable(ctx, base, err) {
		return resp, err
	}
	var body io.ReadCloser
	if base.Body != nil && base.Body != http.NoBody {
		if body, err = base.GetBody(); err != nil {
			return nil, fmt.Errorf("pool: rewind request body for retry: %w", err)
		}
	}
	p.mu.Lock()
	p.stats.Retries++
	p.mu.Unlock()
	p.logger.Debug("retrying origin request", "pool", p.id, "addr", p.s.Addr, "method", base.Method)
	resp, _, err = p.roundTrip(ctx, base, body, t, true)
	return resp, err
}

// OriginHost is the Host header a request to this pool's origin carries:
// the pool's Settings.HostOverride when set, else host (the Host header
// the caller asked for), else urlHost (the host of the request's URL),
// else the origin's address. It is the only place the origin's Host is
// chosen.
func (p *Pool) OriginHost(host, urlHost string) string {
	switch {
	case p.s.HostOverride != "":
		return p.s.HostOverride
	case host != "":
		return host
	case urlHost != "":
		return urlHost
	}
	return p.s.Addr
}

// hopByHop are the header fields that describe one connection rather
// than the message (RFC 9110, section 7.6.1, and Proxy-Connection,
// Keep-Alive of HTTP/1.0), so they never cross from one connection to
// another: neither from a guest onto an origin request or the downstream
// response, nor from a caller of Do onto the wire.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// RemoveHopByHop deletes from h the hop-by-hop fields (hopByHop) and
// every field the Connection header names. It is the one such list and
// function of edgehost: the hostcalls use it for origin requests and the
// downstream response, and Do for what it sends.
func RemoveHopByHop(h http.Header) {
	for _, f := range h.Values("Connection") {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	// hopByHop's names are canonical, so deleting them as they are is
	// h.Del; a block with fewer fields than that list (most responses)
	// is walked instead, each field looked for in the list.
	if len(h) > len(hopByHop) {
		for _, k := range hopByHop {
			delete(h, k)
		}
		return
	}
	for k := range h {
		if slices.Contains(hopByHop, k) {
			delete(h, k)
		}
	}
}

// outgoing returns the request to send: a copy of req aimed at the pool's
// origin, with connection-level headers removed.
func (p *Pool) outgoing(req *http.Request) *http.Request {
	out := req.Clone(req.Context())
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	out.URL.Scheme = p.s.Scheme
	if out.URL.Scheme == "" {
		out.URL.Scheme = "http"
	}
	out.URL.Host = p.s.Addr
	out.Host = p.OriginHost(req.Host, req.URL.Host)
	out.Close = false
	RemoveHopByHop(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // present but empty: Transport sends none
	}
	return out
}

// roundTrip sends base with body through the Transport once (the
// Transport may retry internally). It returns the call, whose record of
// the attempts decides a retry. base is the pool's own copy (outgoing):
// the first attempt sends its header map as it is (gotConn may add
// Connection: close to it); a retry sends a copy of it without that.
func (p *Pool) roundTrip(ctx context.Context, base *http.Request, body io.ReadCloser, t Timeouts, retry bool) (*http.Response, *call, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	cl := &call{p: p, t: t, cancel: cancel}
	rctx = context.WithValue(rctx, connectTimeoutKey{}, t.Connect)
	rctx = httptrace.WithClientTrace(rctx, cl.trace())
	var req *http.Request
	if retry {
		req = base.Clone(rctx)
		req.Header.Del("Connection") // the first attempt's close request
	} else {
		req = base.WithContext(rctx)
	}
	req.Body = body
	cl.header = req.Header

	resp, err := p.transport.RoundTrip(req)
	cl.stopTimers()
	cl.mu.Lock()
	cur, earlier := cl.cur, cl.earlier
	cl.mu.Unlock()
	for _, a := range earlier {
		p.finish(a.c, a.seq, errRetried, false)
	}
	if err != nil {
		err = cl.wrapError(ctx, err)
		if cur.c != nil {
			p.finish(cur.c, cur.seq, err, false)
		}
		cancel(nil)
		return nil, cl, err
	}
	if cur.c == nil { // cannot happen with HTTP/1: GotConn precedes a response
		cancel(nil)
		resp.Body.Close()
		return nil, cl, fmt.Errorf("pool: response without a traced connection")
	}
	if d, ok := keepAliveTimeout(resp.Header); ok {
		p.setOriginIdle(cur.c, cur.seq, d)
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		p.finish(cur.c, cur.seq, nil, resp.Close)
		cancel(nil)
		return resp, cl, nil
	}
	resp.Body = &respBody{
		rc: resp.Body, p: p, c: cur.c, seq: cur.seq, respClose: resp.Close,
		ctx: ctx, cancel: cancel, timeout: t.BetweenBytes, cl: cl,
	}
	return resp, cl, nil
}

// errRetried finishes an attempt the Transport retried on another
// connection. It retries only when the origin closed a reused connection
// before answering (or the pool retired it, then already counted).
var errRetried = errors.New("pool: attempt retried")

// attempt is one connection a call was given.
type attempt struct {
	c         *conn
	seq       int  // the request's number on c
	reused    bool // GotConnInfo.Reused
	firstByte bool // a response byte arrived
}

// call follows one RoundTrip through its httptrace hooks: which connection
// each attempt got, the connect-wait and first-byte timers.
type call struct {
	p      *Pool
	t      Timeouts
	cancel context.CancelCauseFunc
	header http.Header // the outgoing request's headers

	mu       sync.Mutex
	n        int       // attempts started (GetConn)
	waiting  bool      // the current attempt found the pool at MaxConnections
	cur      attempt   // the current attempt
	earlier  []attempt // attempts the Transport gave up on
	setClose bool      // header holds the Connection: close acquire asked for
	pending  bool      // counted in Pool.pending
	timedOut error     // ErrPoolExhausted, ErrConnectTimeout or ErrFirstByteTimeout

	// One timer serves the call's timeouts in turn (armFor): the wait for
	// a connection, then for the first response byte, then each wait for
	// body data, so that a request makes one timer, not one per wait.
	timer    *time.Timer
	kind     timeoutKind // what the armed timer bounds; timeoutNone: disarmed
	armedN   int         // the attempt (n) it was armed for
	deadline time.Time   // when it is due
	body     *respBody   // the body whose reads timeoutBody bounds
}

// timeoutKind is what a call's timer bounds.
type timeoutKind uint8

const (
	timeoutNone timeoutKind = iota
	timeoutConnect
	timeoutFirstByte
	timeoutBody
)

// armLocked (cl.mu held) sets the call's timer to fire after d for kind.
func (cl *call) armLocked(kind timeoutKind, d time.Duration) {
	cl.kind, cl.armedN, cl.deadline = kind, cl.n, time.Now().Add(d)
	if cl.timer == nil {
		cl.timer = time.AfterFunc(d, cl.timerFired)
	} else {
		cl.timer.Reset(d)
	}
}

// disarmLocked (cl.mu held) stops the timer if it bounds kind
// (timeoutNone: whatever it bounds).
func (cl *call) disarmLocked(kind timeoutKind) {
	if cl.kind == timeoutNone || (kind != timeoutNone && cl.kind != kind) {
		return
	}
	cl.kind = timeoutNone
	cl.timer.Stop()
}

// timerFired handles the timer's firing. A firing from an earlier arming
// that raced with a Stop or Reset (an AfterFunc's function may already be
// running) finds the timer disarmed or its deadline not yet come, and
// does nothing.
func (cl *call) timerFired() {
	cl.mu.Lock()
	if cl.kind == timeoutNone || time.Now().Before(cl.deadline) {
		cl.mu.Unlock()
		return
	}
	kind, n := cl.kind, cl.armedN
	cl.kind = timeoutNone
	switch kind {
	case timeoutConnect:
		if cl.n == n && cl.cur.c == nil && cl.timedOut == nil {
			cl.timedOut = ErrConnectTimeout
			if cl.waiting {
				cl.timedOut = ErrPoolExhausted
			}
			cl.cancel(cl.timedOut)
		}
	case timeoutFirstByte:
		if cl.n == n && !cl.cur.firstByte && cl.timedOut == nil {
			cl.timedOut = ErrFirstByteTimeout
			cl.cancel(ErrFirstByteTimeout)
		}
	case timeoutBody:
		cl.body.fired.Store(true)
		cl.mu.Unlock()
		cl.cancel(ErrBetweenBytesTimeout)
		return
	}
	cl.mu.Unlock()
}

func (cl *call) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn:              cl.getConn,
		GotConn:              cl.gotConn,
		WroteRequest:         cl.wroteRequest,
		GotFirstResponseByte: cl.gotFirstResponseByte,
		PutIdleConn:          cl.putIdleConn,
	}
}

// getConn starts an attempt: counts a wait or a retry and bounds the time
// until a connection is handed over by Timeouts.Connect.
func (cl *call) getConn(string) {
	p := cl.p
	p.mu.Lock()
	waiting := p.waitingLocked()
	if waiting {
		p.stats.Waits++
	}
	p.mu.Unlock()

	cl.mu.Lock()
	defer cl.mu.Unlock()
	if !cl.pending {
		cl.pending = true
		p.mu.Lock()
		p.pending++
		p.mu.Unlock()
	}
	cl.n++
	if cl.n > 1 {
		p.mu.Lock()
		p.stats.Retries++
		p.mu.Unlock()
	}
	if cl.cur.c != nil {
		cl.earlier = append(cl.earlier, cl.cur)
	}
	cl.cur = attempt{}
	cl.waiting = waiting
	cl.armLocked(timeoutConnect, cl.t.Connect)
}

// gotConn records the connection an attempt got. On the connection's last
// permitted request (MaxUse, MaxLifetime) it asks the origin to close the
// connection after the response, so that the Transport does not keep it.
func (cl *call) gotConn(info httptrace.GotConnInfo) {
	c := connOf(info.Conn)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if c == nil { // not dialed by the pool: cannot happen
		return
	}
	seq, last := cl.p.acquire(c, info.Reused, cl.pending)
	cl.pending = false
	cl.disarmLocked(timeoutConnect)
	cl.cur = attempt{c: c, seq: seq, reused: info.Reused}
	// The Transport writes this header map (shared with its copies of the
	// request) after GotConn returns, in this goroutine or after handing
	// the request to its writer over a channel.
	switch {
	case last:
		cl.header.Set("Connection", "close")
		cl.setClose = true
	case cl.setClose:
		cl.header.Del("Connection")
		cl.setClose = false
	}
}

// wroteRequest starts the first-byte timer.
func (cl *call) wroteRequest(info httptrace.WroteRequestInfo) {
	if info.Err != nil {
		return
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.cur.firstByte || cl.timedOut != nil {
		return
	}
	cl.armLocked(timeoutFirstByte, cl.t.FirstByte)
}

func (cl *call) gotFirstResponseByte() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.cur.firstByte = true
	cl.disarmLocked(timeoutFirstByte)
}

// putIdleConn: the Transport put the current attempt's connection back in
// its idle list (err == nil), or will close it.
func (cl *call) putIdleConn(err error) {
	if err != nil {
		return
	}
	cl.mu.Lock()
	cur := cl.cur
	cl.mu.Unlock()
	if cur.c != nil {
		cl.p.markIdle(cur.c, cur.seq)
	}
}

// stopTimers ends the call's part in RoundTrip: timers stopped, no longer
// waiting for a connection.
func (cl *call) stopTimers() {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.pending {
		cl.pending = false
		cl.p.mu.Lock()
		cl.p.pending--
		cl.p.mu.Unlock()
	}
	cl.disarmLocked(timeoutNone)
}

// wrapError wraps a RoundTrip error in its sentinel.
func (cl *call) wrapError(ctx context.Context, err error) error {
	cl.mu.Lock()
	timedOut, cur := cl.timedOut, cl.cur
	cl.mu.Unlock()
	switch {
	case timedOut == ErrFirstByteTimeout:
		return fmt.Errorf("%w (%v)", ErrFirstByteTimeout, cl.t.FirstByte)
	case timedOut != nil:
		return fmt.Errorf("%w (waited %v for a connection to %s)", timedOut, cl.t.Connect, cl.p.s.Addr)
	case ctx.Err() != nil:
		return fmt.Errorf("pool: %w", context.Cause(ctx))
	case isSentinel(err):
		return err
	case cur.c == nil:
		return fmt.Errorf("pool: connect: %w", err)
	case originClosed(cur.c, err):
		return fmt.Errorf("%w: %w", ErrConnectionTerminated, err)
	}
	return fmt.Errorf("%w: %w", ErrInvalidResponse, err)
}

// retryable reports whether a failed call may be retried once more (see
// Pool.Do): the last attempt was on a reused connection the origin closed,
// no response byte came, and the request is idempotent and replayable.
func (cl *call) retryable(ctx context.Context, req *http.Request, err error) bool {
	cl.mu.Lock()
	cur, timedOut := cl.cur, cl.timedOut
	cl.mu.Unlock()
	if timedOut != nil || ctx.Err() != nil || cur.c == nil || !cur.reused ||
		cur.firstByte || !originClosed(cur.c, err) {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

// originClosed reports whether a request failed because the origin closed
// or reset connection c: c saw it, or the error says so (over TLS the EOF
// is seen by the TLS layer, not by c).
func originClosed(c *conn, err error) bool {
	return c.peerGone.Load() || errors.Is(err, errRetried) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		// http.Transport's unexported errServerClosedIdle: the origin
		// closed the connection as the request was being sent on it.
		strings.Contains(err.Error(), "server closed idle connection")
}

// keepAliveTimeout returns the timeout=N (seconds) parameter of a
// Keep-Alive response header.
func keepAliveTimeout(h http.Header) (time.Duration, bool) {
	for _, v := range h.Values("Keep-Alive") {
		for param := range strings.SplitSeq(v, ",") {
			k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "timeout") {
				continue
			}
			n, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(val), `"`), 10, 32)
			if err != nil {
				continue
			}
			return time.Duration(n) * time.Second, true
		}
	}
	return 0, false
}

// respBody is a response body from Do: it enforces the between-bytes timeout
// and tells the pool when the request ends.
type respBody struct {
	rc        io.ReadCloser
	p         *Pool
	c         *conn
	seq       int
	respClose bool
	ctx       context.Context // the caller's
	cancel    context.CancelCauseFunc
	timeout   time.Duration

	cl    *call // its timer bounds each Read (timeoutBody)
	fired atomic.Bool
	mu    sync.Mutex // serializes Reads (one timer)
	once  sync.Once
}

// Read reads body data; a wait of more than BetweenBytes for data fails
// with ErrBetweenBytesTimeout.
func (b *respBody) Read(buf []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cl := b.cl
	cl.mu.Lock()
	cl.body = b
	cl.armLocked(timeoutBody, b.timeout)
	cl.mu.Unlock()
	n, err := b.rc.Read(buf)
	cl.mu.Lock()
	cl.disarmLocked(timeoutBody)
	cl.mu.Unlock()
	switch {
	case err == nil:
	case err == io.EOF:
		b.end(nil)
	case b.fired.Load():
		err = fmt.Errorf("%w (%v)", ErrBetweenBytesTimeout, b.timeout)
		b.end(err)
	case b.ctx.Err() != nil:
		err = fmt.Errorf("pool: %w", context.Cause(b.ctx))
		b.end(err)
	default:
		err = fmt.Errorf("%w: %w", ErrConnectionTerminated, err)
		b.end(err)
	}
	return n, err
}

// Close closes the body. Closed before EOF, the connection is not reused.
func (b *respBody) Close() error {
	err := b.rc.Close()
	b.end(errAbandoned)
	return err
}

// end finishes the request once: with nil at EOF.
func (b *respBody) end(err error) {
	b.once.Do(func() {
		b.p.finish(b.c, b.seq, err, b.respClose)
		b.cancel(nil)
		if b.p.inflight != nil {
			b.p.inflight.give()
		}
	})
}
