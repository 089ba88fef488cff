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
// not apply: none for the original-headers fingerprint, a TLS fact on
// plain HTTP (tlsmeta.go), the HTTP/2 fingerprint on HTTP/1, a bot name
// or category, a proxy intelligence fact (the data set is not enabled);
// 0 for the DDoS flag and for "bot analyzed" / "bot detected"; "none" for
// the compliance region. See abi/README.md.

// metaGetter is the body of one metadata getter: arg is the index of its
// first parameter after the (optional) request handle.
type metaGetter func(c *call, d *downstream, arg int) error

// metaForms returns the getter as reqName in fastly_http_req (no handle)
// and dnName in fastly_http_downstream (handle first); an empty name
// leaves that form out.
func metaForms(reqName, dnName string, fn metaGetter) []impl {
	var impls []impl
	if reqName != "" {
		impls = append(impls, impl{abi.ModuleHTTPReq, reqName, func(c *call) error {
			d, err := currentDownstream(c)
			if err != nil {
				return err
			}
			return fn(c, d, 0)
		}})
	}
	if dnName != "" {
		impls = append(impls, impl{abi.ModuleHTTPDownstream, dnName, func(c *call) error {
			d, err := currentDownstream(c)
			if err != nil {
				return err
			}
			if !d.taken || c.u32(0) != d.reqH {
				return statusErr(abi.Badf, "handle %d is not the downstream request", c.u32(0))
			}
			return fn(c, d, 1)
		}})
	}
	return impls
}

// both names a getter the same in both modules.
func both(name string, fn metaGetter) []impl { return metaForms(name, name, fn) }

func currentDownstream(c *call) (*downstream, error) {
	if c.s.down == nil {
		return nil, statusErr(abi.None, "this sandbox has no downstream client")
	}
	return c.s.down, nil
}

// absent answers none: the fact does not apply to this request.
func absent(what string) metaGetter {
	return func(*call, *downstream, int) error {
		return statusErr(abi.None, "%s: not available for this request", what)
	}
}

// zero answers ok with the u32 0 at the out-pointer: a flag that is off.
func zero(c *call, _ *downstream, arg int) error { return c.putU32(c.u32(arg), 0) }

func ipGetter(client bool) metaGetter {
	return func(c *call, d *downstream, arg int) error {
		ip := d.d.ServerIP
		if client {
			ip = d.d.ClientIP
		}
		if ip == nil {
			return errNone
		}
		b := ipBytes(ip)
		if err := c.checkOut(c.u32(arg+1), 4, 4); err != nil {
			return err
		}
		if !c.mem.Write(c.u32(arg), b) {
			return statusErr(abi.Inval, "address buffer outside linear memory")
		}
		return c.putU32(c.u32(arg+1), uint32(len(b)))
	}
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
	h := headerFrom(r.Header)
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
	dn := abi.ModuleHTTPDownstream
	impls := []impl{
		{dn, "next_request", nextRequest},
		{dn, "next_request_wait", nextRequestWait},
		{dn, "next_request_abandon", func(c *call) error { _, err := c.s.promises.remove(c.u32(0)); return err }},
	}
	add := func(is []impl) { impls = append(impls, is...) }

	add(both("downstream_client_ip_addr", ipGetter(true)))
	add(both("downstream_server_ip_addr", ipGetter(false)))
	add(both("downstream_client_request_id", func(c *call, _ *downstream, arg int) error {
		return c.putBuf(c.u32(arg), c.u32(arg+1), c.u32(arg+2), []byte(c.s.id))
	}))
	add(metaForms("original_header_names_get", "downstream_original_header_names", func(c *call, d *downstream, arg int) error {
		h := originalHeader(d.d.Request)
		return c.putMulti(h.names, c.u32(arg), c.u32(arg+1), c.u32(arg+2), c.u32(arg+3), c.u32(arg+4))
	}))
	add(metaForms("original_header_count", "downstream_original_header_count", func(c *call, d *downstream, arg int) error {
		h := originalHeader(d.d.Request)
		n := 0
		for _, name := range h.names {
			n += len(h.vals[name])
		}
		return c.putU32(c.u32(arg), uint32(n))
	}))

	// TLS facts and the HTTP/2 fingerprint (tlsmeta.go).
	add(tlsMetaImpls())

	// Fingerprints edgehost does not compute.
	add(both("downstream_client_oh_fingerprint", absent("original-headers fingerprint")))

	// Flags that are off.
	add(both("downstream_client_ddos_detected", zero))
	add(both("downstream_compliance_region", func(c *call, _ *downstream, arg int) error {
		return c.putBuf(c.u32(arg), c.u32(arg+1), c.u32(arg+2), []byte(abi.ComplianceRegionNone))
	}))
	add(both("fastly_key_is_valid", func(c *call, d *downstream, arg int) error {
		v := uint32(0)
		if fastlyKeyValid(c, d) {
			v = 1
		}
		return c.putU32(c.u32(arg), v)
	}))

	// Bot detection: the request was not analysed, so nothing was detected
	// and the details do not apply.
	add(metaForms("", "downstream_bot_analyzed", zero))
	add(metaForms("", "downstream_bot_detected", zero))
	for _, name := range []string{"downstream_bot_name", "downstream_bot_category", "downstream_bot_category_kind", "downstream_bot_verified"} {
		add(metaForms("", name, absent("no bot was detected")))
	}

	// Proxy and VPN intelligence: the data set is not enabled.
	for _, name := range []string{"anonymous", "anonymous_vpn", "hosting_provider", "proxy_over_vpn", "public_proxy",
		"relay_proxy", "residential_proxy", "smart_dns_proxy", "tor_exit_node", "vpn_datacenter"} {
		add(metaForms("", "downstream_resvpnproxy_is_"+name, absent("proxy intelligence is not enabled")))
	}
	add(metaForms("", "downstream_resvpnproxy_vpn_service_name", absent("proxy intelligence is not enabled")))
	return impls
}
