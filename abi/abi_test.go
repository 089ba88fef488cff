package abi

import "testing"

func TestFuncsAreUniqueAndWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Funcs() {
		key := f.Module + "." + f.Name
		if seen[key] {
			t.Errorf("%s listed twice", key)
		}
		seen[key] = true
		for _, c := range f.Params {
			if c != 'i' && c != 'I' {
				t.Errorf("%s: parameter type %q, want i or I", key, c)
			}
		}
		if len(f.Module) <= len(ModulePrefix) || f.Module[:len(ModulePrefix)] != ModulePrefix {
			t.Errorf("%s: module outside %s*", key, ModulePrefix)
		}
	}
}

func TestStatusString(t *testing.T) {
	tests := []struct {
		s    Status
		want string
	}{{OK, "ok"}, {Inval, "inval"}, {Again, "again"}, {Status(99), "status(99)"}}
	for _, tc := range tests {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Status(%d).String() = %q, want %q", uint32(tc.s), got, tc.want)
		}
	}
}

// The dynamic_backend_config layout: 4-byte fields, no padding, 108
// bytes; the short sizes older guests pass end where bits 15 and 16 start.
func TestBackendConfigLayout(t *testing.T) {
	offsets := []int{CfgHostOverride, CfgHostOverride + 4, CfgConnectTimeoutMs, CfgFirstByteTimeoutMs,
		CfgBetweenBytesTimeoutMs, CfgSSLMinVersion, CfgSSLMaxVersion, CfgCertHostname, CfgCertHostname + 4,
		CfgCACert, CfgCACert + 4, CfgCiphers, CfgCiphers + 4, CfgSNIHostname, CfgSNIHostname + 4,
		CfgClientCertificate, CfgClientCertificate + 4, CfgClientKey, CfgHTTPKeepaliveTimeMs,
		CfgTCPKeepaliveEnable, CfgTCPKeepaliveInterval, CfgTCPKeepaliveProbes, CfgTCPKeepaliveTime,
		CfgMaxConnections, CfgMaxUse, CfgMaxLifetimeMs, CfgHealthcheck}
	for i, off := range offsets {
		if off != 4*i {
			t.Errorf("field %d at offset %d, want %d", i, off, 4*i)
		}
	}
	if CfgSize != 4*len(offsets) || CfgSizeBase != CfgHTTPKeepaliveTimeMs || CfgSizeKeepalive != CfgMaxConnections {
		t.Errorf("sizes %d/%d/%d do not match the layout", CfgSizeBase, CfgSizeKeepalive, CfgSize)
	}
	if BackendKnownBits != BackendHealthcheck<<1-1 {
		t.Errorf("BackendKnownBits %#x", BackendKnownBits)
	}
}
