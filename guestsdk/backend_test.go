//go:build !wasip1

package guestsdk

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
)

func TestBackendOptionsEncode(t *testing.T) {
	tests := []struct {
		name   string
		opts   BackendOptions
		mask   uint32
		fields map[int]uint32 // offset -> value; every other u32 field must be 0
	}{
		{name: "zero", opts: BackendOptions{}, mask: 0},
		{
			name: "timeouts in ms",
			opts: BackendOptions{ConnectTimeout: 1500 * time.Millisecond, FirstByteTimeout: 2 * time.Second, BetweenBytesTimeout: time.Minute},
			mask: abi.BackendConnectTimeout | abi.BackendFirstByteTimeout | abi.BackendBetweenBytesTimeout,
			fields: map[int]uint32{
				abi.CfgConnectTimeoutMs: 1500, abi.CfgFirstByteTimeoutMs: 2000, abi.CfgBetweenBytesTimeoutMs: 60000,
			},
		},
		{
			name: "http keepalive only sets bit 15 and leaves tcp at host defaults",
			opts: BackendOptions{HTTPKeepaliveTime: 30 * time.Second},
			mask: abi.BackendKeepalive,
			fields: map[int]uint32{
				abi.CfgHTTPKeepaliveTimeMs: 30000, abi.CfgTCPKeepaliveEnable: 1,
			},
		},
		{
			name: "tcp keepalive in whole seconds",
			opts: BackendOptions{TCPKeepalive: On, TCPKeepaliveTime: time.Minute, TCPKeepaliveInterval: 10 * time.Second, TCPKeepaliveProbes: 5},
			mask: abi.BackendKeepalive,
			fields: map[int]uint32{
				abi.CfgTCPKeepaliveEnable: 1, abi.CfgTCPKeepaliveTime: 60, abi.CfgTCPKeepaliveInterval: 10, abi.CfgTCPKeepaliveProbes: 5,
			},
		},
		{
			name: "tcp keepalive off",
			opts: BackendOptions{TCPKeepalive: Off},
			mask: abi.BackendKeepalive,
		},
		{
			name:   "pooling limits set bit 16 only",
			opts:   BackendOptions{MaxConnections: 32, MaxUse: 100, MaxLifetime: 90 * time.Second},
			mask:   abi.BackendPoolingLimits,
			fields: map[int]uint32{abi.CfgMaxConnections: 32, abi.CfgMaxUse: 100, abi.CfgMaxLifetimeMs: 90000},
		},
		{
			name:   "max use alone",
			opts:   BackendOptions{MaxUse: 1},
			mask:   abi.BackendPoolingLimits,
			fields: map[int]uint32{abi.CfgMaxUse: 1},
		},
		{
			name: "dont pool is bit 12",
			opts: BackendOptions{DontPool: true},
			mask: abi.BackendDontPool,
		},
		{
			name:   "tls",
			opts:   BackendOptions{UseSSL: true, SSLMinVersion: TLS12, SSLMaxVersion: TLS13},
			mask:   abi.BackendUseSSL | abi.BackendSSLMinVersion | abi.BackendSSLMaxVersion,
			fields: map[int]uint32{abi.CfgSSLMinVersion: abi.TLS12, abi.CfgSSLMaxVersion: abi.TLS13},
		},
		{
			name: "u32 max is accepted",
			opts: BackendOptions{ConnectTimeout: 4294967295 * time.Millisecond, TCPKeepaliveTime: 4294967295 * time.Second},
			mask: abi.BackendConnectTimeout | abi.BackendKeepalive,
			fields: map[int]uint32{
				abi.CfgConnectTimeoutMs: 0xFFFFFFFF, abi.CfgTCPKeepaliveTime: 0xFFFFFFFF, abi.CfgTCPKeepaliveEnable: 1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mask, cfg, err := tt.opts.encode()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if mask != tt.mask {
				t.Errorf("mask = %#x, want %#x", mask, tt.mask)
			}
			raw := cfg.bytes()
			if len(raw) != 108 {
				t.Fatalf("config is %d bytes, want 108", len(raw))
			}
			for off := 0; off < len(raw); off += 4 {
				if got, want := le32(raw, off), tt.fields[off]; got != want {
					t.Errorf("field at offset %d = %d, want %d", off, got, want)
				}
			}
		})
	}
}

func TestBackendOptionsInvalid(t *testing.T) {
	tests := []struct {
		name string
		opts BackendOptions
		want []string // substrings, one per expected problem
	}{
		{"sub-millisecond timeout", BackendOptions{ConnectTimeout: 1500 * time.Microsecond}, []string{"ConnectTimeout: 1.5ms is not a whole number of milliseconds"}},
		{"negative timeout", BackendOptions{FirstByteTimeout: -time.Second}, []string{"FirstByteTimeout: -1s is negative"}},
		{"ms overflow", BackendOptions{BetweenBytesTimeout: 4294967296 * time.Millisecond}, []string{"BetweenBytesTimeout", "more than 4294967295 milliseconds"}},
		{"http keepalive not whole ms", BackendOptions{HTTPKeepaliveTime: time.Nanosecond}, []string{"HTTPKeepaliveTime: 1ns is not a whole number of milliseconds"}},
		{"tcp time not whole seconds", BackendOptions{TCPKeepaliveTime: 1500 * time.Millisecond}, []string{"TCPKeepaliveTime: 1.5s is not a whole number of seconds"}},
		{"tcp interval not whole seconds", BackendOptions{TCPKeepaliveInterval: 999 * time.Millisecond}, []string{"TCPKeepaliveInterval: 999ms is not a whole number of seconds"}},
		{"seconds overflow", BackendOptions{TCPKeepaliveInterval: 4294967296 * time.Second}, []string{"TCPKeepaliveInterval", "more than 4294967295 seconds"}},
		{"negative probes", BackendOptions{TCPKeepaliveProbes: -1}, []string{"TCPKeepaliveProbes: -1 is negative"}},
		{"off with times", BackendOptions{TCPKeepalive: Off, TCPKeepaliveProbes: 3}, []string{"TCPKeepalive: Off together with"}},
		{"unknown toggle", BackendOptions{TCPKeepalive: Toggle(7)}, []string{"unknown Toggle 7"}},
		{"max lifetime not whole ms", BackendOptions{MaxLifetime: time.Microsecond}, []string{"MaxLifetime: 1µs is not a whole number of milliseconds"}},
		{"negative pool limits", BackendOptions{MaxConnections: -2, MaxUse: -3}, []string{"MaxConnections: -2 is negative", "MaxUse: -3 is negative"}},
		{"tls", BackendOptions{SSLMinVersion: TLS13, SSLMaxVersion: 0x0300}, []string{"SSLMaxVersion: unknown TLS version", "SSLMinVersion: TLS 1.3 is above SSLMaxVersion"}},
		{"all collected", BackendOptions{ConnectTimeout: -1, HTTPKeepaliveTime: 1, MaxUse: -1}, []string{"ConnectTimeout", "HTTPKeepaliveTime", "MaxUse"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := installFake(t)
			_, err := RegisterDynamicBackend("b", "127.0.0.1:1", tt.opts)
			if !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("err = %v, want ErrInvalidOption", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if n := f.calls["fastly_http_req.register_dynamic_backend"]; n != 0 {
				t.Errorf("register_dynamic_backend called %d times despite invalid options", n)
			}
		})
	}
}

func TestRegisterDynamicBackendStruct(t *testing.T) {
	f := installFake(t)
	opts := BackendOptions{
		HostOverride:         "example.org",
		ConnectTimeout:       250 * time.Millisecond,
		UseSSL:               true,
		SSLMinVersion:        TLS12,
		CertHostname:         "cert.example.org",
		CACertificate:        "-----BEGIN CERTIFICATE-----\n",
		Ciphers:              "HIGH",
		SNIHostname:          "sni.example.org",
		HTTPKeepaliveTime:    30 * time.Second,
		TCPKeepalive:         On,
		TCPKeepaliveTime:     60 * time.Second,
		TCPKeepaliveInterval: 10 * time.Second,
		TCPKeepaliveProbes:   5,
		MaxConnections:       32,
	}
	b, err := RegisterDynamicBackend("dyn", "127.0.0.1:8443", opts)
	if err != nil {
		t.Fatal(err)
	}
	be := f.backends["dyn"]
	if be == nil || be.target != "127.0.0.1:8443" {
		t.Fatalf("host did not get the backend: %+v", be)
	}
	wantMask := abi.BackendHostOverride | abi.BackendConnectTimeout | abi.BackendUseSSL | abi.BackendSSLMinVersion |
		abi.BackendCertHostname | abi.BackendCACert | abi.BackendCiphers | abi.BackendSNIHostname |
		abi.BackendKeepalive | abi.BackendPoolingLimits
	if be.mask != wantMask {
		t.Errorf("mask = %#x, want %#x", be.mask, wantMask)
	}
	if len(be.raw) != abi.CfgSize {
		t.Fatalf("raw config %d bytes", len(be.raw))
	}
	// Offsets spelled out, so that a wrong abi constant fails here too.
	for off, want := range map[int]uint32{
		4: 11, 8: 250, 20: abi.TLS12, 32: 16, 40: 28, 48: 4, 56: 15,
		72: 30000, 76: 1, 80: 10, 84: 5, 88: 60, 92: 32, 96: 0, 100: 0, 104: 0,
	} {
		if got := le32(be.raw, off); got != want {
			t.Errorf("offset %d = %d, want %d", off, got, want)
		}
	}
	for off, want := range map[int]string{
		0: "example.org", 28: "cert.example.org", 36: "-----BEGIN CERTIFICATE-----\n", 44: "HIGH", 52: "sni.example.org",
	} {
		if got := be.strs[off]; got != want {
			t.Errorf("string at offset %d = %q, want %q", off, got, want)
		}
	}

	// The getters convert the host's units back to durations.
	check := func(name string, got, want any, err error) {
		t.Helper()
		if err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", name, got, err, want)
		}
	}
	dyn, err := b.IsDynamic()
	check("IsDynamic", dyn, true, err)
	host, err := b.Host()
	check("Host", host, "127.0.0.1", err)
	port, err := b.Port()
	check("Port", port, 8443, err)
	oh, err := b.OverrideHost()
	check("OverrideHost", oh, "example.org", err)
	ct, err := b.ConnectTimeout()
	check("ConnectTimeout", ct, 250*time.Millisecond, err)
	fb, err := b.FirstByteTimeout()
	check("FirstByteTimeout", fb, 15*time.Second, err)
	ssl, err := b.IsSSL()
	check("IsSSL", ssl, true, err)
	minV, err := b.SSLMinVersion()
	check("SSLMinVersion", minV, TLS12, err)
	maxV, err := b.SSLMaxVersion()
	check("SSLMaxVersion (none)", maxV, TLSVersion(0), err)
	hk, err := b.HTTPKeepaliveTime()
	check("HTTPKeepaliveTime", hk, 30*time.Second, err)
	te, err := b.TCPKeepaliveEnabled()
	check("TCPKeepaliveEnabled", te, true, err)
	tt, err := b.TCPKeepaliveTime()
	check("TCPKeepaliveTime", tt, time.Minute, err)
	ti, err := b.TCPKeepaliveInterval()
	check("TCPKeepaliveInterval", ti, 10*time.Second, err)
	tp, err := b.TCPKeepaliveProbes()
	check("TCPKeepaliveProbes", tp, 5, err)

	if _, err := RegisterDynamicBackend("dyn", "127.0.0.1:1", BackendOptions{}); !errors.Is(err, ErrBackendExists) {
		t.Errorf("second registration: %v, want ErrBackendExists", err)
	}
	if _, err := BackendByName("nope").Host(); !errors.Is(err, ErrBackendNotFound) {
		t.Errorf("unknown backend Host: %v, want ErrBackendNotFound", err)
	}
	if ok, err := BackendByName("nope").Exists(); ok || err != nil {
		t.Errorf("unknown backend Exists = %v, %v", ok, err)
	}
}

func TestRegisterDynamicBackendUnsupported(t *testing.T) {
	f := installFake(t)
	f.force["fastly_http_req.register_dynamic_backend"] = abi.Unsupported
	_, err := RegisterDynamicBackend("b", "169.254.169.254:80", BackendOptions{})
	var se *StatusError
	if !errors.As(err, &se) || se.Status != abi.Unsupported || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("err = %v, want a StatusError unsupported", err)
	}
	if _, err := RegisterDynamicBackend("", "", BackendOptions{}); !errors.Is(err, ErrInvalidOption) ||
		!strings.Contains(err.Error(), "name is empty") || !strings.Contains(err.Error(), "target is empty") {
		t.Errorf("empty name and target: %v", err)
	}
}
