package hostcall

import (
	"crypto/tls"
	"sync"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/tlsfp"
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

// tlsText answers a text fact of the request's TLS connection into buf:
// none on plain HTTP, and none when value gives nil.
func tlsText(c *call, d *downstream, buf outBuf, what string, value func(t *DownstreamTLS) []byte) error {
	if d.d.TLS == nil {
		return errNotTLS
	}
	v := value(d.d.TLS)
	if v == nil {
		return statusErr(abi.None, "%s: not available for this connection", what)
	}
	return c.writeBuf(buf, v)
}

var errNotTLS = statusErr(abi.None, "the downstream connection is not TLS")

// The TLS facts, each the bytes a getter answers (nil: none).

func tlsProtocol(t *DownstreamTLS) []byte { return []byte(tlsProtocolName(t.State.Version)) }

func tlsCipher(t *DownstreamTLS) []byte {
	if n, ok := opensslCipherNames[t.State.CipherSuite]; ok {
		return []byte(n)
	}
	return []byte(tls.CipherSuiteName(t.State.CipherSuite))
}

func tlsClientHello(t *DownstreamTLS) []byte { return t.ClientHello }

func tlsClientCert(t *DownstreamTLS) []byte {
	if len(t.State.PeerCertificates) == 0 {
		return nil
	}
	return t.State.PeerCertificates[0].Raw
}

func tlsJA4(t *DownstreamTLS) []byte {
	if h := t.parsed(); h != nil {
		return []byte(h.JA4())
	}
	return nil
}

func tlsSNI(t *DownstreamTLS) []byte {
	if t.State.ServerName == "" {
		return nil
	}
	return []byte(t.State.ServerName)
}

// tlsVerifyResult writes how the client certificate verified at out.
func tlsVerifyResult(c *call, d *downstream, out uint32) error {
	if d.d.TLS == nil {
		return errNotTLS
	}
	return c.putU32(out, d.d.TLS.CertVerifyResult)
}

// tlsJA3 writes the 16-byte JA3 MD5 at out and 16 at nwritten (both
// checked by the binding).
func tlsJA3(c *call, d *downstream, out, nwritten uint32) error {
	if d.d.TLS == nil {
		return errNotTLS
	}
	h := d.d.TLS.parsed()
	if h == nil {
		return statusErr(abi.None, "JA3: the ClientHello was not captured")
	}
	sum := h.JA3MD5()
	if !c.mem.Write(out, sum[:]) {
		return statusErr(abi.Inval, "JA3 buffer outside linear memory")
	}
	return c.putU32(nwritten, uint32(len(sum)))
}

// h2Fingerprint writes the HTTP/2 fingerprint into buf: none on HTTP/1.
func h2Fingerprint(c *call, d *downstream, buf outBuf) error {
	fp := ""
	if d.d.H2Fingerprint != nil {
		fp = d.d.H2Fingerprint()
	}
	if fp == "" {
		return statusErr(abi.None, "HTTP/2 fingerprint: the request did not come over HTTP/2")
	}
	return c.writeBuf(buf, []byte(fp))
}

// tlsMetaImpls are the TLS and HTTP/2 getters of the downstream request
// in both forms (README.md, "HTTPS and HTTP/2"): none on plain HTTP (and
// the h2 fingerprint none on HTTP/1).
func tlsMetaImpls() []impl {
	return []impl{
		current(bindReqDownstreamTLSProtocol, func(c *call, d *downstream, a reqDownstreamTLSProtocolArgs) error {
			return tlsText(c, d, a.ProtocolOut, "TLS protocol", tlsProtocol)
		}),
		current(bindReqDownstreamTLSCipherOpensslName, func(c *call, d *downstream, a reqDownstreamTLSCipherOpensslNameArgs) error {
			return tlsText(c, d, a.CipherOut, "cipher", tlsCipher)
		}),
		current(bindReqDownstreamTLSClientHello, func(c *call, d *downstream, a reqDownstreamTLSClientHelloArgs) error {
			return tlsText(c, d, a.ChelloOut, "ClientHello", tlsClientHello)
		}),
		current(bindReqDownstreamTLSRawClientCertificate, func(c *call, d *downstream, a reqDownstreamTLSRawClientCertificateArgs) error {
			return tlsText(c, d, a.RawClientCertOut, "client certificate", tlsClientCert)
		}),
		current(bindReqDownstreamTLSJA4, func(c *call, d *downstream, a reqDownstreamTLSJA4Args) error {
			return tlsText(c, d, a.JA4Out, "JA4", tlsJA4)
		}),
		current(bindReqDownstreamTLSClientCertVerifyResult, func(c *call, d *downstream, a reqDownstreamTLSClientCertVerifyResultArgs) error {
			return tlsVerifyResult(c, d, a.ClientCertVerifyResultOut)
		}),
		current(bindReqDownstreamTLSJA3MD5, func(c *call, d *downstream, a reqDownstreamTLSJA3MD5Args) error {
			return tlsJA3(c, d, a.Cja3MD5Out, a.NwrittenOut)
		}),
		current(bindReqDownstreamClientH2Fingerprint, func(c *call, d *downstream, a reqDownstreamClientH2FingerprintArgs) error {
			return h2Fingerprint(c, d, a.H2fpOut)
		}),

		ofRequest(bindDownstreamDownstreamTLSProtocol, func(c *call, d *downstream, a downstreamDownstreamTLSProtocolArgs) error {
			return tlsText(c, d, a.ProtocolOut, "TLS protocol", tlsProtocol)
		}),
		ofRequest(bindDownstreamDownstreamTLSCipherOpensslName, func(c *call, d *downstream, a downstreamDownstreamTLSCipherOpensslNameArgs) error {
			return tlsText(c, d, a.CipherOut, "cipher", tlsCipher)
		}),
		ofRequest(bindDownstreamDownstreamTLSClientHello, func(c *call, d *downstream, a downstreamDownstreamTLSClientHelloArgs) error {
			return tlsText(c, d, a.ChelloOut, "ClientHello", tlsClientHello)
		}),
		ofRequest(bindDownstreamDownstreamTLSRawClientCertificate, func(c *call, d *downstream, a downstreamDownstreamTLSRawClientCertificateArgs) error {
			return tlsText(c, d, a.RawClientCertOut, "client certificate", tlsClientCert)
		}),
		ofRequest(bindDownstreamDownstreamTLSJA4, func(c *call, d *downstream, a downstreamDownstreamTLSJA4Args) error {
			return tlsText(c, d, a.JA4Out, "JA4", tlsJA4)
		}),
		ofRequest(bindDownstreamDownstreamTLSClientServername, func(c *call, d *downstream, a downstreamDownstreamTLSClientServernameArgs) error {
			return tlsText(c, d, a.TLSSNIOut, "SNI", tlsSNI)
		}),
		ofRequest(bindDownstreamDownstreamTLSClientCertVerifyResult, func(c *call, d *downstream, a downstreamDownstreamTLSClientCertVerifyResultArgs) error {
			return tlsVerifyResult(c, d, a.ClientCertVerifyResultOut)
		}),
		ofRequest(bindDownstreamDownstreamTLSJA3MD5, func(c *call, d *downstream, a downstreamDownstreamTLSJA3MD5Args) error {
			return tlsJA3(c, d, a.Cja3MD5Out, a.NwrittenOut)
		}),
		ofRequest(bindDownstreamDownstreamClientH2Fingerprint, func(c *call, d *downstream, a downstreamDownstreamClientH2FingerprintArgs) error {
			return h2Fingerprint(c, d, a.H2fpOut)
		}),
	}
}
