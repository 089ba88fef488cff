package hostcall

import (
	"net/http"

	"github.com/edgehost/edgehost/abi"
)

// response is a guest-built or origin response.
type response struct {
	status      int
	version     uint32
	hdr         *header
	noKeepalive bool
	// manualFraming: framing_headers_mode_set chose mode 1 (framing.go).
	manualFraming bool
}

func (r *response) headers() *header     { return r.hdr }
func (r *response) httpVersion() *uint32 { return &r.version }
func (r *response) framingMode() *bool   { return &r.manualFraming }

func newResponse() *response {
	return &response{status: http.StatusOK, version: abi.HTTP11, hdr: newHeader()}
}

// responseFrom makes the response handle's response of resp, an origin
// or cache response whose header map it takes over (headerOwned).
func responseFrom(resp *http.Response) *response {
	return &response{status: resp.StatusCode, version: versionCode(resp.ProtoMajor, resp.ProtoMinor), hdr: headerOwned(resp.Header)}
}

func versionCode(major, minor int) uint32 {
	switch {
	case major == 0:
		return abi.HTTP09
	case major == 1 && minor == 0:
		return abi.HTTP10
	case major == 2:
		return abi.HTTP2
	case major == 3:
		return abi.HTTP3
	}
	return abi.HTTP11
}

func respImpls() []impl {
	m := abi.ModuleHTTPResp
	get := func(c *call, h uint32) (*response, error) { return c.s.resps.get(h) }
	impls := []impl{
		bindRespNew(func(c *call, a respNewArgs) error { return c.putU32(a.RespOut, c.s.resps.add(newResponse())) }),
		bindRespClose(func(c *call, a respCloseArgs) error {
			_, err := c.s.resps.remove(a.H)
			return err
		}),
		bindRespStatusGet(func(c *call, a respStatusGetArgs) error {
			r, err := get(c, a.H)
			if err != nil {
				return err
			}
			return c.putU16(a.StatusOut, uint16(r.status))
		}),
		bindRespStatusSet(func(c *call, a respStatusSetArgs) error {
			r, err := get(c, a.H)
			if err != nil {
				return err
			}
			if a.Status < 100 || a.Status > 999 {
				return statusErr(abi.HTTPInvalidStatus, "status %d", a.Status)
			}
			r.status = int(a.Status)
			return nil
		}),
		bindRespHTTPKeepaliveModeSet(func(c *call, a respHTTPKeepaliveModeSetArgs) error {
			r, err := get(c, a.H)
			if err != nil {
				return err
			}
			switch a.Mode {
			case abi.KeepaliveAutomatic:
				r.noKeepalive = false
			case abi.KeepaliveNone:
				r.noKeepalive = true
			default:
				return statusErr(abi.Inval, "unknown keepalive mode %d", a.Mode)
			}
			return nil
		}),
		bindRespSendDownstream(func(c *call, a respSendDownstreamArgs) error {
			if c.s.down == nil {
				return statusErr(abi.Unsupported, "this sandbox has no downstream client")
			}
			return c.s.down.send(a.H, a.B, a.Streaming != 0)
		}),
	}
	impls = append(impls, messageImpls(m, func(c *call, h uint32) (message, error) { return c.s.resps.get(h) })...)
	return impls
}
