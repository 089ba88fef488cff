package guestsdk

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/edgehost/edgehost/abi"
)

// TLSVersion is a TLS protocol version, numbered as in crypto/tls
// (TLS12 == tls.VersionTLS12), so a crypto/tls constant converts directly.
// The zero value means "not set".
type TLSVersion uint16

// TLS versions a backend accepts.
const (
	TLS10 TLSVersion = 0x0301
	TLS11 TLSVersion = 0x0302
	TLS12 TLSVersion = 0x0303
	TLS13 TLSVersion = 0x0304
)

// String returns e.g. "TLS 1.2", or "TLSVersion(0x...)" for an unknown one.
func (v TLSVersion) String() string {
	switch v {
	case TLS10:
		return "TLS 1.0"
	case TLS11:
		return "TLS 1.1"
	case TLS12:
		return "TLS 1.2"
	case TLS13:
		return "TLS 1.3"
	}
	return fmt.Sprintf("TLSVersion(%#04x)", uint16(v))
}

// toABI returns the tls_version enum value (abi.TLS10..abi.TLS13).
func (v TLSVersion) toABI() (uint32, bool) {
	if v < TLS10 || v > TLS13 {
		return 0, false
	}
	return uint32(v - TLS10), true
}

// Toggle is a setting that is either left to the host or turned on or off.
type Toggle uint8

// Toggle values.
const (
	// Default leaves the setting to the host (TCP keepalive: on, on
	// edgehost).
	Default Toggle = iota
	// On turns the setting on.
	On
	// Off turns the setting off.
	Off
)

// BackendOptions are the settings of a dynamic backend. The zero value of
// every field means "not set": the host's default applies, and the
// field's mask bit (abi.Backend*) is not sent. Durations are converted
// exactly to the ABI's units; a duration that is negative, is not a whole
// number of that unit, or does not fit in a u32 of that unit is an error
// (ErrInvalidOption), as is a negative count or one above 2^32-1.
type BackendOptions struct {
	// HostOverride replaces the Host header of requests to the backend
	// (and is the default TLS server name). Mask bit 1.
	HostOverride string

	// ConnectTimeout bounds connecting to the backend; whole
	// milliseconds. Mask bit 2.
	ConnectTimeout time.Duration
	// FirstByteTimeout bounds the wait for the response headers; whole
	// milliseconds. Mask bit 3.
	FirstByteTimeout time.Duration
	// BetweenBytesTimeout bounds the gap between two reads of the
	// response body; whole milliseconds. Mask bit 4.
	BetweenBytesTimeout time.Duration

	// UseSSL connects with TLS (https). Mask bit 5.
	UseSSL bool
	// SSLMinVersion and SSLMaxVersion bound the TLS version. Mask bits 6
	// and 7.
	SSLMinVersion, SSLMaxVersion TLSVersion
	// CertHostname is the name the backend's certificate must be valid
	// for. Mask bit 8.
	CertHostname string
	// CACertificate, PEM, is the only root trusted for the backend. Mask
	// bit 9.
	CACertificate string
	// Ciphers is an OpenSSL cipher list. Mask bit 10.
	Ciphers string
	// SNIHostname is the TLS server name to send. Mask bit 11.
	SNIHostname string

	// DontPool opens a new connection for every request and closes it
	// afterwards. Mask bit 12.
	DontPool bool

	// HTTPKeepaliveTime: a pooled connection idle this long is closed by
	// the host; whole milliseconds. Mask bit 15 (keepalive).
	HTTPKeepaliveTime time.Duration
	// TCPKeepalive turns SO_KEEPALIVE on the backend sockets On or Off;
	// Default leaves it to the host (on, on edgehost). Any keepalive
	// option sets mask bit 15, and the host then reads the enable field:
	// Default writes 1 there. Off together with a TCP keepalive time,
	// interval or probe count is an error.
	TCPKeepalive Toggle
	// TCPKeepaliveTime is the idle time before the first TCP keepalive
	// probe (TCP_KEEPIDLE); whole seconds. Mask bit 15.
	TCPKeepaliveTime time.Duration
	// TCPKeepaliveInterval is the time between TCP keepalive probes
	// (TCP_KEEPINTVL); whole seconds. Mask bit 15.
	TCPKeepaliveInterval time.Duration
	// TCPKeepaliveProbes is how many unanswered probes declare the
	// connection dead (TCP_KEEPCNT). Mask bit 15.
	TCPKeepaliveProbes int

	// MaxConnections caps the connections open to the backend; further
	// requests wait (bounded by the connect timeout). Mask bit 16
	// (pooling limits).
	MaxConnections int
	// MaxUse is how many requests one connection serves before it is
	// closed. Mask bit 16.
	MaxUse int
	// MaxLifetime: a connection older than this is not reused; whole
	// milliseconds. Mask bit 16.
	MaxLifetime time.Duration
}

// backendConfig is a dynamic_backend_config in guest memory: 108 bytes,
// little-endian u32 fields at the abi.Cfg* offsets, 4-byte aligned.
// keep holds what the pointer fields point at until the hostcall returns.
type backendConfig struct {
	words [abi.CfgSize / 4]uint32
	keep  []unsafe.Pointer
}

func (c *backendConfig) bytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&c.words[0])), abi.CfgSize)
}

func (c *backendConfig) put(off int, v uint32) {
	b := c.bytes()[off : off+4]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func (c *backendConfig) putString(off int, s string) {
	p := strPtr(s)
	c.keep = append(c.keep, p)
	c.put(off, pin(p))
	c.put(off+4, uint32(len(s)))
}

// optionChecker collects every invalid option.
type optionChecker struct{ errs []error }

func (oc *optionChecker) fail(field string, format string, args ...any) {
	oc.errs = append(oc.errs, fmt.Errorf("%w: %s: %s", ErrInvalidOption, field, fmt.Sprintf(format, args...)))
}

// units converts d to a u32 count of unit (time.Millisecond or
// time.Second), exactly.
func (oc *optionChecker) units(field string, d, unit time.Duration) uint32 {
	name := "milliseconds"
	if unit == time.Second {
		name = "seconds"
	}
	switch {
	case d < 0:
		oc.fail(field, "%v is negative", d)
	case d%unit != 0:
		oc.fail(field, "%v is not a whole number of %s", d, name)
	case d/unit > 0xFFFFFFFF:
		oc.fail(field, "%v is more than 4294967295 %s", d, name)
	default:
		return uint32(d / unit)
	}
	return 0
}

// count converts n to a u32.
func (oc *optionChecker) count(field string, n int) uint32 {
	switch {
	case n < 0:
		oc.fail(field, "%d is negative", n)
	case uint64(n) > 0xFFFFFFFF:
		oc.fail(field, "%d is more than 4294967295", n)
	default:
		return uint32(n)
	}
	return 0
}

func (oc *optionChecker) tls(field string, v TLSVersion) uint32 {
	t, ok := v.toABI()
	if !ok {
		oc.fail(field, "unknown TLS version %v", v)
	}
	return t
}

// encode validates o and returns the mask and the config struct. Errors
// name every invalid field, joined with errors.Join.
func (o *BackendOptions) encode() (uint32, *backendConfig, error) {
	var oc optionChecker
	c := &backendConfig{}
	var mask uint32

	if o.HostOverride != "" {
		mask |= abi.BackendHostOverride
		c.putString(abi.CfgHostOverride, o.HostOverride)
	}
	ms := func(bit uint32, off int, field string, d time.Duration) {
		if d != 0 {
			v := oc.units("BackendOptions."+field, d, time.Millisecond)
			mask |= bit
			c.put(off, v)
		}
	}
	ms(abi.BackendConnectTimeout, abi.CfgConnectTimeoutMs, "ConnectTimeout", o.ConnectTimeout)
	ms(abi.BackendFirstByteTimeout, abi.CfgFirstByteTimeoutMs, "FirstByteTimeout", o.FirstByteTimeout)
	ms(abi.BackendBetweenBytesTimeout, abi.CfgBetweenBytesTimeoutMs, "BetweenBytesTimeout", o.BetweenBytesTimeout)

	if o.UseSSL {
		mask |= abi.BackendUseSSL
	}
	if o.SSLMinVersion != 0 {
		mask |= abi.BackendSSLMinVersion
		c.put(abi.CfgSSLMinVersion, oc.tls("BackendOptions.SSLMinVersion", o.SSLMinVersion))
	}
	if o.SSLMaxVersion != 0 {
		mask |= abi.BackendSSLMaxVersion
		c.put(abi.CfgSSLMaxVersion, oc.tls("BackendOptions.SSLMaxVersion", o.SSLMaxVersion))
	}
	if o.SSLMinVersion != 0 && o.SSLMaxVersion != 0 && o.SSLMinVersion > o.SSLMaxVersion {
		oc.fail("BackendOptions.SSLMinVersion", "%v is above SSLMaxVersion %v", o.SSLMinVersion, o.SSLMaxVersion)
	}
	str := func(bit uint32, off int, s string) {
		if s != "" {
			mask |= bit
			c.putString(off, s)
		}
	}
	str(abi.BackendCertHostname, abi.CfgCertHostname, o.CertHostname)
	str(abi.BackendCACert, abi.CfgCACert, o.CACertificate)
	str(abi.BackendCiphers, abi.CfgCiphers, o.Ciphers)
	str(abi.BackendSNIHostname, abi.CfgSNIHostname, o.SNIHostname)

	if o.DontPool {
		mask |= abi.BackendDontPool
	}

	tcpTimes := o.TCPKeepaliveTime != 0 || o.TCPKeepaliveInterval != 0 || o.TCPKeepaliveProbes != 0
	if o.HTTPKeepaliveTime != 0 || o.TCPKeepalive != Default || tcpTimes {
		mask |= abi.BackendKeepalive
		c.put(abi.CfgHTTPKeepaliveTimeMs, oc.units("BackendOptions.HTTPKeepaliveTime", o.HTTPKeepaliveTime, time.Millisecond))
		switch o.TCPKeepalive {
		case Default, On:
			c.put(abi.CfgTCPKeepaliveEnable, 1)
		case Off:
			c.put(abi.CfgTCPKeepaliveEnable, 0)
			if tcpTimes {
				oc.fail("BackendOptions.TCPKeepalive", "Off together with a TCP keepalive time, interval or probe count")
			}
		default:
			oc.fail("BackendOptions.TCPKeepalive", "unknown Toggle %d", o.TCPKeepalive)
		}
		c.put(abi.CfgTCPKeepaliveTime, oc.units("BackendOptions.TCPKeepaliveTime", o.TCPKeepaliveTime, time.Second))
		c.put(abi.CfgTCPKeepaliveInterval, oc.units("BackendOptions.TCPKeepaliveInterval", o.TCPKeepaliveInterval, time.Second))
		c.put(abi.CfgTCPKeepaliveProbes, oc.count("BackendOptions.TCPKeepaliveProbes", o.TCPKeepaliveProbes))
	}

	if o.MaxConnections != 0 || o.MaxUse != 0 || o.MaxLifetime != 0 {
		mask |= abi.BackendPoolingLimits
		c.put(abi.CfgMaxConnections, oc.count("BackendOptions.MaxConnections", o.MaxConnections))
		c.put(abi.CfgMaxUse, oc.count("BackendOptions.MaxUse", o.MaxUse))
		c.put(abi.CfgMaxLifetimeMs, oc.units("BackendOptions.MaxLifetime", o.MaxLifetime, time.Millisecond))
	}

	if err := errors.Join(oc.errs...); err != nil {
		return 0, nil, err
	}
	return mask, c, nil
}

// RegisterDynamicBackend registers a backend called name for the rest of
// this request (fastly_http_req.register_dynamic_backend). target is
// "host" or "host:port". opts is validated first: every problem is
// reported at once, joined, each wrapping ErrInvalidOption, and nothing is
// sent to the host. Host answers: error (name taken) is ErrBackendExists;
// unsupported (dynamic backends or this target refused by policy) is a
// *StatusError matching errors.ErrUnsupported; inval (malformed target)
// is a *StatusError.
func RegisterDynamicBackend(name, target string, opts BackendOptions) (*Backend, error) {
	var pre []error
	if name == "" {
		pre = append(pre, fmt.Errorf("%w: backend name is empty", ErrInvalidOption))
	}
	if target == "" {
		pre = append(pre, fmt.Errorf("%w: backend target is empty", ErrInvalidOption))
	}
	mask, cfg, err := opts.encode()
	if err = errors.Join(append(pre, err)...); err != nil {
		return nil, err
	}
	st := reqRegisterDynamicBackend(strPtr(name), uint32(len(name)), strPtr(target), uint32(len(target)), mask, unsafe.Pointer(&cfg.words[0]))
	runtime.KeepAlive(cfg)
	err = statusErr("fastly_http_req.register_dynamic_backend", st)
	if abi.Status(st) == abi.Error {
		return nil, fmt.Errorf("%w: %q: %w", ErrBackendExists, name, err)
	}
	if err != nil {
		return nil, err
	}
	return &Backend{name: name}, nil
}

// Backend names a backend, static (fastly.toml) or dynamic. Its getters
// ask the host (fastly_backend.*) on every call and report the settings
// the host enforces, defaults filled in. A getter whose value is not set
// (status none, e.g. OverrideHost without an override) returns the zero
// value and no error; an unknown backend (status inval) is
// ErrBackendNotFound.
type Backend struct {
	name string
}

// BackendByName returns the backend called name, e.g. a static backend
// from fastly.toml. It makes no hostcall; use Exists to check it.
func BackendByName(name string) *Backend { return &Backend{name: name} }

// Name returns the backend name, as given to Request.Send.
func (b *Backend) Name() string { return b.name }

// namePtr and nameLen are the (name, name_len) arguments of every
// fastly_backend getter.
func (b *Backend) namePtr() unsafe.Pointer { return strPtr(b.name) }
func (b *Backend) nameLen() uint32         { return uint32(len(b.name)) }

// u32 returns the value v a fastly_backend getter wrote, given the
// status st it answered.
func (b *Backend) u32(fn string, st, v uint32) (uint32, error) {
	return b.check(v, statusErr("fastly_backend."+fn, st))
}

func (b *Backend) check(v uint32, err error) (uint32, error) {
	switch abi.Status(statusOf(err)) {
	case abi.OK:
		return v, err
	case abi.None:
		return 0, nil
	case abi.Inval:
		return 0, fmt.Errorf("%w %q: %w", ErrBackendNotFound, b.name, err)
	}
	return 0, err
}

// str returns the string a fastly_backend getter of the shape (buf,
// buf_len, nwritten_out) wrote; get calls the binding with the name.
func (b *Backend) str(fn string, get getBytesFunc) (string, error) {
	s, err := getString("fastly_backend."+fn, get)
	if _, err := b.check(0, err); err != nil || s == "" {
		return "", err
	}
	return s, nil
}

// ms is u32 as a duration of unit.
func (b *Backend) ms(fn string, st, v uint32, unit time.Duration) (time.Duration, error) {
	v, err := b.u32(fn, st, v)
	return time.Duration(v) * unit, err
}

// Exists reports whether the host knows the backend (fastly_backend.exists).
func (b *Backend) Exists() (bool, error) {
	var v uint32
	st := backendExists(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	v, err := b.u32("exists", st, v)
	return v != 0, err
}

// IsDynamic reports whether the backend was registered with
// RegisterDynamicBackend (fastly_backend.is_dynamic).
func (b *Backend) IsDynamic() (bool, error) {
	var v uint32
	st := backendIsDynamic(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	v, err := b.u32("is_dynamic", st, v)
	return v != 0, err
}

// IsSSL reports whether the backend uses TLS (fastly_backend.is_ssl).
func (b *Backend) IsSSL() (bool, error) {
	var v uint32
	st := backendIsSSL(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	v, err := b.u32("is_ssl", st, v)
	return v != 0, err
}

// IsHealthy returns the backend's health: abi.HealthUnknown,
// abi.HealthHealthy or abi.HealthUnhealthy (fastly_backend.is_healthy).
func (b *Backend) IsHealthy() (uint32, error) {
	var v uint32
	st := backendIsHealthy(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	return b.u32("is_healthy", st, v)
}

// Host returns the backend's host, without the port (fastly_backend.get_host).
func (b *Backend) Host() (string, error) {
	return b.str("get_host", func(buf unsafe.Pointer, n uint32, w unsafe.Pointer) uint32 {
		return backendGetHost(b.namePtr(), b.nameLen(), buf, n, w)
	})
}

// OverrideHost returns the Host header override, "" when none
// (fastly_backend.get_override_host).
func (b *Backend) OverrideHost() (string, error) {
	return b.str("get_override_host", func(buf unsafe.Pointer, n uint32, w unsafe.Pointer) uint32 {
		return backendGetOverrideHost(b.namePtr(), b.nameLen(), buf, n, w)
	})
}

// Port returns the backend's TCP port (fastly_backend.get_port).
func (b *Backend) Port() (int, error) {
	var v uint32
	st := backendGetPort(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	v, err := b.u32("get_port", st, v)
	return int(v & 0xFFFF), err
}

// ConnectTimeout returns the connect timeout (host unit: ms;
// fastly_backend.get_connect_timeout_ms).
func (b *Backend) ConnectTimeout() (time.Duration, error) {
	var v uint32
	st := backendGetConnectTimeoutMs(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	return b.ms("get_connect_timeout_ms", st, v, time.Millisecond)
}

// FirstByteTimeout returns the first byte timeout (host unit: ms;
// fastly_backend.get_first_byte_timeout_ms).
func (b *Backend) FirstByteTimeout() (time.Duration, error) {
	var v uint32
	st := backendGetFirstByteTimeoutMs(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	return b.ms("get_first_byte_timeout_ms", st, v, time.Millisecond)
}

// BetweenBytesTimeout returns the between bytes timeout (host unit: ms;
// fastly_backend.get_between_bytes_timeout_ms).
func (b *Backend) BetweenBytesTimeout() (time.Duration, error) {
	var v uint32
	st := backendGetBetweenBytesTimeoutMs(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	return b.ms("get_between_bytes_timeout_ms", st, v, time.Millisecond)
}

// SSLMinVersion returns the lowest TLS version accepted, 0 when not set
// (fastly_backend.get_ssl_min_version).
func (b *Backend) SSLMinVersion() (TLSVersion, error) {
	var v uint32
	st := backendGetSSLMinVersion(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	return b.tlsVersion("get_ssl_min_version", st, v)
}

// SSLMaxVersion returns the highest TLS version accepted, 0 when not set
// (fastly_backend.get_ssl_max_version).
func (b *Backend) SSLMaxVersion() (TLSVersion, error) {
	var v uint32
	st := backendGetSSLMaxVersion(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	return b.tlsVersion("get_ssl_max_version", st, v)
}

func (b *Backend) tlsVersion(fn string, st, v uint32) (TLSVersion, error) {
	if err := statusErr("fastly_backend."+fn, st); err != nil {
		_, err = b.check(0, err)
		return 0, err
	}
	if v > abi.TLS13 {
		return 0, fmt.Errorf("guestsdk: fastly_backend.%s: unknown tls_version %d", fn, v)
	}
	return TLS10 + TLSVersion(v), nil
}

// HTTPKeepaliveTime returns how long an idle pooled connection is kept
// (host unit: ms; fastly_backend.get_http_keepalive_time).
func (b *Backend) HTTPKeepaliveTime() (time.Duration, error) {
	var v uint32
	st := backendGetHTTPKeepaliveTime(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	return b.ms("get_http_keepalive_time", st, v, time.Millisecond)
}

// TCPKeepaliveEnabled reports whether SO_KEEPALIVE is on for the
// backend's sockets (fastly_backend.get_tcp_keepalive_enable).
func (b *Backend) TCPKeepaliveEnabled() (bool, error) {
	var v uint32
	st := backendGetTCPKeepaliveEnable(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	v, err := b.u32("get_tcp_keepalive_enable", st, v)
	return v != 0, err
}

// TCPKeepaliveTime returns the idle time before the first TCP keepalive
// probe (host unit: s; fastly_backend.get_tcp_keepalive_time).
func (b *Backend) TCPKeepaliveTime() (time.Duration, error) {
	var v uint32
	st := backendGetTCPKeepaliveTime(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	return b.ms("get_tcp_keepalive_time", st, v, time.Second)
}

// TCPKeepaliveInterval returns the time between TCP keepalive probes
// (host unit: s; fastly_backend.get_tcp_keepalive_interval).
func (b *Backend) TCPKeepaliveInterval() (time.Duration, error) {
	var v uint32
	st := backendGetTCPKeepaliveInterval(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	return b.ms("get_tcp_keepalive_interval", st, v, time.Second)
}

// TCPKeepaliveProbes returns how many unanswered TCP keepalive probes end
// a connection (fastly_backend.get_tcp_keepalive_probes).
func (b *Backend) TCPKeepaliveProbes() (int, error) {
	var v uint32
	st := backendGetTCPKeepaliveProbes(b.namePtr(), b.nameLen(), unsafe.Pointer(&v))
	v, err := b.u32("get_tcp_keepalive_probes", st, v)
	return int(v), err
}
