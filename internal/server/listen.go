package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/tlsfp"
)

// Client certificate modes (TLSOptions.ClientAuth).
const (
	// ClientAuthRequire refuses the handshake of a client without a
	// certificate that verifies against the client CA.
	ClientAuthRequire = "require"
	// ClientAuthRequest asks for a certificate, accepts the connection
	// whatever the client sends, and lets the guest read how it verified
	// (downstream_tls_client_cert_verify_result).
	ClientAuthRequest = "request"
)

// TLSOptions are the downstream TLS settings (README.md, "HTTPS and
// HTTP/2"): a certificate and key (PEM files) or a self-signed localhost
// certificate, and optionally a client CA.
type TLSOptions struct {
	// CertFile and KeyFile are PEM files (tls_cert, tls_key).
	CertFile, KeyFile string
	// SelfSigned makes a certificate for localhost, 127.0.0.1 and ::1 at
	// start (tls_self_signed), for local development; CertFile wins.
	SelfSigned bool
	// ClientCAFile is a PEM file of CA certificates client certificates
	// are verified against (tls_client_ca); "" asks for none.
	ClientCAFile string
	// ClientAuth is ClientAuthRequire (the default) or ClientAuthRequest.
	ClientAuth string
}

// Enabled reports whether the options serve TLS.
func (o TLSOptions) Enabled() bool { return o.CertFile != "" || o.SelfSigned }

// ListenConfig configures the downstream listener (Server.HTTPServer).
type ListenConfig struct {
	// TLS, when set, serves HTTPS: HTTP/2 or HTTP/1.1 by ALPN.
	TLS *tls.Config
	// ClientCAs verifies client certificates for the guest's
	// downstream_tls_client_cert_verify_result; nil when no client CA is
	// set.
	ClientCAs *x509.CertPool
	// H2C serves HTTP/2 without TLS to clients that start with its
	// preface (prior knowledge), beside HTTP/1.1.
	H2C bool
	// HandshakeTimeout bounds a TLS handshake (default 10 s).
	HandshakeTimeout time.Duration
	// Logger logs failed handshakes at debug level (default the server's).
	Logger *slog.Logger
}

// ListenConfig builds the listener settings. Errors name the file that
// could not be read or parsed.
func (o TLSOptions) ListenConfig() (ListenConfig, error) {
	var lc ListenConfig
	if !o.Enabled() {
		switch {
		case o.KeyFile != "":
			return lc, errors.New("tls_key needs tls_cert")
		case o.ClientCAFile != "":
			return lc, errors.New("tls_client_ca needs tls_cert and tls_key, or tls_self_signed")
		}
		return lc, nil
	}
	var cert tls.Certificate
	var err error
	switch {
	case o.CertFile != "":
		if o.KeyFile == "" {
			return lc, errors.New("tls_cert needs tls_key")
		}
		if cert, err = tls.LoadX509KeyPair(o.CertFile, o.KeyFile); err != nil {
			return lc, fmt.Errorf("tls_cert %s, tls_key %s: %w", o.CertFile, o.KeyFile, err)
		}
	default:
		if cert, err = SelfSignedCertificate(time.Now()); err != nil {
			return lc, err
		}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	if o.ClientCAFile != "" {
		pem, err := os.ReadFile(o.ClientCAFile)
		if err != nil {
			return lc, fmt.Errorf("tls_client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return lc, fmt.Errorf("tls_client_ca %s: no PEM certificate in it", o.ClientCAFile)
		}
		cfg.ClientCAs = pool
		lc.ClientCAs = pool
		switch o.ClientAuth {
		case "", ClientAuthRequire:
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		case ClientAuthRequest:
			cfg.ClientAuth = tls.RequestClientCert
		default:
			return lc, fmt.Errorf("tls_client_auth %q: want %q or %q", o.ClientAuth, ClientAuthRequire, ClientAuthRequest)
		}
	}
	lc.TLS = cfg
	return lc, nil
}

// SelfSignedCertificate returns a fresh ECDSA P-256 certificate for
// localhost, 127.0.0.1 and ::1, valid from an hour before now for 30 days.
func SelfSignedCertificate(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"edgehost development"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// HTTPServer returns an http.Server serving s on ln as lc says, and the
// listener to pass to its Serve. With TLS the listener completes each
// handshake itself (capturing the ClientHello) and hands over connections
// that speak HTTP/1.1 or, after ALPN chose h2, HTTP/2; with H2C plain
// connections may start HTTP/2 with its preface. The caller sets the
// server's timeouts and limits.
func (s *Server) HTTPServer(ln net.Listener, lc ListenConfig) (*http.Server, net.Listener) {
	// ConnContext: the TLS listener's connection facts (connContext) and
	// the framing watcher's (FramingListener; the TLS and h2c listener's
	// connections watch themselves): a request with both Content-Length
	// and Transfer-Encoding closes its connection (RFC 9112, section 6.1).
	hs := &http.Server{Handler: s, ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		return ConnContext(connContext(ctx, c), c)
	}}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(lc.TLS != nil || lc.H2C)
	hs.Protocols = &p
	if lc.TLS == nil && !lc.H2C {
		return hs, FramingListener(ln)
	}
	if lc.HandshakeTimeout <= 0 {
		lc.HandshakeTimeout = 10 * time.Second
	}
	if lc.Logger == nil {
		lc.Logger = s.log
	}
	l := &listener{Listener: ln, lc: lc, conns: make(chan net.Conn), done: make(chan struct{})}
	return hs, l
}

// connMeta is what the server knows about a downstream connection.
type connMeta struct {
	tls  *hostcall.DownstreamTLS // nil: plain
	h2fp func() string           // nil: not recorded
}

type connMetaKey struct{}

type metaConn interface{ meta() *connMeta }

func connContext(ctx context.Context, c net.Conn) context.Context {
	if m, ok := c.(metaConn); ok {
		return context.WithValue(ctx, connMetaKey{}, m.meta())
	}
	return ctx
}

// downstreamConn fills d's connection facts from r's context.
func downstreamConn(r *http.Request, d *hostcall.Downstream) {
	m, _ := r.Context().Value(connMetaKey{}).(*connMeta)
	if m == nil {
		return
	}
	d.TLS = m.tls
	if r.ProtoMajor == 2 {
		d.H2Fingerprint = m.h2fp
	}
	if m.tls != nil {
		// HTTP/2 over TLS reaches net/http as a plain connection (this
		// listener did the handshake); the request is still HTTPS, for
		// the handler and for the guest's copy of it (d.Request).
		for _, req := range []*http.Request{r, d.Request} {
			if req != nil && req.TLS == nil {
				req.TLS = &m.tls.State
			}
		}
	}
}

// listener accepts connections, completes TLS handshakes in their own
// goroutines and hands over the connections ready to serve.
type listener struct {
	net.Listener
	lc    ListenConfig
	once  sync.Once
	conns chan net.Conn
	done  chan struct{}
	mu    sync.Mutex
	err   error // the accept loop's error, once it ended
}

func (l *listener) Accept() (net.Conn, error) {
	l.once.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		return nil, l.err
	}
}

func (l *listener) acceptLoop() {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			close(l.done)
			return
		}
		backoff = 0
		go l.prepare(c)
	}
}

// prepare turns a raw connection into one to serve and hands it over.
func (l *listener) prepare(raw net.Conn) {
	var c net.Conn
	if l.lc.TLS == nil {
		c = &h2Conn{Conn: raw, m: &connMeta{}}
	} else {
		var err error
		if c, err = l.handshake(raw); err != nil {
			var rh tls.RecordHeaderError
			if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader) {
				// As net/http does: say why, in plain HTTP.
				rh.Conn.SetWriteDeadline(time.Now().Add(time.Second))
				io.WriteString(rh.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
			}
			l.lc.Logger.Debug("TLS handshake failed", "client", raw.RemoteAddr().String(), "err", err)
			raw.Close()
			return
		}
	}
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

// looksLikeHTTP reports whether a TLS record header is the start of an
// HTTP/1 request line.
func looksLikeHTTP(h [5]byte) bool {
	switch string(h[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "PRI *":
		return true
	}
	return false
}

// maxRecord bounds what is kept of a connection's first bytes to read the
// ClientHello or the HTTP/2 preface frames from.
const maxRecord = 64 << 10

func (l *listener) handshake(raw net.Conn) (net.Conn, error) {
	rec := &helloConn{Conn: raw, on: true}
	tc := tls.Server(rec, l.lc.TLS)
	ctx, cancel := context.WithTimeout(context.Background(), l.lc.HandshakeTimeout)
	defer cancel()
	err := tc.HandshakeContext(ctx)
	rec.on = false
	if err != nil {
		return nil, err
	}
	info := &hostcall.DownstreamTLS{State: tc.ConnectionState()}
	info.ClientHello, _ = tlsfp.ClientHelloMessage(rec.buf)
	rec.buf = nil
	info.CertVerifyResult = verifyClient(info.State, l.lc)
	m := &connMeta{tls: info}
	if info.State.NegotiatedProtocol == "h2" {
		return &h2Conn{Conn: tc, m: m}, nil
	}
	return &tlsConn{Conn: tc, m: m}, nil
}

// verifyClient says how the client's certificate verifies against the
// client CA (hostcall.CertVerify*).
func verifyClient(st tls.ConnectionState, lc ListenConfig) uint32 {
	if len(st.PeerCertificates) == 0 {
		return hostcall.CertVerifyCertificateMissing
	}
	if lc.ClientCAs == nil {
		return hostcall.CertVerifyCertificateUnknown
	}
	if len(st.VerifiedChains) > 0 {
		return hostcall.CertVerifyOK
	}
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := st.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: lc.ClientCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case err == nil:
		return hostcall.CertVerifyOK
	case errors.As(err, &ua):
		return hostcall.CertVerifyUnknownCA
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		return hostcall.CertVerifyCertificateExpired
	case errors.As(err, &inv):
		return hostcall.CertVerifyBadCertificate
	}
	return hostcall.CertVerifyCertificateUnknown
}

// helloConn keeps the bytes read during the handshake (one goroutine).
type helloConn struct {
	net.Conn
	on  bool
	buf []byte
}

func (c *helloConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.on && len(c.buf) < maxRecord {
		c.buf = append(c.buf, p[:n]...)
	}
	return n, err
}

// tlsConn is a TLS connection serving HTTP/1.1; its plain text is
// watched for the Content-Length and Transfer-Encoding pair.
type tlsConn struct {
	*tls.Conn
	m *connMeta
	w framingWatch
}

func (c *tlsConn) meta() *connMeta { return c.m }

func (c *tlsConn) framing() *framingWatch { return &c.w }

func (c *tlsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.observe(p[:n])
	return n, err
}

// h2Conn is a connection that may carry HTTP/2 (after ALPN h2, or h2c):
// it keeps the first bytes read until the first request's header block,
// for the HTTP/2 fingerprint. Its reads are watched for the
// Content-Length and Transfer-Encoding pair when it carries HTTP/1.1 (the
// watch stops at the HTTP/2 preface).
type h2Conn struct {
	net.Conn
	m    *connMeta
	once sync.Once
	w    framingWatch

	mu   sync.Mutex
	buf  []byte
	done bool
	fp   string
}

func (c *h2Conn) meta() *connMeta {
	c.once.Do(func() { c.m.h2fp = c.fingerprint })
	return c.m
}

func (c *h2Conn) framing() *framingWatch { return &c.w }

func (c *h2Conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.observe(p[:n])
	if n > 0 {
		c.mu.Lock()
		if !c.done {
			c.buf = append(c.buf, p[:n]...)
			fp, complete, ferr := tlsfp.H2(c.buf)
			if complete || ferr != nil || len(c.buf) >= maxRecord {
				c.done, c.fp, c.buf = true, fp, nil
			}
		}
		c.mu.Unlock()
	}
	return n, err
}

// fingerprint is the HTTP/2 fingerprint, "" until the first header block
// was read or when the connection is not HTTP/2.
func (c *h2Conn) fingerprint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fp
}
