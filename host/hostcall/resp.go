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

func responseFrom(resp *http.Response) *response {
	return &response{status: resp.StatusCode, version: versionCode(resp.ProtoMajor, resp.ProtoMinor), hdr: headerFrom(resp.Header)}
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
	get := func(c *call, i int) (*response, error) { return c.s.resps.get(c.u32(i)) }
	impls := []impl{
		{m, "new", func(c *call) error {
			if err := c.checkOut(c.u32(0), 4, 4); err != nil {
				return err
			}
			return c.putU32(c.u32(0), c.s.resps.add(newResponse()))
		}},
		{m, "close", func(c *call) error {
			_, err := c.s.resps.remove(c.u32(0))
			return err
		}},
		{m, "status_get", func(c *call) error {
			r, err := get(c, 0)
			if err != nil {
				return err
			}
			return c.putU16(c.u32(1), uint16(r.status))
		}},
		{m, "status_set", func(c *call) error {
			r, err := get(c, 0)
			if err != nil {
				return err
			}
			st := c.u32(1)
			if st < 100 || st > 999 {
				return statusErr(abi.HTTPInvalidStatus, "status %d", st)
			}
			r.status = int(st)
			return nil
		}},
		{m, "http_keepalive_mode_set", func(c *call) error {
			r, err := get(c, 0)
			if err != nil {
				return err
			}
			switch c.u32(1) {
			case abi.KeepaliveAutomatic:
				r.noKeepalive = false
			case abi.KeepaliveNone:
				r.noKeepalive = true
			default:
				return statusErr(abi.Inval, "unknown keepalive mode %d", c.u32(1))
			}
			return nil
		}},
		{m, "send_downstream", func(c *call) error {
			if c.s.down == nil {
				return statusErr(abi.Unsupported, "this sandbox has no downstream client")
			}
			return c.s.down.send(c.u32(0), c.u32(1), c.u32(2) != 0)
		}},
	}
	impls = append(impls, messageImpls(m, func(c *call, h uint32) (message, error) { return c.s.resps.get(h) })...)
	return impls
}
