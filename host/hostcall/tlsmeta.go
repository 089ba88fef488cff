package hostcall

import (
	"crypto/tls"
	"sync"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/tlsfp"
)

// Results of verifying a downstream client certificate, as
// downstream_tls_client_cert_verify_result answers them (the
// client_cert_verify_result enum of Fastly's ABI; abi/README.md).
const (
	CertVerifyOK                 = 0
	CertVerifyBadCertificate     = 1
	CertVerifyCertificateRevoked = 2
	CertVerifyCertificateExpired = 3
	CertVerifyUnknownCA          = 4
	CertVerifyCertificateMissing = 5
	CertVerifyCertificateUnknown = 6
)

// DownstreamTLS describes the TLS connection a downstream request came
// on. The server makes one per connection, after its handshake; every
// request on the connection shares it.
type DownstreamTLS struct {
	// State is the connection's negotiated state.
	State tls.ConnectionState
	// ClientHello is the client's ClientHello handshake message as it was
	// sent (type 1, 3-byte length, body; without the record layer), nil
	// when it could not be captured.
	ClientHello []byte
	// CertVerifyResult is one of the CertVerify* values: how the client's
	// certificate verified against the host's client CA.
	CertVerifyResult uint32

	once  sync.Once
	hello *tlsfp.ClientHello // nil when ClientHello does not parse
}

// parsed returns the parsed ClientHello, nil if it does not parse.
func (t *DownstreamTLS) parsed() *tlsfp.ClientHello {
	t.once.Do(func() {
		if t.ClientHello != nil {
			t.hello, _ = tlsfp.ParseClientHello(t.ClientHello)
		}
	})
	return t.hello
}

// tlsProtocolName is the protocol as OpenSSL names it (SSL_get_version),
// which is what Compute reports.
func tlsProtocolName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return "unknown"
}

// opensslCipherNames maps the cipher suites crypto/tls negotiates to
// their OpenSSL names (TLS 1.3 suites keep their IANA names in OpenSSL).
var opensslCipherNames = map[uint16]string{
	tls.TLS_AES_128_GCM_SHA256:                        "TLS_AES_128_GCM_SHA256",
	tls.TLS_AES_256_GCM_SHA384:                        "TLS_AES_256_GCM_SHA384",
	tls.TLS_CHACHA20_POLY1305_SHA256:                  "TLS_CHACHA20_POLY1305_SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256:       "ECDHE-ECDSA-AES128-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256:         "ECDHE-RSA-AES128-SHA256",
	tls.TLS_RSA_WITH_AES_128_GCM_SHA256:               "AES128-GCM-SHA256",
	tls.TLS_RSA_WITH_AES_256_GCM_SHA384:               "AES256-GCM-SHA384",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA:                  "AES128-SHA",
	tls.TLS_RSA_WITH_AES_256_CBC_SHA:                  "AES256-SHA",
	tls.TLS_RSA_WITH_AES_128_CBC_SHA256:               "AES128-SHA256",
	tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA:                 "DES-CBC3-SHA",
	tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA:           "ECDHE-RSA-DES-CBC3-SHA",
}

// tlsFact is the body of a TLS getter: t is the request's connection.
type tlsFact func(c *call, t *DownstreamTLS, arg int) error

// onTLS answers none on plain HTTP and fn's answer on TLS.
func onTLS(fn tlsFact) metaGetter {
	return func(c *call, d *downstream, arg int) error {
		if d.d.TLS == nil {
			return statusErr(abi.None, "the downstream connection is not TLS")
		}
		return fn(c, d.d.TLS, arg)
	}
}

// tlsText answers a text fact, none when it is empty.
func tlsText(what string, value func(t *DownstreamTLS) []byte) tlsFact {
	return func(c *call, t *DownstreamTLS, arg int) error {
		v := value(t)
		if v == nil {
			return statusErr(abi.None, "%s: not available for this connection", what)
		}
		return c.putBuf(c.u32(arg), c.u32(arg+1), c.u32(arg+2), v)
	}
}

// tlsMetaImpls are the TLS and HTTP/2 getters of the downstream request
// (README.md, "HTTPS and HTTP/2"): none on plain HTTP (and the h2
// fingerprint none on HTTP/1).
func tlsMetaImpls() []impl {
	var impls []impl
	add := func(is []impl) { impls = append(impls, is...) }
	add(both("downstream_tls_protocol", onTLS(tlsText("TLS protocol", func(t *DownstreamTLS) []byte {
		return []byte(tlsProtocolName(t.State.Version))
	}))))
	add(both("downstream_tls_cipher_openssl_name", onTLS(tlsText("cipher", func(t *DownstreamTLS) []byte {
		if n, ok := opensslCipherNames[t.State.CipherSuite]; ok {
			return []byte(n)
		}
		return []byte(tls.CipherSuiteName(t.State.CipherSuite))
	}))))
	add(both("downstream_tls_client_hello", onTLS(tlsText("ClientHello", func(t *DownstreamTLS) []byte {
		return t.ClientHello
	}))))
	add(both("downstream_tls_raw_client_certificate", onTLS(tlsText("client certificate", func(t *DownstreamTLS) []byte {
		if len(t.State.PeerCertificates) == 0 {
			return nil
		}
		return t.State.PeerCertificates[0].Raw
	}))))
	add(both("downstream_tls_ja4", onTLS(tlsText("JA4", func(t *DownstreamTLS) []byte {
		if h := t.parsed(); h != nil {
			return []byte(h.JA4())
		}
		return nil
	}))))
	add(metaForms("", "downstream_tls_client_servername", onTLS(tlsText("SNI", func(t *DownstreamTLS) []byte {
		if t.State.ServerName == "" {
			return nil
		}
		return []byte(t.State.ServerName)
	}))))
	add(both("downstream_tls_client_cert_verify_result", onTLS(func(c *call, t *DownstreamTLS, arg int) error {
		return c.putU32(c.u32(arg), t.CertVerifyResult)
	})))
	add(both("downstream_tls_ja3_md5", onTLS(func(c *call, t *DownstreamTLS, arg int) error {
		h := t.parsed()
		if h == nil {
			return statusErr(abi.None, "JA3: the ClientHello was not captured")
		}
		sum := h.JA3MD5()
		if err := c.checkOut(c.u32(arg+1), 4, 4); err != nil {
			return err
		}
		if !c.mem.Write(c.u32(arg), sum[:]) {
			return statusErr(abi.Inval, "JA3 buffer outside linear memory")
		}
		return c.putU32(c.u32(arg+1), uint32(len(sum)))
	})))
	add(both("downstream_client_h2_fingerprint", func(c *call, d *downstream, arg int) error {
		fp := ""
		if d.d.H2Fingerprint != nil {
			fp = d.d.H2Fingerprint()
		}
		if fp == "" {
			return statusErr(abi.None, "HTTP/2 fingerprint: the request did not come over HTTP/2")
		}
		return c.putBuf(c.u32(arg), c.u32(arg+1), c.u32(arg+2), []byte(fp))
	}))
	return impls
}
