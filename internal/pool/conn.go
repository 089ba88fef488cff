package pool

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"
)

// conn wraps every origin TCP connection the pool's http.Transport dials.
// It is what counts connections, watches the origin closing them, and lets
// the pool retire a connection (close it with a reason).
//
// The fields after mu are guarded by Pool.mu.
type conn struct {
	net.Conn // *net.TCPConn
	p        *Pool
	id       uint64
	created  time.Time

	// peerGone is set once a Read saw EOF or an error, or a Write failed:
	// the origin closed or reset the connection.
	peerGone atomic.Bool

	uses      int         // requests handed this connection (GotConn)
	inflight  bool        // carrying a request (from GotConn to its end)
	idle      bool        // returned to the Transport's idle list after a request
	idleSince time.Time   // when it last became idle
	reason    closeReason // why it is to be (or was) closed; reasonNone: not decided
	closed    bool        // Close was called
	counted   bool        // counted in Stats.Closed
	timer     *time.Timer // idle retirement timer, reused across idle periods
	timerSeq  int         // uses when timer was last armed

	// originIdle is the origin's idle timeout from a Keep-Alive response
	// header (hasOriginIdle tells it was sent).
	originIdle    time.Duration
	hasOriginIdle bool
}

// Read reads from the origin and notes when the origin closed the
// connection.
func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil {
		c.p.readFailed(c, err)
	}
	return n, err
}

// Write refuses to write, with nothing written, once the origin was seen
// closing the connection, so that http.Transport retries the request on
// another connection instead of sending it into a dead one.
func (c *conn) Write(b []byte) (int, error) {
	if c.peerGone.Load() {
		return 0, errPeerGone
	}
	n, err := c.Conn.Write(b)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		c.peerGone.Store(true)
	}
	return n, err
}

// Close closes the connection once and counts it in Stats.Closed. A
// connection closed while carrying a request is counted when the request
// finishes (Pool.finish), which knows the reason.
func (c *conn) Close() error {
	p := c.p
	p.mu.Lock()
	if c.closed {
		p.mu.Unlock()
		return nil
	}
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	var logClose func()
	var retire []*conn
	if !c.inflight {
		if c.reason == reasonNone {
			retire = p.transportClosedLocked(c)
		}
		logClose = p.countCloseLocked(c)
	}
	p.mu.Unlock()
	err := c.Conn.Close()
	if logClose != nil {
		logClose()
	}
	for _, o := range retire {
		o.Close()
	}
	return err
}

// retire closes c for reason r unless a reason was decided already.
func (c *conn) retire(r closeReason) {
	c.p.mu.Lock()
	if c.reason == reasonNone {
		c.reason = r
	}
	c.p.mu.Unlock()
	c.Close()
}

// connOf returns the pool conn under a connection handed out by
// http.Transport (itself, or the transport under a *tls.Conn).
func connOf(nc net.Conn) *conn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

// connectTimeoutKey carries the request's Timeouts.Connect to the dialer.
// http.Transport dials with a context that keeps the request's values but
// not its cancellation.
type connectTimeoutKey struct{}

func connectTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Value(connectTimeoutKey{}).(time.Duration); ok && d > 0 {
		return d
	}
	return DefaultConnectTimeout
}

// dialer returns the net.Dialer for one dial: its timeout, TCP keepalive
// from the effective settings (SO_KEEPALIVE off when disabled), and for a
// guarded pool the Guard's resolver and its check of every address dialled.
func (p *Pool) dialer(timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if g := p.s.Guard; g != nil {
		d.Resolver = g.resolver
		d.Control = g.control(p.host)
	}
	k := p.s.Keepalive
	if k.TCPDisabled {
		d.KeepAlive = -1
	} else {
		d.KeepAliveConfig = net.KeepAliveConfig{
			Enable:   true,
			Idle:     k.TCPIdle,
			Interval: k.TCPInterval,
			Count:    k.TCPCount,
		}
	}
	return d
}

// dial opens and registers a new origin connection. It is
// http.Transport.DialContext; the address Transport asks for is ignored,
// the pool always dials Settings.Addr.
func (p *Pool) dial(ctx context.Context) (*conn, error) {
	p.mu.Lock()
	p.dialing++
	p.mu.Unlock()
	nc, err := p.dialer(connectTimeout(ctx)).DialContext(ctx, "tcp", p.s.Addr)
	if err == nil {
		err = p.checkConnected(nc)
	}
	p.mu.Lock()
	p.dialing--
	if err != nil {
		p.mu.Unlock()
		if errors.Is(err, ErrDialRefused) {
			// The send that asked for the connection fails with err; its
			// caller logs it (once, with the request id).
			p.logger.Debug("origin dial refused by the backend policy", "pool", p.id, "addr", p.s.Addr, "err", err)
		}
		return nil, dialError(err)
	}
	p.nextConnID++
	c := &conn{Conn: nc, p: p, id: p.nextConnID, created: time.Now()}
	if p.s.DontPool {
		c.reason = reasonDontPool
	}
	p.conns[c] = struct{}{}
	p.stats.Opened++
	p.mu.Unlock()
	p.logger.Debug("origin connection opened", "pool", p.id, "addr", p.s.Addr,
		"conn", c.id, "local", nc.LocalAddr().String())
	return c, nil
}

// checkConnected is the guard's second look, after the connect: a TCP
// connection whose two ends have the same IP address goes to this host,
// whatever interface list the Control check saw (an address added since).
// Such a connection is closed before anything is written when the guard
// refuses this host's addresses or the port.
func (p *Pool) checkConnected(nc net.Conn) error {
	g := p.s.Guard
	if g == nil {
		return nil
	}
	la, lok := nc.LocalAddr().(*net.TCPAddr)
	ra, rok := nc.RemoteAddr().(*net.TCPAddr)
	if !lok || !rok {
		return nil
	}
	l, r := la.AddrPort(), ra.AddrPort()
	if canonical(l.Addr()) != canonical(r.Addr()) {
		return nil
	}
	if err := g.check(p.host, r.Port(), r.Addr(), true); err != nil {
		nc.Close()
		return &net.OpError{Op: "dial", Net: "tcp", Addr: ra, Err: fmt.Errorf("%w: %s: %w", ErrDialRefused, r, err)}
	}
	return nil
}

func (p *Pool) dialContext(ctx context.Context, _, _ string) (net.Conn, error) {
	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// dialTLSContext is http.Transport.DialTLSContext for https pools: dial,
// then the TLS handshake, bounded by the connect timeout too.
func (p *Pool) dialTLSContext(ctx context.Context, _, _ string) (net.Conn, error) {
	if p.tlsErr != nil {
		return nil, p.tlsErr
	}
	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(c, p.tlsConfig)
	hctx, cancel := context.WithTimeout(ctx, connectTimeout(ctx))
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.retire(reasonError)
		if isTimeout(err) || hctx.Err() != nil {
			return nil, fmt.Errorf("%w: TLS handshake with %s: %w", ErrConnectTimeout, p.s.Addr, err)
		}
		return nil, fmt.Errorf("%w: handshake with %s: %w", ErrTLS, p.s.Addr, err)
	}
	return tc, nil
}

// tlsNames returns the SNI name (empty when NoSNI) and the name the
// certificate must be valid for.
func tlsNames(s Settings) (sni, certName string) {
	name := s.TLS.SNIHostname
	if name == "" {
		name = s.HostOverride
	}
	if name == "" {
		name = s.Addr
	}
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	certName = s.TLS.CertHostname
	if certName == "" {
		certName = name
	}
	if s.TLS.NoSNI {
		name = ""
	}
	return name, certName
}

// newTLSConfig builds the client TLS config of an https pool. Verification
// is done by VerifyConnection against the certificate host name, because
// the name checked may differ from the SNI name (or there may be no SNI).
func newTLSConfig(s Settings) (*tls.Config, error) {
	sni, certName := tlsNames(s)
	var roots *x509.CertPool // nil: the system roots
	if s.TLS.CACertPEM == "" {
		// Load the system roots now (crypto/x509 caches them), not within
		// the first handshake's connect timeout.
		go x509.SystemCertPool()
	} else {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM([]byte(s.TLS.CACertPEM)) {
			return nil, fmt.Errorf("%w: CA certificate: no PEM certificate found", ErrTLS)
		}
	}
	return &tls.Config{
		ServerName:         sni,
		MinVersion:         s.TLS.MinVersion,
		MaxVersion:         s.TLS.MaxVersion,
		NextProtos:         []string{"http/1.1"},
		InsecureSkipVerify: true, // verified by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("origin sent no certificate")
			}
			opts := x509.VerifyOptions{
				DNSName:       certName,
				Roots:         roots,
				Intermediates: x509.NewCertPool(),
			}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		},
	}, nil
}
