package config

import (
	"crypto/tls"
	"crypto/x509"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Bounds of backend values. Millisecond values must fit the u32 that the
// fastly_backend getters return; the TCP keepalive bounds are Linux's
// (MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT in <net/tcp.h>).
const (
	maxMillis         = math.MaxUint32
	maxKeepaliveSecs  = maxMillis / 1000
	maxTCPIdleSecs    = 32767
	maxTCPIntervalSec = 32767
	maxTCPProbes      = 127
	maxCount          = math.MaxInt32
)

// backend reads one [local_server.backends.NAME] table (see Backend).
func (p *parser) backend(name string, t *table) (Backend, bool) {
	b := Backend{Name: name}
	nerr := len(p.errs)
	defer t.finish()

	raw, ok := t.str("url")
	if !ok && !t.has("url") {
		p.errorf(t.path, "the url key is required")
	}
	if ok {
		b.URL = raw
		if err := b.parseURL(raw); err != nil {
			t.errorf("url", "%v", err)
		}
	}

	if s, ok := t.str("override_host"); ok {
		b.Conn.HostOverride = s
	}

	// TLS settings.
	for _, k := range []string{"cert_host", "use_sni", "ca_certificate", "ssl_min_version", "ssl_max_version"} {
		if t.has(k) && b.Conn.Scheme == "http" {
			t.errorf(k, "applies only to https backends")
		}
	}
	if s, ok := t.str("cert_host"); ok {
		b.Conn.TLS.CertHostname = s
	}
	if v, ok := t.boolean("use_sni"); ok {
		b.Conn.TLS.NoSNI = !v
	}
	if s, ok := t.str("ca_certificate"); ok {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(s)) {
			t.errorf("ca_certificate", "no PEM certificate found")
		} else {
			b.Conn.TLS.CACertPEM = s
		}
	}
	b.Conn.TLS.MinVersion = tlsVersion(t, "ssl_min_version")
	b.Conn.TLS.MaxVersion = tlsVersion(t, "ssl_max_version")
	if lo, hi := b.Conn.TLS.MinVersion, b.Conn.TLS.MaxVersion; lo != 0 && hi != 0 && lo > hi {
		t.errorf("ssl_max_version", "is below ssl_min_version")
	}

	// Timeouts.
	b.Timeouts.Connect = durationKey(t, "connect_timeout_ms", time.Millisecond, maxMillis)
	b.Timeouts.FirstByte = durationKey(t, "first_byte_timeout_ms", time.Millisecond, maxMillis)
	b.Timeouts.BetweenBytes = durationKey(t, "between_bytes_timeout_ms", time.Millisecond, maxMillis)

	// Keepalive.
	ka := &b.Conn.Keepalive
	ka.HTTPKeepaliveTime = durationKey(t, "keepalive_time", time.Second, maxKeepaliveSecs)
	if v, ok := t.boolean("tcp_keepalive_enable"); ok {
		ka.TCPDisabled = !v
	}
	ka.TCPIdle = durationKey(t, "tcp_keepalive_time", time.Second, maxTCPIdleSecs)
	ka.TCPInterval = durationKey(t, "tcp_keepalive_interval", time.Second, maxTCPIntervalSec)
	if n, ok := t.integer("tcp_keepalive_probes", 0, maxTCPProbes); ok {
		ka.TCPCount = int(n)
	}
	if ka.TCPDisabled {
		for _, k := range []string{"tcp_keepalive_time", "tcp_keepalive_interval", "tcp_keepalive_probes"} {
			if t.has(k) {
				t.errorf(k, "has no effect with tcp_keepalive_enable = false")
			}
		}
	}

	// Pool limits.
	if n, ok := t.integer("max_connections", 0, maxCount); ok {
		b.Conn.Limits.MaxConnections = int(n)
	}
	if n, ok := t.integer("max_use", 0, maxCount); ok {
		b.Conn.Limits.MaxUse = int(n)
	}
	b.Conn.Limits.MaxLifetime = durationKey(t, "max_lifetime", time.Millisecond, maxMillis)
	if v, ok := t.boolean("dont_pool"); ok {
		b.Conn.DontPool = v
	}

	// Health, as Viceroy's health key: what is_healthy answers.
	if s, ok := t.str("health"); ok {
		switch strings.ToLower(s) {
		case "unknown":
			b.Health = HealthUnknown
		case "healthy":
			b.Health = HealthHealthy
		case "unhealthy":
			b.Health = HealthUnhealthy
		default:
			t.errorf("health", `unknown health %q; want "unknown", "healthy" or "unhealthy"`, s)
		}
	}

	// Keys of Fastly's local server that edgehost does not implement:
	// accepted, listed in Manifest.Ignored.
	if v, ok := t.boolean("grpc"); ok && v {
		p.ignored = append(p.ignored, t.key("grpc").String())
	}
	if t.has("client_certificate") {
		t.ignore("client_certificate")
		p.ignored = append(p.ignored, t.key("client_certificate").String())
	}
	return b, len(p.errs) == nerr
}

// parseURL fills the scheme, host, port and address of b from raw.
func (b *Backend) parseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	var port uint16
	switch u.Scheme {
	case "http":
		port = 80
	case "https":
		port = 443
	default:
		return errorString("scheme must be http or https, have " + strconv.Quote(u.Scheme))
	}
	switch {
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return errorString("no host; want scheme://host[:port]")
	case u.User != nil:
		return errorString("user information is not supported")
	case u.RawQuery != "" || u.ForceQuery:
		return errorString("a query is not supported")
	case u.Fragment != "":
		return errorString("a fragment is not supported")
	}
	if ps := u.Port(); ps != "" {
		n, err := strconv.ParseUint(ps, 10, 16)
		if err != nil || n == 0 {
			return errorString("bad port " + strconv.Quote(ps))
		}
		port = uint16(n)
	}
	if p := u.EscapedPath(); p != "" && p != "/" {
		b.PathPrefix = p
	}
	b.Host = u.Hostname()
	b.Port = port
	b.Conn.Scheme = u.Scheme
	b.Conn.Addr = net.JoinHostPort(b.Host, strconv.Itoa(int(port)))
	return nil
}

// errorString is an error with a fixed text.
type errorString string

func (e errorString) Error() string { return string(e) }

// durationKey reads the integer at k in [0, max] as a count of unit.
func durationKey(t *table, k string, unit time.Duration, max int64) time.Duration {
	n, ok := t.integer(k, 0, max)
	if !ok {
		return 0
	}
	return time.Duration(n) * unit
}

// tlsVersion reads a TLS version key: "1.0" to "1.3" (a float such as 1.2
// is accepted too). It returns the crypto/tls constant, 0 when absent.
func tlsVersion(t *table, k string) uint16 {
	v, ok := t.get(k)
	if !ok {
		return 0
	}
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case float64:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		t.errorf(k, "want a string such as \"1.2\", have %s", typeName(v))
		return 0
	}
	switch s {
	case "1.0":
		return tls.VersionTLS10
	case "1.1":
		return tls.VersionTLS11
	case "1.2":
		return tls.VersionTLS12
	case "1.3":
		return tls.VersionTLS13
	}
	t.errorf(k, "unknown TLS version %q; want \"1.0\", \"1.1\", \"1.2\" or \"1.3\"", s)
	return 0
}
