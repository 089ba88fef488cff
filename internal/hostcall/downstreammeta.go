package hostcall

import (
	"crypto/subtle"
	"net"
	"net/http"

	"github.com/edgehost/edgehost/abi"
)

// The downstream metadata getters: facts about the client request that
// Fastly's SDKs read for every request (addresses, request id,
// fingerprints, TLS facts, bot detection, proxy intelligence). The ABI
// has each twice: in fastly_http_req without a request handle (the
// sandbox's current downstream request), and in fastly_http_downstream
// with the handle of a downstream request first. Both forms share one
// body; the handle form answers badf for a handle that is not the
// current downstream request.
//
// What edgehost does not compute answers as Compute does when a fact does
// not apply: none for a fingerprint, a TLS fact on plain HTTP and the HTTP/2 fingerprint on HTTP/1
// (tlsmeta.go), a bot name
// or category, a proxy intelligence fact (the data set is not enabled);
// 0 for the DDoS flag and for "bot analyzed" / "bot detected"; "none" for
// the compliance region. See abi/README.md.

// current binds the fastly_http_req form of a getter: it answers for
// the sandbox's current downstream request.
func current[A any](bind func(func(*call, A) error) impl, fn func(c *call, d *downstream, a A) error) impl {
	return bind(func(c *call, a A) error {
		d, err := currentDownstream(c)
		if err != nil {
			return err
		}
		return fn(c, d, a)
	})
}

// ofRequest binds the fastly_http_downstream form of a getter: its first
// parameter is a downstream request handle, which must be the current
// downstream request's (else badf).
func ofRequest[A interface{ handle() uint32 }](bind func(func(*call, A) error) impl, fn func(c *call, d *downstream, a A) error) impl {
	return bind(func(c *call, a A) error {
		d, err := currentDownstream(c)
		if err != nil {
			return err
		}
		if !d.taken || a.handle() != d.reqH {
			return statusErr(abi.Badf, "handle %d is not the downstream request", a.handle())
		}
		return fn(c, d, a)
	})
}

func currentDownstream(c *call) (*downstream, error) {
	if c.s.down == nil {
		return nil, statusErr(abi.None, "this sandbox has no downstream client")
	}
	return c.s.down, nil
}

// The facts that do not apply: each answers none.

func noFingerprint[A any](*call, *downstream, A) error {
	return statusErr(abi.None, "edgehost computes no client fingerprint: not available for this request")
}

func noBot[A any](*call, *downstream, A) error {
	return statusErr(abi.None, "no bot was detected: not available for this request")
}

func noProxyData[A any](*call, *downstream, A) error {
	return statusErr(abi.None, "proxy intelligence is not enabled: not available for this request")
}

// putIP writes the client's (or the server's) address: 4 or 16 bytes at
// addr, their number at nwritten.
func putIP(c *call, d *downstream, client bool, addr, nwritten uint32) error {
	ip := d.d.ServerIP
	if client {
		ip = d.d.ClientIP
	}
	if ip == nil {
		return errNone
	}
	b := ipBytes(ip)
	if !c.mem.Write(addr, b) {
		return statusErr(abi.Inval, "address buffer outside linear memory")
	}
	return c.putU32(nwritten, uint32(len(b)))
}

func ipBytes(ip net.IP) []byte {
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip.To16()
}

// originalHeader is the downstream request's header block as the client
// sent it, before the guest changed anything: names lower case, sorted,
// with the Host header (which net/http keeps apart) last.
func originalHeader(r *http.Request) *header {
	h := headerOf(r.Header, false, 1)
	if r.Host != "" {
		h.set("host", []string{r.Host})
	}
	return h
}

// fastlyKeyValid reports whether the downstream request's Fastly-Key
// header holds one of the keys the manifest declares valid
// ([local_server] fake_valid_fastly_keys).
func fastlyKeyValid(c *call, d *downstream) bool {
	key := d.d.Request.Header.Get("Fastly-Key")
	if key == "" {
		return false
	}
	for _, k := range c.s.env.fastlyKeys {
		if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
			return true
		}
	}
	return false
}

func downstreamImpls() []impl {
	ip := func(client bool) func(c *call, d *downstream, a reqDownstreamClientIPAddrArgs) error {
		return func(c *call, d *downstream, a reqDownstreamClientIPAddrArgs) error {
			return putIP(c, d, client, a.AddrOctetsOut, a.NwrittenOut)
		}
	}
	dnIP := func(client bool) func(c *call, d *downstream, a downstreamDownstreamClientIPAddrArgs) error {
		return func(c *call, d *downstream, a downstreamDownstreamClientIPAddrArgs) error {
			return putIP(c, d, client, a.AddrOctetsOut, a.NwrittenOut)
		}
	}
	origNames := func(c *call, d *downstream, b cursorBuf) error {
		return c.writeMulti(b, originalHeader(d.d.Request).names)
	}
	origCount := func(c *call, d *downstream, out uint32) error {
		h := originalHeader(d.d.Request)
		n := 0
		for _, name := range h.names {
			n += len(h.vals[name])
		}
		return c.putU32(out, uint32(n))
	}
	region := []byte(abi.ComplianceRegionNone)
	keyValid := func(c *call, d *downstream, out uint32) error {
		v := uint32(0)
		if fastlyKeyValid(c, d) {
			v = 1
		}
		return c.putU32(out, v)
	}
	return append(tlsMetaImpls(), // tlsmeta.go
		bindDownstreamNextRequest(nextRequest),
		bindDownstreamNextRequestWait(nextRequestWait),
		bindDownstreamNextRequestAbandon(func(c *call, a downstreamNextRequestAbandonArgs) error {
			_, err := c.s.promises.remove(a.Handle)
			return err
		}),

		// fastly_http_req: the current downstream request.
		current(bindReqDownstreamClientIPAddr, ip(true)),
		current(bindReqDownstreamServerIPAddr, ip(false)),
		current(bindReqDownstreamClientRequestID, func(c *call, _ *downstream, a reqDownstreamClientRequestIDArgs) error {
			return c.writeBuf(a.ReqidOut, []byte(c.s.id))
		}),
		current(bindReqOriginalHeaderNamesGet, func(c *call, d *downstream, a reqOriginalHeaderNamesGetArgs) error { return origNames(c, d, a.Buf) }),
		current(bindReqOriginalHeaderCount, func(c *call, d *downstream, a reqOriginalHeaderCountArgs) error {
			return origCount(c, d, a.HeaderCountOut)
		}),
		current(bindReqDownstreamClientOHFingerprint, noFingerprint),
		// A flag that is off.
		current(bindReqDownstreamClientDDoSDetected, func(c *call, _ *downstream, a reqDownstreamClientDDoSDetectedArgs) error {
			return c.putU32(a.DDoSDetectedOut, 0)
		}),
		current(bindReqDownstreamComplianceRegion, func(c *call, _ *downstream, a reqDownstreamComplianceRegionArgs) error {
			return c.writeBuf(a.RegionOut, region)
		}),
		current(bindReqFastlyKeyIsValid, func(c *call, d *downstream, a reqFastlyKeyIsValidArgs) error { return keyValid(c, d, a.IsValidOut) }),

		// fastly_http_downstream: the downstream request's handle first.
		ofRequest(bindDownstreamDownstreamClientIPAddr, dnIP(true)),
		ofRequest(bindDownstreamDownstreamServerIPAddr, dnIP(false)),
		ofRequest(bindDownstreamDownstreamClientRequestID, func(c *call, _ *downstream, a downstreamDownstreamClientRequestIDArgs) error {
			return c.writeBuf(a.ReqidOut, []byte(c.s.id))
		}),
		ofRequest(bindDownstreamDownstreamOriginalHeaderNames, func(c *call, d *downstream, a downstreamDownstreamOriginalHeaderNamesArgs) error {
			return origNames(c, d, a.Buf)
		}),
		ofRequest(bindDownstreamDownstreamOriginalHeaderCount, func(c *call, d *downstream, a downstreamDownstreamOriginalHeaderCountArgs) error {
			return origCount(c, d, a.HeaderCountOut)
		}),
		ofRequest(bindDownstreamDownstreamClientOHFingerprint, noFingerprint),
		ofRequest(bindDownstreamDownstreamClientDDoSDetected, func(c *call, _ *downstream, a downstreamDownstreamClientDDoSDetectedArgs) error {
			return c.putU32(a.DDoSDetectedOut, 0)
		}),
		ofRequest(bindDownstreamDownstreamComplianceRegion, func(c *call, _ *downstream, a downstreamDownstreamComplianceRegionArgs) error {
			return c.writeBuf(a.RegionOut, region)
		}),
		ofRequest(bindDownstreamFastlyKeyIsValid, func(c *call, d *downstream, a downstreamFastlyKeyIsValidArgs) error {
			return keyValid(c, d, a.IsValidOut)
		}),

		// Bot detection: the request was not analysed, so nothing was
		// detected and the details do not apply.
		ofRequest(bindDownstreamDownstreamBotAnalyzed, func(c *call, _ *downstream, a downstreamDownstreamBotAnalyzedArgs) error {
			return c.putU32(a.BotAnalyzedOut, 0)
		}),
		ofRequest(bindDownstreamDownstreamBotDetected, func(c *call, _ *downstream, a downstreamDownstreamBotDetectedArgs) error {
			return c.putU32(a.BotDetectedOut, 0)
		}),
		ofRequest(bindDownstreamDownstreamBotName, noBot),
		ofRequest(bindDownstreamDownstreamBotCategory, noBot),
		ofRequest(bindDownstreamDownstreamBotCategoryKind, noBot),
		ofRequest(bindDownstreamDownstreamBotVerified, noBot),

		// Proxy and VPN intelligence: the data set is not enabled.
		ofRequest(bindDownstreamDownstreamResvpnproxyIsAnonymous, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyIsAnonymousVPN, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyIsHostingProvider, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyIsProxyOverVPN, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyIsPublicProxy, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyIsRelayProxy, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyIsResidentialProxy, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyIsSmartDNSProxy, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyIsTorExitNode, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyIsVPNDatacenter, noProxyData),
		ofRequest(bindDownstreamDownstreamResvpnproxyVPNServiceName, noProxyData),
	)
}
