package pool

import "time"

// Defaults applied by Settings.Effective when a field is zero. They are the
// values the fastly_backend getters report and the README documents.
const (
	// DefaultHTTPKeepaliveTime is how long an idle pooled origin connection
	// is kept before the host closes it.
	DefaultHTTPKeepaliveTime = 60 * time.Second
	// DefaultTCPKeepaliveIdle is TCP_KEEPIDLE when TCP keepalive is on.
	DefaultTCPKeepaliveIdle = 15 * time.Second
	// DefaultTCPKeepaliveInterval is TCP_KEEPINTVL when TCP keepalive is on.
	DefaultTCPKeepaliveInterval = 15 * time.Second
	// DefaultTCPKeepaliveCount is TCP_KEEPCNT when TCP keepalive is on.
	DefaultTCPKeepaliveCount = 9
	// DefaultConnectTimeout bounds a dial, and a wait for a free connection
	// when MaxConnections is reached.
	DefaultConnectTimeout = 1 * time.Second
	// DefaultFirstByteTimeout bounds the wait for response headers.
	DefaultFirstByteTimeout = 15 * time.Second
	// DefaultBetweenBytesTimeout bounds the gap between two body reads.
	DefaultBetweenBytesTimeout = 10 * time.Second
)

// Settings are the connection-relevant settings of a backend: everything
// that decides whether two backends may share an origin connection. The
// struct is comparable; pools are keyed by Settings.Effective(), so two
// backends (static or dynamic, any names) with the same effective settings
// share one pool, and different settings never share a connection.
type Settings struct {
	// Scheme is "http" or "https".
	Scheme string
	// Addr is the origin's host:port to dial.
	Addr string
	// HostOverride, when set, replaces the Host header of every request
	// and is the default TLS server name.
	HostOverride string
	// TLS applies when Scheme is "https".
	TLS TLS
	// Keepalive holds the HTTP and TCP keepalive settings.
	Keepalive Keepalive
	// Limits holds the pooling limits.
	Limits Limits
	// DontPool: one new connection per request, closed after it.
	DontPool bool
	// Guard, when set, checks every address the pool dials (dynamic
	// backends: see Guard); nil dials whatever Addr resolves to (static
	// backends, which the host's operator wrote). Pools are keyed by the
	// Guard too, so a static and a dynamic backend never share one.
	//
	// Guarded pools are keyed by the target as written (a name stays a
	// name), not by the address it resolved to. That is safe because the
	// check runs on every dial: each connection in the pool went to an
	// address that passed the Guard when it was opened, and a later answer
	// for the name (DNS rebinding) only decides where new connections go,
	// each checked again.
	Guard *Guard
}

// TLS holds the TLS settings of an https origin.
type TLS struct {
	// SNIHostname is the server name sent in the ClientHello; empty means
	// HostOverride, else the host of Addr.
	SNIHostname string
	// NoSNI sends no server name at all (fastly.toml use_sni = false).
	NoSNI bool
	// CertHostname is the name the origin certificate must be valid for;
	// empty means the SNI name.
	CertHostname string
	// CACertPEM, when set, is the only trusted root (PEM); empty means the
	// system roots.
	CACertPEM string
	// MinVersion and MaxVersion are crypto/tls versions (tls.VersionTLS12…);
	// 0 means crypto/tls's default.
	MinVersion, MaxVersion uint16
}

// Keepalive holds HTTP and TCP keepalive settings.
type Keepalive struct {
	// HTTPKeepaliveTime: an idle pooled connection is closed after this
	// long. 0 means DefaultHTTPKeepaliveTime.
	HTTPKeepaliveTime time.Duration
	// TCPDisabled turns SO_KEEPALIVE off on origin sockets.
	TCPDisabled bool
	// TCPIdle is TCP_KEEPIDLE (whole seconds); 0 means the default.
	TCPIdle time.Duration
	// TCPInterval is TCP_KEEPINTVL (whole seconds); 0 means the default.
	TCPInterval time.Duration
	// TCPCount is TCP_KEEPCNT; 0 means the default.
	TCPCount int
}

// Limits are a pool's connection limits; 0 means unlimited.
type Limits struct {
	// MaxConnections caps the connections open to the origin at once (in
	// use and idle); further requests wait, bounded by the connect timeout.
	MaxConnections int
	// MaxUse is how many requests one connection serves before it is closed.
	MaxUse int
	// MaxLifetime: a connection older than this is not reused.
	MaxLifetime time.Duration
}

// Effective returns s with every zero keepalive field replaced by its
// default (TCP fields stay zero when TCPDisabled), TCPIdle and TCPInterval
// rounded up to whole seconds (what the socket options take), negative
// limits made 0 (unlimited) and TLS cleared unless Scheme is "https".
// Pools are keyed by it.
func (s Settings) Effective() Settings {
	k := &s.Keepalive
	if k.HTTPKeepaliveTime <= 0 {
		k.HTTPKeepaliveTime = DefaultHTTPKeepaliveTime
	}
	if k.TCPDisabled {
		k.TCPIdle, k.TCPInterval, k.TCPCount = 0, 0, 0
	} else {
		if k.TCPIdle <= 0 {
			k.TCPIdle = DefaultTCPKeepaliveIdle
		}
		if k.TCPInterval <= 0 {
			k.TCPInterval = DefaultTCPKeepaliveInterval
		}
		if k.TCPCount <= 0 {
			k.TCPCount = DefaultTCPKeepaliveCount
		}
		k.TCPIdle = wholeSeconds(k.TCPIdle)
		k.TCPInterval = wholeSeconds(k.TCPInterval)
	}
	l := &s.Limits
	l.MaxConnections = max(l.MaxConnections, 0)
	l.MaxUse = max(l.MaxUse, 0)
	l.MaxLifetime = max(l.MaxLifetime, 0)
	if s.Scheme != "https" {
		s.TLS = TLS{}
	}
	return s
}

// wholeSeconds rounds d up to a whole number of seconds.
func wholeSeconds(d time.Duration) time.Duration {
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return d
}

// Timeouts bound one origin request. A zero field means its default.
type Timeouts struct {
	// Connect bounds the dial, and the wait for a free connection when the
	// pool is at MaxConnections.
	Connect time.Duration
	// FirstByte bounds the wait for the response headers after the request
	// was written.
	FirstByte time.Duration
	// BetweenBytes bounds the gap between two reads of the response body.
	BetweenBytes time.Duration
}

// Effective returns t with zero fields replaced by their defaults.
func (t Timeouts) Effective() Timeouts {
	if t.Connect <= 0 {
		t.Connect = DefaultConnectTimeout
	}
	if t.FirstByte <= 0 {
		t.FirstByte = DefaultFirstByteTimeout
	}
	if t.BetweenBytes <= 0 {
		t.BetweenBytes = DefaultBetweenBytesTimeout
	}
	return t
}
