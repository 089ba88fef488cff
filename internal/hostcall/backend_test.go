package hostcall

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/pool"
)

// noDNS is a resolver that fails at once: tests never resolve names.
var noDNS = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	return nil, errors.New("no DNS in tests")
}}

// mustNotResolve is a resolver for policies that must not resolve: a
// lookup fails, and counts in lookups.
var mustNotResolve = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
	lookups.Add(1)
	return nil, errors.New("this policy check must not resolve names")
}}

// lookups counts mustNotResolve's lookups.
var lookups atomic.Int64

// backendCfg is a dynamic_backend_config being built in guest memory.
type backendCfg struct {
	h   *harness
	ptr uint32
}

// newCfg allocates a zeroed config struct of size bytes.
func (h *harness) newCfg(size uint32) backendCfg {
	p := h.alloc(size)
	clear(h.mem.b[p : p+size])
	return backendCfg{h, p}
}

func (c backendCfg) u32(off int, v uint32) backendCfg {
	c.h.putU32(c.ptr+uint32(off), v)
	return c
}

// str places s in memory and points the (ptr, len) field at off to it.
func (c backendCfg) str(off int, s string) backendCfg {
	p, n := c.h.str(s)
	return c.u32(off, uint32(p)).u32(off+4, uint32(n))
}

// register calls register_dynamic_backend with the config at cfgPtr.
func (h *harness) register(name, target string, mask uint32, cfgPtr uint32) abi.Status {
	h.t.Helper()
	np, nl := h.str(name)
	tp, tl := h.str(target)
	return h.call(abi.ModuleHTTPReq, "register_dynamic_backend", np, nl, tp, tl, uint64(mask), uint64(cfgPtr))
}

// backendU32 calls a (name, u32_out) getter of fastly_backend.
func (h *harness) backendU32(getter, name string) (abi.Status, uint32) {
	h.t.Helper()
	np, nl := h.str(name)
	o := h.out()
	st := h.call(abi.ModuleBackend, getter, np, nl, o)
	if getter == "get_port" {
		return st, uint32(h.u16(o))
	}
	return st, h.u32(o)
}

func TestRegisterDynamicBackendErrors(t *testing.T) {
	const memSize = 64 << 10
	type setup func(h *harness) uint32 // returns the config pointer
	cfg := func(size uint32, fill func(c backendCfg)) setup {
		return func(h *harness) uint32 {
			c := h.newCfg(size)
			if fill != nil {
				fill(c)
			}
			return c.ptr
		}
	}
	// atEnd places a zeroed struct of n bytes so that it ends exactly at
	// the end of memory.
	atEnd := func(n uint32) setup {
		return func(h *harness) uint32 {
			clear(h.mem.b[memSize-n : memSize])
			return memSize - n
		}
	}
	full := cfg(abi.CfgSize, nil)
	// listeners: local development, with this host's listeners on 9000
	// (admin) and 9002 (downstream).
	listeners := guardPolicy(pool.GuardConfig{AllowPrivate: true, Listeners: []string{"127.0.0.1:9000", "[::]:9002"}})
	for _, tc := range []struct {
		name, backend, target string
		mask                  uint32
		cfg                   setup
		policy                *Policy
		want                  abi.Status
	}{
		{name: "ok", backend: "b", target: "127.0.0.1:8080", cfg: full, want: abi.OK},
		{name: "reserved-bit", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendReserved, cfg: full, want: abi.Inval},
		{name: "unknown-bit-19", backend: "b", target: "127.0.0.1:8080", mask: 1 << 19, cfg: full, want: abi.Inval},
		{name: "unknown-bit-31", backend: "b", target: "127.0.0.1:8080", mask: 1 << 31, cfg: full, want: abi.Inval},
		{name: "empty-name", backend: "", target: "127.0.0.1:8080", cfg: full, want: abi.Inval},
		{name: "long-name", backend: strings.Repeat("n", 256), target: "127.0.0.1:8080", cfg: full, want: abi.Inval},
		{name: "name-255", backend: strings.Repeat("n", 255), target: "127.0.0.1:8080", cfg: full, want: abi.OK},
		{name: "static-name", backend: "static", target: "127.0.0.1:8080", cfg: full, want: abi.Error},

		{name: "target-empty", backend: "b", target: "", cfg: full, want: abi.Inval},
		{name: "target-path", backend: "b", target: "a/b", cfg: full, want: abi.Inval},
		{name: "target-port-0", backend: "b", target: "host:0", cfg: full, want: abi.Inval},
		{name: "target-port-99999", backend: "b", target: "host:99999", cfg: full, want: abi.Inval},
		{name: "target-port-empty", backend: "b", target: "host:", cfg: full, want: abi.Inval},
		{name: "target-port-name", backend: "b", target: "host:http", cfg: full, want: abi.Inval},
		{name: "target-userinfo", backend: "b", target: "u@host:80", cfg: full, want: abi.Inval},
		{name: "target-url", backend: "b", target: "http://host", cfg: full, want: abi.Inval},
		{name: "target-no-host", backend: "b", target: ":80", cfg: full, want: abi.Inval},
		{name: "target-colons", backend: "b", target: "a:b:c", cfg: full, want: abi.Inval},

		{name: "short-struct-72", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendConnectTimeout, cfg: atEnd(abi.CfgSizeBase), want: abi.OK},
		{name: "short-struct-71", backend: "b", target: "127.0.0.1:8080", cfg: atEnd(abi.CfgSizeBase - 1), want: abi.Inval},
		{name: "keepalive-needs-92", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendKeepalive, cfg: atEnd(abi.CfgSizeBase), want: abi.Inval},
		{name: "keepalive-92", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendKeepalive, cfg: atEnd(abi.CfgSizeKeepalive), want: abi.OK},
		{name: "pooling-needs-108", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendPoolingLimits, cfg: atEnd(abi.CfgSizeKeepalive), want: abi.Inval},
		{name: "prefer-ipv4-needs-108", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendPreferIPv4, cfg: atEnd(abi.CfgSizeKeepalive), want: abi.Inval},
		{name: "pooling-108", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendPoolingLimits, cfg: atEnd(abi.CfgSize), want: abi.OK},
		{name: "cfg-ptr-past-end", backend: "b", target: "127.0.0.1:8080", cfg: func(*harness) uint32 { return memSize }, want: abi.Inval},
		{name: "cfg-ptr-max", backend: "b", target: "127.0.0.1:8080", cfg: func(*harness) uint32 { return 0xFFFFFFFF }, want: abi.Inval},

		{name: "host-override-len-max", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendHostOverride,
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.u32(abi.CfgHostOverride, 1024).u32(abi.CfgHostOverride+4, 0xFFFFFFFF) }), want: abi.Inval},
		{name: "host-override-len-over-limit", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendHostOverride,
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.u32(abi.CfgHostOverride, 0).u32(abi.CfgHostOverride+4, maxStringLen+1) }), want: abi.Inval},
		{name: "host-override-ptr-past-end", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendHostOverride,
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.u32(abi.CfgHostOverride, memSize-2).u32(abi.CfgHostOverride+4, 4) }), want: abi.Inval},
		{name: "host-override-unread-without-bit", backend: "b", target: "127.0.0.1:8080",
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.u32(abi.CfgHostOverride, 0xFFFFFFF0).u32(abi.CfgHostOverride+4, 0xFFFFFFFF) }), want: abi.OK},
		{name: "sni-len-max", backend: "b", target: "127.0.0.1:8443", mask: abi.BackendUseSSL | abi.BackendSNIHostname,
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.u32(abi.CfgSNIHostname+4, 0xFFFFFFFF) }), want: abi.Inval},
		{name: "cert-hostname-ptr-max", backend: "b", target: "127.0.0.1:8443", mask: abi.BackendUseSSL | abi.BackendCertHostname,
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.u32(abi.CfgCertHostname, 0xFFFFFFFF).u32(abi.CfgCertHostname+4, 1) }), want: abi.Inval},
		{name: "ciphers-ptr-max", backend: "b", target: "127.0.0.1:8443", mask: abi.BackendUseSSL | abi.BackendCiphers,
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.u32(abi.CfgCiphers, 0xFFFFFFFF).u32(abi.CfgCiphers+4, 1) }), want: abi.Inval},
		{name: "ca-cert-not-pem", backend: "b", target: "127.0.0.1:8443", mask: abi.BackendUseSSL | abi.BackendCACert,
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.str(abi.CfgCACert, "not a certificate") }), want: abi.Inval},
		{name: "tls-version-unknown", backend: "b", target: "127.0.0.1:8443", mask: abi.BackendUseSSL | abi.BackendSSLMinVersion,
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.u32(abi.CfgSSLMinVersion, abi.TLS13+1) }), want: abi.Inval},
		{name: "tls-min-above-max", backend: "b", target: "127.0.0.1:8443", mask: abi.BackendUseSSL | abi.BackendSSLMinVersion | abi.BackendSSLMaxVersion,
			cfg: cfg(abi.CfgSize, func(c backendCfg) { c.u32(abi.CfgSSLMinVersion, abi.TLS13).u32(abi.CfgSSLMaxVersion, abi.TLS12) }), want: abi.Inval},
		{name: "client-cert", backend: "b", target: "127.0.0.1:8443", mask: abi.BackendUseSSL | abi.BackendClientCert, cfg: full, want: abi.Unsupported},
		{name: "grpc", backend: "b", target: "127.0.0.1:8080", mask: abi.BackendGRPC, cfg: full, want: abi.Unsupported},

		{name: "link-local-v4", backend: "b", target: "169.254.169.254", cfg: full, want: abi.Unsupported},
		{name: "link-local-v4-port", backend: "b", target: "169.254.169.254:80", cfg: full, want: abi.Unsupported},
		{name: "link-local-v6", backend: "b", target: "[fe80::1]:80", cfg: full, want: abi.Unsupported},
		{name: "link-local-mapped", backend: "b", target: "[::ffff:169.254.169.254]:80", cfg: full, want: abi.Unsupported},
		{name: "link-local-allowed-explicitly", backend: "b", target: "169.254.169.254:80", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"169.254.169.254"}}), want: abi.OK},
		{name: "allowed-list-excludes", backend: "b", target: "127.0.0.1:8080", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"10.0.0.0/8", "192.0.2.1"}, Resolver: noDNS}), want: abi.Unsupported},
		{name: "allowed-list-cidr", backend: "b", target: "10.1.2.3:8080", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"10.0.0.0/8"}, Resolver: noDNS}), want: abi.OK},
		{name: "allowed-list-hostport", backend: "b", target: "127.0.0.1:8080", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"127.0.0.1:8080"}, Resolver: noDNS}), want: abi.OK},
		{name: "allowed-list-other-port", backend: "b", target: "127.0.0.1:8081", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"127.0.0.1:8080"}, Resolver: noDNS}), want: abi.Unsupported},
		{name: "disabled", backend: "b", target: "127.0.0.1:8080", cfg: full, policy: &Policy{Disabled: true}, want: abi.Unsupported},
		{name: "refused-admin", backend: "b", target: "127.0.0.1:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "refused-other-port", backend: "b", target: "127.0.0.1:9001", cfg: full, policy: listeners, want: abi.OK},
		// The host's own ports by every address that reaches them.
		{name: "own-port-unspecified-v4", backend: "b", target: "0.0.0.0:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "own-port-unspecified-v6", backend: "b", target: "[::]:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "own-port-loopback-v6", backend: "b", target: "[::1]:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "own-port-other-loopback", backend: "b", target: "127.0.0.2:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "own-port-mapped", backend: "b", target: "[::ffff:127.0.0.1]:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "own-port-mapped-hex", backend: "b", target: "[::ffff:7f00:1]:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "own-port-nat64", backend: "b", target: "[64:ff9b::127.0.0.1]:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "own-port-downstream", backend: "b", target: "127.0.0.1:9002", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "own-port-even-if-listed", backend: "b", target: "127.0.0.1:9000", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"127.0.0.1:9000", "127.0.0.0/8"}, Listeners: []string{"127.0.0.1:9000"}}), want: abi.Unsupported},
		// IPv4 shorthands getaddrinfo would read as 127.0.0.1: refused
		// without a lookup, whatever the port.
		{name: "shorthand-127.1", backend: "b", target: "127.1:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "shorthand-127.1-other-port", backend: "b", target: "127.1:9001", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "shorthand-decimal", backend: "b", target: "2130706433:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "shorthand-hex", backend: "b", target: "0x7f.1:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		{name: "shorthand-octal", backend: "b", target: "0177.0.0.1:9000", cfg: full, policy: listeners, want: abi.Unsupported},
		// The default policy (a shared host): public addresses only.
		{name: "default-loopback", backend: "b", target: "127.0.0.1:8080", cfg: full, policy: &Policy{}, want: abi.Unsupported},
		{name: "default-loopback-v6", backend: "b", target: "[::1]:8080", cfg: full, policy: &Policy{}, want: abi.Unsupported},
		{name: "default-unspecified", backend: "b", target: "0.0.0.0:8080", cfg: full, policy: &Policy{}, want: abi.Unsupported},
		{name: "default-private", backend: "b", target: "10.1.2.3:8080", cfg: full, policy: &Policy{}, want: abi.Unsupported},
		{name: "default-private-v6", backend: "b", target: "[fd00::1]:8080", cfg: full, policy: &Policy{}, want: abi.Unsupported},
		{name: "default-cgnat", backend: "b", target: "100.64.0.1:8080", cfg: full, policy: &Policy{}, want: abi.Unsupported},
		{name: "default-mapped-private", backend: "b", target: "[::ffff:192.168.0.1]:8080", cfg: full, policy: &Policy{}, want: abi.Unsupported},
		{name: "default-multicast", backend: "b", target: "224.0.0.1:8080", cfg: full, policy: &Policy{}, want: abi.Unsupported},
		{name: "default-broadcast", backend: "b", target: "255.255.255.255:8080", cfg: full, policy: &Policy{}, want: abi.Unsupported},
		{name: "default-public", backend: "b", target: "203.0.113.9:8080", cfg: full, policy: &Policy{}, want: abi.OK},
		{name: "default-public-v6", backend: "b", target: "[2001:db8::1]:8080", cfg: full, policy: &Policy{}, want: abi.OK},
		// A name is checked when dialled, on what it resolves to then:
		// registering it resolves nothing unless the allowlist needs it.
		{name: "name-not-resolved", backend: "b", target: "origin.invalid:80", cfg: full, policy: guardPolicy(pool.GuardConfig{Resolver: mustNotResolve}), want: abi.OK},
		{name: "name-listed-not-resolved", backend: "b", target: "API.example.:80", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"api.example", "10.0.0.0/8"}, Resolver: mustNotResolve}), want: abi.OK},
		{name: "name-hostport-listed", backend: "b", target: "api.example:8443", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"api.example:8443"}, Resolver: mustNotResolve}), want: abi.OK},
		{name: "name-unlisted-names-only", backend: "b", target: "other.example:80", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"api.example", "api.example:8443"}, Resolver: mustNotResolve}), want: abi.Unsupported},
		{name: "name-unlisted-cidr-resolves", backend: "b", target: "origin.invalid:80", cfg: full,
			policy: guardPolicy(pool.GuardConfig{Allowed: []string{"10.0.0.0/8"}, Resolver: noDNS}), want: abi.Unsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{memSize: memSize, envCfg: EnvConfig{
				Policy:   tc.policy,
				Backends: []StaticBackend{{Name: "static", Settings: pool.Settings{Scheme: "http", Addr: "127.0.0.1:1"}}},
			}})
			before := lookups.Load()
			if got := h.register(tc.backend, tc.target, tc.mask, tc.cfg(h)); got != tc.want {
				t.Fatalf("register_dynamic_backend(%q, %q, %#x) = %v, want %v", tc.backend, tc.target, tc.mask, got, tc.want)
			}
			if n := lookups.Load() - before; n != 0 {
				t.Fatalf("register_dynamic_backend(%q) resolved the name %d times; the policy does not need it", tc.target, n)
			}
			refusals := 0
			for _, r := range h.logs.records() {
				if r.msg == "dynamic backend refused by policy" {
					refusals++
				}
			}
			byPolicy := tc.want == abi.Unsupported && tc.mask&(abi.BackendClientCert|abi.BackendGRPC) == 0
			if want := map[bool]int{true: 1}[byPolicy]; refusals != want {
				t.Fatalf("%d log lines \"dynamic backend refused by policy\", want %d", refusals, want)
			}
			st, exists := h.backendU32("exists", tc.backend)
			wantExists := uint32(0)
			if tc.want == abi.OK || tc.backend == "static" {
				wantExists = 1
			}
			if tc.backend != "" && (st != abi.OK || exists != wantExists) {
				t.Fatalf("exists(%q) after register = %v %d, want %d", tc.backend, st, exists, wantExists)
			}
			if tc.want == abi.OK {
				if st, d := h.backendU32("is_dynamic", tc.backend); st != abi.OK || d != 1 {
					t.Fatalf("is_dynamic = %v %d", st, d)
				}
				// The same name again is an error.
				if got := h.register(tc.backend, "127.0.0.1:8080", 0, h.newCfg(abi.CfgSize).ptr); got != abi.Error {
					t.Fatalf("second registration of %q = %v, want error", tc.backend, got)
				}
			}
		})
	}
}

func ms(d time.Duration) uint32   { return uint32(d / time.Millisecond) }
func secs(d time.Duration) uint32 { return uint32(d / time.Second) }

// TestDynamicBackendGetters: after registering, the fastly_backend
// getters report the effective settings: defaults where the guest passed
// nothing (or 0), its values where it passed them.
func TestDynamicBackendGetters(t *testing.T) {
	defaults := map[string]uint32{
		"is_dynamic": 1, "is_ssl": 0, "is_healthy": abi.HealthUnknown, "exists": 1, "get_port": 8080,
		"get_connect_timeout_ms":       ms(pool.DefaultConnectTimeout),
		"get_first_byte_timeout_ms":    ms(pool.DefaultFirstByteTimeout),
		"get_between_bytes_timeout_ms": ms(pool.DefaultBetweenBytesTimeout),
		"get_http_keepalive_time":      ms(pool.DefaultHTTPKeepaliveTime),
		"get_tcp_keepalive_enable":     1,
		"get_tcp_keepalive_time":       secs(pool.DefaultTCPKeepaliveIdle),
		"get_tcp_keepalive_interval":   secs(pool.DefaultTCPKeepaliveInterval),
		"get_tcp_keepalive_probes":     pool.DefaultTCPKeepaliveCount,
	}
	with := func(over map[string]uint32) map[string]uint32 {
		m := map[string]uint32{}
		for k, v := range defaults {
			m[k] = v
		}
		for k, v := range over {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		target   string
		mask     uint32
		fill     func(c backendCfg)
		want     map[string]uint32
		host     string
		override string // "" means get_override_host is none
		sslMin   int64  // -1: none
		sslMax   int64
	}{
		{name: "nothing-set", target: "127.0.0.1:8080", want: defaults, host: "127.0.0.1", sslMin: -1, sslMax: -1},
		{name: "keepalive-bit-all-zero", target: "127.0.0.1:8080", mask: abi.BackendKeepalive,
			fill: func(c backendCfg) { c.u32(abi.CfgTCPKeepaliveEnable, 1) },
			want: defaults, host: "127.0.0.1", sslMin: -1, sslMax: -1},
		{name: "keepalive-values", target: "127.0.0.1:8080", mask: abi.BackendKeepalive,
			fill: func(c backendCfg) {
				c.u32(abi.CfgHTTPKeepaliveTimeMs, 5000).u32(abi.CfgTCPKeepaliveEnable, 1).u32(abi.CfgTCPKeepaliveTime, 30).
					u32(abi.CfgTCPKeepaliveInterval, 5).u32(abi.CfgTCPKeepaliveProbes, 3)
			},
			want: with(map[string]uint32{"get_http_keepalive_time": 5000, "get_tcp_keepalive_time": 30,
				"get_tcp_keepalive_interval": 5, "get_tcp_keepalive_probes": 3}),
			host: "127.0.0.1", sslMin: -1, sslMax: -1},
		{name: "tcp-keepalive-off", target: "127.0.0.1:8080", mask: abi.BackendKeepalive,
			fill: func(c backendCfg) { c.u32(abi.CfgHTTPKeepaliveTimeMs, 0).u32(abi.CfgTCPKeepaliveEnable, 0) },
			// pool.Settings.Effective: TCP fields stay zero when TCP keepalive is off.
			want: with(map[string]uint32{"get_tcp_keepalive_enable": 0, "get_tcp_keepalive_time": 0,
				"get_tcp_keepalive_interval": 0, "get_tcp_keepalive_probes": 0}),
			host: "127.0.0.1", sslMin: -1, sslMax: -1},
		{name: "tcp-enable-0-with-time-implies-on", target: "127.0.0.1:8080", mask: abi.BackendKeepalive,
			fill: func(c backendCfg) { c.u32(abi.CfgTCPKeepaliveEnable, 0).u32(abi.CfgTCPKeepaliveTime, 45) },
			want: with(map[string]uint32{"get_tcp_keepalive_time": 45}), host: "127.0.0.1", sslMin: -1, sslMax: -1},
		{name: "keepalive-fields-ignored-without-bit", target: "127.0.0.1:8080",
			fill: func(c backendCfg) { c.u32(abi.CfgHTTPKeepaliveTimeMs, 5).u32(abi.CfgTCPKeepaliveProbes, 2) },
			want: defaults, host: "127.0.0.1", sslMin: -1, sslMax: -1},
		{name: "timeouts", target: "127.0.0.1:8080",
			mask: abi.BackendConnectTimeout | abi.BackendFirstByteTimeout | abi.BackendBetweenBytesTimeout,
			fill: func(c backendCfg) {
				c.u32(abi.CfgConnectTimeoutMs, 250).u32(abi.CfgFirstByteTimeoutMs, 2000).u32(abi.CfgBetweenBytesTimeoutMs, 3000)
			},
			want: with(map[string]uint32{"get_connect_timeout_ms": 250, "get_first_byte_timeout_ms": 2000, "get_between_bytes_timeout_ms": 3000}),
			host: "127.0.0.1", sslMin: -1, sslMax: -1},
		{name: "timeouts-zero-mean-default", target: "127.0.0.1:8080",
			mask: abi.BackendConnectTimeout | abi.BackendFirstByteTimeout | abi.BackendBetweenBytesTimeout,
			want: defaults, host: "127.0.0.1", sslMin: -1, sslMax: -1},
		{name: "tls-host-override", target: "127.0.0.1",
			mask: abi.BackendUseSSL | abi.BackendSSLMinVersion | abi.BackendSSLMaxVersion | abi.BackendHostOverride,
			fill: func(c backendCfg) {
				c.u32(abi.CfgSSLMinVersion, abi.TLS12).u32(abi.CfgSSLMaxVersion, abi.TLS13).str(abi.CfgHostOverride, "override.test")
			},
			want: with(map[string]uint32{"is_ssl": 1, "get_port": 443}), host: "127.0.0.1", override: "override.test",
			sslMin: int64(abi.TLS12), sslMax: int64(abi.TLS13)},
		{name: "tls-default-versions", target: "[::1]:8443", mask: abi.BackendUseSSL,
			want: with(map[string]uint32{"is_ssl": 1, "get_port": 8443}), host: "::1", sslMin: -1, sslMax: -1},
		{name: "plain-port-default", target: "127.0.0.1", want: with(map[string]uint32{"get_port": 80}), host: "127.0.0.1", sslMin: -1, sslMax: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{})
			c := h.newCfg(abi.CfgSize)
			if tc.fill != nil {
				tc.fill(c)
			}
			if st := h.register("dyn", tc.target, tc.mask, c.ptr); st != abi.OK {
				t.Fatalf("register: %v", st)
			}
			for getter, want := range tc.want {
				if st, got := h.backendU32(getter, "dyn"); st != abi.OK || got != want {
					t.Errorf("%s = %v %d, want ok %d", getter, st, got, want)
				}
			}
			np, nl := h.str("dyn")
			if st, host, _ := h.getBuf(abi.ModuleBackend, "get_host", 64, np, nl); st != abi.OK || host != tc.host {
				t.Errorf("get_host = %v %q, want %q", st, host, tc.host)
			}
			if st, _, n := h.getBuf(abi.ModuleBackend, "get_host", 1, np, nl); st != abi.Buflen || n != uint32(len(tc.host)) {
				t.Errorf("get_host into 1 byte = %v %d, want buflen %d", st, n, len(tc.host))
			}
			st, ovr, _ := h.getBuf(abi.ModuleBackend, "get_override_host", 64, np, nl)
			if tc.override == "" && st != abi.None || tc.override != "" && (st != abi.OK || ovr != tc.override) {
				t.Errorf("get_override_host = %v %q, want %q", st, ovr, tc.override)
			}
			if tc.override != "" {
				if st, _, n := h.getBuf(abi.ModuleBackend, "get_override_host", 2, np, nl); st != abi.Buflen || n != uint32(len(tc.override)) {
					t.Errorf("get_override_host into 2 bytes = %v %d", st, n)
				}
			}
			for getter, want := range map[string]int64{"get_ssl_min_version": tc.sslMin, "get_ssl_max_version": tc.sslMax} {
				st, got := h.backendU32(getter, "dyn")
				if want < 0 && st != abi.None || want >= 0 && (st != abi.OK || int64(got) != want) {
					t.Errorf("%s = %v %d, want %d (-1: none)", getter, st, got, want)
				}
			}
		})
	}
}

// TestStaticBackendGetters: static backends answer the same getters, and
// an unknown backend is inval everywhere but exists.
func TestStaticBackendGetters(t *testing.T) {
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{Backends: []StaticBackend{{
		Name:     "static",
		Settings: pool.Settings{Scheme: "http", Addr: "127.0.0.1:8081"},
		Timeouts: pool.Timeouts{Connect: 300 * time.Millisecond},
	}}}})
	for getter, want := range map[string]uint32{"exists": 1, "is_dynamic": 0, "is_ssl": 0, "get_port": 8081,
		"get_connect_timeout_ms": 300, "get_first_byte_timeout_ms": ms(pool.DefaultFirstByteTimeout),
		"get_http_keepalive_time": ms(pool.DefaultHTTPKeepaliveTime), "get_tcp_keepalive_probes": pool.DefaultTCPKeepaliveCount} {
		if st, got := h.backendU32(getter, "static"); st != abi.OK || got != want {
			t.Errorf("%s = %v %d, want %d", getter, st, got, want)
		}
	}
	if st, got := h.backendU32("exists", "nope"); st != abi.OK || got != 0 {
		t.Errorf("exists(nope) = %v %d, want ok 0", st, got)
	}
	for _, hc := range Table() {
		if hc.Module != abi.ModuleBackend || hc.Name == "exists" {
			continue
		}
		np, nl := h.str("nope")
		args := []uint64{np, nl, h.out()}
		if len(hc.Params) == 5 {
			args = []uint64{np, nl, uint64(h.alloc(64)), 64, h.out()}
		}
		if st := h.call(hc.Module, hc.Name, args...); st != abi.Inval {
			t.Errorf("%s of an unknown backend = %v, want inval", hc.Name, st)
		}
	}
}

// TestDynamicBackendPerSession: a dynamic backend lives in its sandbox.
func TestDynamicBackendPerSession(t *testing.T) {
	env, _ := newTestEnv(t, EnvConfig{})
	a := newHarness(t, harnessOpts{env: env})
	b := newHarness(t, harnessOpts{env: env})
	if st := a.register("mine", "127.0.0.1:8080", 0, a.newCfg(abi.CfgSize).ptr); st != abi.OK {
		t.Fatalf("register: %v", st)
	}
	if st, e := b.backendU32("exists", "mine"); st != abi.OK || e != 0 {
		t.Fatalf("another session sees the backend: exists = %v %d", st, e)
	}
	if st := b.register("mine", "127.0.0.1:8080", 0, b.newCfg(abi.CfgSize).ptr); st != abi.OK {
		t.Fatalf("another session cannot use the name: %v", st)
	}
}

// TestDynamicBackendSend sends through a dynamic backend to a loopback
// origin, with the host override as the Host header.
func TestDynamicBackendSend(t *testing.T) {
	origin := newTestOrigin(t)
	h := newHarness(t, harnessOpts{})
	c := h.newCfg(abi.CfgSize).str(abi.CfgHostOverride, "override.test")
	if st := h.register("dyn", origin.Listener.Addr().String(), abi.BackendHostOverride, c.ptr); st != abi.OK {
		t.Fatalf("register: %v", st)
	}
	r, b := h.originRequest(http.MethodPost, "http://guest.test/dyn", "via dynamic")
	bp, bl := h.str("dyn")
	ro, bo := h.out(), h.out()
	h.want(abi.OK, abi.ModuleHTTPReq, "send", r, b, bp, bl, ro, bo)
	h.checkOriginResponse(h.u32(ro), h.u32(bo), "via dynamic")
	got := origin.received()
	if len(got) != 1 || got[0].host != "override.test" || got[0].uri != "/dyn" {
		t.Fatalf("origin received %+v", got)
	}
}

// TestDynamicBackendDialRefused: a name that passes registration (it is
// checked when dialled) and resolves to this host's listener fails the
// send: status error, send_error_detail destination_ip_unroutable, one
// log line naming the address, and the listener sees no connection.
func TestDynamicBackendDialRefused(t *testing.T) {
	own := newTestOrigin(t)
	_, port, _ := net.SplitHostPort(own.Listener.Addr().String())
	h := newHarness(t, harnessOpts{envCfg: EnvConfig{
		Policy: guardPolicy(pool.GuardConfig{AllowPrivate: true, Listeners: []string{"127.0.0.1:" + port}}),
	}})
	if st := h.register("dyn", "localhost:"+port, 0, h.newCfg(abi.CfgSize).ptr); st != abi.OK {
		t.Fatalf("register localhost:%s = %v, want ok (checked at dial time)", port, st)
	}
	r, b := h.originRequest(http.MethodGet, "/", "x")
	bp, bl := h.str("dyn")
	ro, bo, det := h.out(), h.out(), uint64(h.alloc(abi.SendErrDetailSize))
	h.want(abi.Error, abi.ModuleHTTPReq, "send_v2", r, b, bp, bl, det, ro, bo)
	if tag := h.u32(det); tag != abi.SendErrDestinationIPUnroute {
		t.Fatalf("send_error_detail tag = %d, want %d (destination_ip_unroutable)", tag, abi.SendErrDestinationIPUnroute)
	}
	if got := own.received(); len(got) != 0 {
		t.Fatalf("the listener received %+v", got)
	}
	failed := 0
	for _, rec := range h.logs.records() {
		if rec.msg == "backend request failed" && strings.Contains(rec.attrs["err"], "refused by the backend policy") {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d \"backend request failed\" lines naming the policy, want 1: %+v", failed, h.logs.records())
	}
}
