package hostcall

import (
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/tlsfp"
)

// testHello is a ClientHello handshake message with SNI "sni.test", ALPN
// h2, one cipher (TLS_AES_128_GCM_SHA256), supported_versions 1.3 and 1.2.
func testHello() []byte {
	var ext []byte
	add := func(typ uint16, data []byte) {
		ext = binary.BigEndian.AppendUint16(ext, typ)
		ext = binary.BigEndian.AppendUint16(ext, uint16(len(data)))
		ext = append(ext, data...)
	}
	name := []byte("sni.test")
	sni := binary.BigEndian.AppendUint16(nil, uint16(3+len(name)))
	sni = append(sni, 0)
	sni = binary.BigEndian.AppendUint16(sni, uint16(len(name)))
	add(0x0000, append(sni, name...))
	add(0x0010, []byte{0, 3, 2, 'h', '2'})
	add(0x002b, []byte{4, 3, 4, 3, 3})
	body := []byte{3, 3}
	body = append(body, make([]byte, 32)...) // random
	body = append(body, 0)                   // session id
	body = append(body, 0, 2, 0x13, 0x01)    // ciphers
	body = append(body, 1, 0)                // compression
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	return append([]byte{1, 0, byte(len(body) >> 8), byte(len(body))}, body...)
}

func tlsHarness(t *testing.T) (*harness, *DownstreamTLS) {
	cert := &x509.Certificate{Raw: []byte("DER bytes of a client certificate")}
	d := &DownstreamTLS{
		State: tls.ConnectionState{Version: tls.VersionTLS12, CipherSuite: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			ServerName: "sni.test", PeerCertificates: []*x509.Certificate{cert}},
		ClientHello:      testHello(),
		CertVerifyResult: CertVerifyUnknownCA,
	}
	return newHarness(t, harnessOpts{downTLS: d, h2fp: func() string { return "1:4096|0|0|m,a,s,p" }}), d
}

// TestTLSGetters: on a TLS connection every getter answers its value in
// both forms, with buflen, badalign and inval as for any getter.
func TestTLSGetters(t *testing.T) {
	h, d := tlsHarness(t)
	ch, err := tlsfp.ParseClientHello(d.ClientHello)
	if err != nil {
		t.Fatal(err)
	}
	req := uint64(h.newHandle(kindDownReq))
	texts := []struct {
		name, want string
		reqForm    bool
	}{
		{"downstream_tls_protocol", "TLSv1.2", true},
		{"downstream_tls_cipher_openssl_name", "ECDHE-RSA-AES128-GCM-SHA256", true},
		{"downstream_tls_client_servername", "sni.test", false},
		{"downstream_tls_client_hello", string(d.ClientHello), true},
		{"downstream_tls_raw_client_certificate", "DER bytes of a client certificate", true},
		{"downstream_tls_ja4", ch.JA4(), true},
		{"downstream_client_h2_fingerprint", "1:4096|0|0|m,a,s,p", true},
	}
	for _, tc := range texts {
		n := uint32(len(tc.want))
		if st, _, need := h.getBuf(abi.ModuleHTTPDownstream, tc.name, n-1, req); st != abi.Buflen || need != n {
			t.Errorf("%s with a short buffer: %v, needs %d; want buflen, %d", tc.name, st, need, n)
		}
		if st, got, _ := h.getBuf(abi.ModuleHTTPDownstream, tc.name, n, req); st != abi.OK || got != tc.want {
			t.Errorf("%s = %v %q, want %q", tc.name, st, got, tc.want)
		}
		if tc.reqForm {
			if st, got, _ := h.getBuf(abi.ModuleHTTPReq, tc.name, 4096); st != abi.OK || got != tc.want {
				t.Errorf("fastly_http_req.%s = %v %q, want %q", tc.name, st, got, tc.want)
			}
		}
	}
	if ja4 := ch.JA4(); ja4[:10] != "t13d0103h2" {
		t.Errorf("JA4 %s: want t13d0103h2 (TCP, TLS 1.3 offered, SNI, 1 cipher, 3 extensions, h2)", ja4)
	}

	o := h.out()
	h.want(abi.OK, abi.ModuleHTTPDownstream, "downstream_tls_client_cert_verify_result", req, o)
	if got := h.u32(o); got != CertVerifyUnknownCA {
		t.Errorf("verify result %d, want %d", got, CertVerifyUnknownCA)
	}
	want := md5.Sum([]byte(ch.JA3()))
	if ch.JA3() != "771,4865,0-16-43,," {
		t.Errorf("JA3 %q", ch.JA3())
	}
	buf, nw := h.alloc(16), h.out()
	h.want(abi.OK, abi.ModuleHTTPDownstream, "downstream_tls_ja3_md5", req, uint64(buf), nw)
	if h.u32(nw) != 16 || string(h.bytesAt(uint64(buf), 16)) != string(want[:]) {
		t.Errorf("JA3 MD5 %x (%d bytes), want %x", h.bytesAt(uint64(buf), 16), h.u32(nw), want)
	}
	h.want(abi.Badalign, abi.ModuleHTTPDownstream, "downstream_tls_ja3_md5", req, uint64(buf), nw+1)
	h.want(abi.Inval, abi.ModuleHTTPDownstream, "downstream_tls_ja3_md5", req, uint64(h.mem.size-8), nw)
	h.want(abi.Badf, abi.ModuleHTTPDownstream, "downstream_tls_protocol", req+1000, uint64(buf), 16, nw)
}

// TestTLSGettersWithout: a TLS connection without SNI or a client
// certificate, on HTTP/1, answers none for those.
func TestTLSGettersWithout(t *testing.T) {
	d := &DownstreamTLS{State: tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_256_GCM_SHA384}, CertVerifyResult: CertVerifyCertificateMissing}
	h := newHarness(t, harnessOpts{downTLS: d})
	req := uint64(h.newHandle(kindDownReq))
	for _, name := range []string{"downstream_tls_client_servername", "downstream_tls_raw_client_certificate", "downstream_tls_client_hello", "downstream_tls_ja4", "downstream_client_h2_fingerprint"} {
		if st, _, _ := h.getBuf(abi.ModuleHTTPDownstream, name, 64, req); st != abi.None {
			t.Errorf("%s: %v, want none", name, st)
		}
	}
	h.want(abi.None, abi.ModuleHTTPDownstream, "downstream_tls_ja3_md5", req, uint64(h.alloc(16)), h.out())
	if st, got, _ := h.getBuf(abi.ModuleHTTPDownstream, "downstream_tls_cipher_openssl_name", 64, req); st != abi.OK || got != "TLS_AES_256_GCM_SHA384" {
		t.Errorf("cipher %v %q", st, got)
	}
}
