package hostcall

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/pool"
)

// Policy decides which dynamic backends guests may register and which
// addresses their pools may dial (README.md, "Dynamic backend policy").
// The zero Policy is the default for a shared host: pool.DefaultGuard,
// public addresses only.
type Policy struct {
	// Disabled refuses every dynamic backend.
	Disabled bool
	// Guard checks a target when it is registered and every address its
	// pool dials; nil means pool.DefaultGuard(). It must be the same
	// pointer for every Env whose dynamic backends are to share pools.
	Guard *pool.Guard
}

func (p *Policy) guard() *pool.Guard {
	if p.Guard == nil {
		return pool.DefaultGuard()
	}
	return p.Guard
}

// check returns nil when host:port may be registered, else an error
// naming the rule (reported as unsupported). It resolves host only when
// the Guard's allowlist needs it (pool.Guard.CheckTarget).
func (p *Policy) check(ctx context.Context, host string, port uint16) error {
	if p.Disabled {
		return errors.New("dynamic backends are disabled on this host")
	}
	return p.guard().CheckTarget(ctx, host, port)
}

// registerDynamicBackend implements register_dynamic_backend: the target
// must pass the env's Policy (else unsupported and one log line), and the
// backend's pool checks every address it dials with the Policy's Guard.
func registerDynamicBackend(c *call, a reqRegisterDynamicBackendArgs) error {
	name, target, mask := string(a.NamePrefix), string(a.Target), a.BackendConfigMask
	if name == "" || len(name) > 255 {
		return statusErr(abi.Inval, "backend name must be 1 to 255 bytes")
	}
	if mask&abi.BackendReserved != 0 {
		return statusErr(abi.Inval, "reserved bit 0 set in backend config mask")
	}
	if mask&^abi.BackendKnownBits != 0 {
		return statusErr(abi.Inval, "unknown bits %#x in backend config mask", mask&^abi.BackendKnownBits)
	}
	if _, taken := c.s.dynamic[name]; taken {
		return statusErr(abi.Error, "backend name %q is already registered", name)
	}
	if _, taken := c.s.env.backends[name]; taken {
		return statusErr(abi.Error, "backend name %q is a static backend", name)
	}
	size := uint32(abi.CfgSizeBase)
	if mask&abi.BackendKeepalive != 0 {
		size = abi.CfgSizeKeepalive
	}
	if mask&(abi.BackendPoolingLimits|abi.BackendPreferIPv4|abi.BackendHealthcheck) != 0 {
		size = abi.CfgSize
	}
	cfg, ok := c.mem.Read(a.BackendConfiguration, size)
	if !ok {
		return statusErr(abi.Inval, "backend config [%d, +%d) outside linear memory", a.BackendConfiguration, size)
	}
	cfg = append([]byte(nil), cfg...)
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(cfg[off:]) }
	str := func(off int) (string, error) {
		ptr, n := u32(off), u32(off+4)
		if n > maxStringLen {
			return "", statusErr(abi.Inval, "config string at offset %d is %d bytes long", off, n)
		}
		b, ok := c.mem.Read(ptr, n)
		if !ok {
			return "", statusErr(abi.Inval, "config string at offset %d outside linear memory", off)
		}
		return string(b), nil
	}
	var s pool.Settings
	var t pool.Timeouts
	s.Scheme = "http"
	if mask&abi.BackendUseSSL != 0 {
		s.Scheme = "https"
	}
	host, port, err := splitTarget(target, s.Scheme)
	if err != nil {
		return statusErr(abi.Inval, "target %q: %v", target, err)
	}
	s.Addr = net.JoinHostPort(host, strconv.Itoa(int(port)))
	if mask&abi.BackendHostOverride != 0 {
		if s.HostOverride, err = str(abi.CfgHostOverride); err != nil {
			return err
		}
	}
	ms := func(off int) time.Duration { return time.Duration(u32(off)) * time.Millisecond }
	if mask&abi.BackendConnectTimeout != 0 {
		t.Connect = ms(abi.CfgConnectTimeoutMs)
	}
	if mask&abi.BackendFirstByteTimeout != 0 {
		t.FirstByte = ms(abi.CfgFirstByteTimeoutMs)
	}
	if mask&abi.BackendBetweenBytesTimeout != 0 {
		t.BetweenBytes = ms(abi.CfgBetweenBytesTimeoutMs)
	}
	for _, v := range []struct {
		bit uint32
		off int
		dst *uint16
	}{{abi.BackendSSLMinVersion, abi.CfgSSLMinVersion, &s.TLS.MinVersion}, {abi.BackendSSLMaxVersion, abi.CfgSSLMaxVersion, &s.TLS.MaxVersion}} {
		if mask&v.bit == 0 {
			continue
		}
		tv := u32(v.off)
		if tv > abi.TLS13 {
			return statusErr(abi.Inval, "unknown TLS version %d", tv)
		}
		*v.dst = tls.VersionTLS10 + uint16(tv)
	}
	if s.TLS.MinVersion != 0 && s.TLS.MaxVersion != 0 && s.TLS.MinVersion > s.TLS.MaxVersion {
		return statusErr(abi.Inval, "ssl_min_version above ssl_max_version")
	}
	if mask&abi.BackendCertHostname != 0 {
		if s.TLS.CertHostname, err = str(abi.CfgCertHostname); err != nil {
			return err
		}
	}
	if mask&abi.BackendCACert != 0 {
		if s.TLS.CACertPEM, err = str(abi.CfgCACert); err != nil {
			return err
		}
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(s.TLS.CACertPEM)) {
			return statusErr(abi.Inval, "ca_cert holds no PEM certificate")
		}
	}
	if mask&abi.BackendCiphers != 0 {
		if _, err := str(abi.CfgCiphers); err != nil {
			return err
		}
	}
	if mask&abi.BackendSNIHostname != 0 {
		if s.TLS.SNIHostname, err = str(abi.CfgSNIHostname); err != nil {
			return err
		}
	}
	if mask&abi.BackendClientCert != 0 {
		return statusErr(abi.Unsupported, "client certificates are not supported")
	}
	if mask&abi.BackendGRPC != 0 {
		return statusErr(abi.Unsupported, "gRPC backends are not supported")
	}
	s.DontPool = mask&abi.BackendDontPool != 0
	if mask&abi.BackendKeepalive != 0 {
		k := &s.Keepalive
		k.HTTPKeepaliveTime = ms(abi.CfgHTTPKeepaliveTimeMs)
		k.TCPIdle = time.Duration(u32(abi.CfgTCPKeepaliveTime)) * time.Second
		k.TCPInterval = time.Duration(u32(abi.CfgTCPKeepaliveInterval)) * time.Second
		k.TCPCount = int(u32(abi.CfgTCPKeepaliveProbes))
		// tcp_keepalive_enable 0 turns TCP keepalive off, unless a TCP
		// keepalive value was given (then it is implied on).
		k.TCPDisabled = u32(abi.CfgTCPKeepaliveEnable) == 0 && k.TCPIdle == 0 && k.TCPInterval == 0 && k.TCPCount == 0
	}
	if mask&abi.BackendPoolingLimits != 0 {
		s.Limits.MaxConnections = int(u32(abi.CfgMaxConnections))
		s.Limits.MaxUse = int(u32(abi.CfgMaxUse))
		s.Limits.MaxLifetime = ms(abi.CfgMaxLifetimeMs)
	}
	s.Guard = c.s.env.policy.guard()
	if err := c.s.env.policy.check(c.ctx, host, port); err != nil {
		c.s.logger().Warn("dynamic backend refused by policy", "backend", name, "target", target, "reason", err)
		return statusErr(abi.Unsupported, "%v", err)
	}
	b, err := newBackend(name, true, s, t, c.s.env.pools)
	if errors.Is(err, pool.ErrTooManyPools) {
		return statusErr(abi.LimitExceeded, "%v", err)
	}
	if err != nil {
		return statusErr(abi.Inval, "%v", err)
	}
	if c.s.dynamic == nil {
		c.s.dynamic = map[string]*backend{}
	}
	c.s.dynamic[name] = b
	return nil
}

// splitTarget parses host[:port]; the port defaults by scheme.
func splitTarget(target, scheme string) (string, uint16, error) {
	if target == "" || strings.ContainsAny(target, "/?#@ ") {
		return "", 0, errors.New("want host[:port]")
	}
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		host, portStr = strings.Trim(target, "[]"), "80"
		if strings.Contains(host, ":") {
			if _, err := netip.ParseAddr(host); err != nil {
				return "", 0, errors.New("want host[:port]")
			}
		}
		if scheme == "https" {
			portStr = "443"
		}
	}
	if host == "" {
		return "", 0, errors.New("empty host")
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return "", 0, fmt.Errorf("bad port %q", portStr)
	}
	return host, uint16(port), nil
}

// backendU32 binds a fastly_backend getter of a u32: the backend named by
// the first parameter, the value written to the out-pointer. parts picks
// the two from the hostcall's argument struct.
func backendU32[A any](bind func(func(*call, A) error) impl, parts func(A) ([]byte, uint32), v func(c *call, b *backend) (uint32, error)) impl {
	return bind(func(c *call, a A) error {
		name, out := parts(a)
		b, err := c.s.lookupBackend(string(name))
		if err != nil {
			return err
		}
		x, err := v(c, b)
		if err != nil {
			return err
		}
		return c.putU32(out, x)
	})
}

func backendImpls() []impl {
	ms := func(d time.Duration) uint32 { return uint32(d / time.Millisecond) }
	secs := func(d time.Duration) uint32 { return uint32(d / time.Second) }
	b2u := func(v bool) uint32 {
		if v {
			return 1
		}
		return 0
	}
	val := func(f func(b *backend) uint32) func(*call, *backend) (uint32, error) {
		return func(_ *call, b *backend) (uint32, error) { return f(b), nil }
	}
	tlsVersion := func(pick func(b *backend) uint16) func(*call, *backend) (uint32, error) {
		return func(_ *call, b *backend) (uint32, error) {
			if b.settings.Scheme != "https" {
				return 0, statusErr(abi.None, "backend %q does not use TLS", b.name)
			}
			v := pick(b)
			if v < tls.VersionTLS10 || v > tls.VersionTLS13 {
				return 0, statusErr(abi.None, "backend %q uses crypto/tls's default", b.name)
			}
			return uint32(v - tls.VersionTLS10), nil
		}
	}
	timeout := func(a backendGetConnectTimeoutMsArgs) ([]byte, uint32) { return a.Backend, a.TimeoutMsOut }
	tlsParts := func(a backendGetSSLMinVersionArgs) ([]byte, uint32) { return a.Backend, a.TLSVersionOut }
	hostGetter := func(override bool) func(c *call, a backendGetHostArgs) error {
		return func(c *call, a backendGetHostArgs) error {
			b, err := c.s.lookupBackend(string(a.Backend))
			if err != nil {
				return err
			}
			if !override {
				return c.writeBuf(a.Value, []byte(b.host))
			}
			if b.settings.HostOverride == "" {
				return statusErr(abi.None, "backend %q has no host override", b.name)
			}
			return c.writeBuf(a.Value, []byte(b.settings.HostOverride))
		}
	}
	return []impl{
		bindBackendExists(func(c *call, a backendExistsArgs) error {
			_, err := c.s.lookupBackend(string(a.Backend))
			return c.putU32(a.BackendExistsOut, b2u(err == nil))
		}),
		backendU32(bindBackendIsHealthy, func(a backendIsHealthyArgs) ([]byte, uint32) { return a.Backend, a.BackendHealthOut },
			val(func(b *backend) uint32 { return b.health })),
		backendU32(bindBackendIsDynamic, func(a backendIsDynamicArgs) ([]byte, uint32) { return a.Backend, a.IsDynamicOut },
			val(func(b *backend) uint32 { return b2u(b.dynamic) })),
		backendU32(bindBackendIsSSL, func(a backendIsSSLArgs) ([]byte, uint32) { return a.Backend, a.IsSSLOut },
			val(func(b *backend) uint32 { return b2u(b.settings.Scheme == "https") })),
		bindBackendGetPort(func(c *call, a backendGetPortArgs) error {
			b, err := c.s.lookupBackend(string(a.Backend))
			if err != nil {
				return err
			}
			return c.putU16(a.PortOut, b.port)
		}),
		bindBackendGetHost(hostGetter(false)),
		bindBackendGetOverrideHost(hostGetter(true)),
		backendU32(bindBackendGetConnectTimeoutMs, timeout, val(func(b *backend) uint32 { return ms(b.timeouts.Connect) })),
		backendU32(bindBackendGetFirstByteTimeoutMs, timeout, val(func(b *backend) uint32 { return ms(b.timeouts.FirstByte) })),
		backendU32(bindBackendGetBetweenBytesTimeoutMs, timeout, val(func(b *backend) uint32 { return ms(b.timeouts.BetweenBytes) })),
		backendU32(bindBackendGetSSLMinVersion, tlsParts, tlsVersion(func(b *backend) uint16 { return b.settings.TLS.MinVersion })),
		backendU32(bindBackendGetSSLMaxVersion, tlsParts, tlsVersion(func(b *backend) uint16 { return b.settings.TLS.MaxVersion })),
		backendU32(bindBackendGetHTTPKeepaliveTime, timeout, val(func(b *backend) uint32 { return ms(b.settings.Keepalive.HTTPKeepaliveTime) })),
		backendU32(bindBackendGetTCPKeepaliveEnable, func(a backendGetTCPKeepaliveEnableArgs) ([]byte, uint32) { return a.Backend, a.IsKeepaliveOut },
			val(func(b *backend) uint32 { return b2u(!b.settings.Keepalive.TCPDisabled) })),
		backendU32(bindBackendGetTCPKeepaliveInterval, func(a backendGetTCPKeepaliveIntervalArgs) ([]byte, uint32) { return a.Backend, a.TimeoutSecsOut },
			val(func(b *backend) uint32 { return secs(b.settings.Keepalive.TCPInterval) })),
		backendU32(bindBackendGetTCPKeepaliveProbes, func(a backendGetTCPKeepaliveProbesArgs) ([]byte, uint32) { return a.Backend, a.ProbeCountOut },
			val(func(b *backend) uint32 { return uint32(b.settings.Keepalive.TCPCount) })),
		backendU32(bindBackendGetTCPKeepaliveTime, func(a backendGetTCPKeepaliveTimeArgs) ([]byte, uint32) { return a.Backend, a.TimeoutSecsOut },
			val(func(b *backend) uint32 { return secs(b.settings.Keepalive.TCPIdle) })),
	}
}

// sendErrorTag maps an origin request error onto a send_error_detail tag.
func sendErrorTag(err error) uint32 {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return abi.SendErrOK
	case errors.Is(err, pool.ErrDialRefused):
		return abi.SendErrDestinationIPUnroute
	case errors.Is(err, pool.ErrPoolExhausted):
		return abi.SendErrConnectionLimit
	case errors.Is(err, pool.ErrConnectTimeout):
		return abi.SendErrConnectionTimeout
	case errors.Is(err, pool.ErrConnectionRefused):
		return abi.SendErrConnectionRefused
	case errors.As(err, &dnsErr) || errors.Is(err, pool.ErrDNS):
		if dnsErr != nil && dnsErr.IsTimeout {
			return abi.SendErrDNSTimeout
		}
		return abi.SendErrDNSError
	case errors.Is(err, pool.ErrTLS):
		return abi.SendErrTLSCertificate
	case errors.Is(err, pool.ErrFirstByteTimeout), errors.Is(err, pool.ErrBetweenBytesTimeout):
		return abi.SendErrHTTPResponseTimeout
	case errors.Is(err, pool.ErrInvalidResponse):
		return abi.SendErrHTTPProtocolError
	case errors.Is(err, pool.ErrConnectionTerminated):
		return abi.SendErrConnectionTerminated
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return abi.SendErrHTTPResponseTimeout
	}
	return abi.SendErrInternal
}
