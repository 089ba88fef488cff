package hostcall

import (
	"bytes"
	"net/http"
	"sort"
	"strings"

	"github.com/edgehost/edgehost/abi"
	"golang.org/x/net/http/httpguts"
)

// header is the header block of a request or response: names lowercased
// (as HTTP/2 and Fastly's ABI present them) in first-insertion order, each
// with its values in order. Requests and responses share it and every
// header hostcall.
type header struct {
	names []string
	vals  map[string][]string
}

func newHeader() *header { return &header{vals: map[string][]string{}} }

// headerFrom copies h, names sorted for a stable order.
func headerFrom(h http.Header) *header {
	out := newHeader()
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			out.add(k, v)
		}
	}
	return out
}

func (h *header) clone() *header {
	out := newHeader()
	for _, n := range h.names {
		out.names = append(out.names, n)
		out.vals[n] = append([]string(nil), h.vals[n]...)
	}
	return out
}

func (h *header) add(name, value string) {
	n := strings.ToLower(name)
	if _, ok := h.vals[n]; !ok {
		h.names = append(h.names, n)
	}
	h.vals[n] = append(h.vals[n], value)
}

func (h *header) set(name string, values []string) {
	n := strings.ToLower(name)
	h.del(n)
	if len(values) == 0 {
		return
	}
	h.names = append(h.names, n)
	h.vals[n] = values
}

func (h *header) del(name string) bool {
	n := strings.ToLower(name)
	if _, ok := h.vals[n]; !ok {
		return false
	}
	delete(h.vals, n)
	for i, x := range h.names {
		if x == n {
			h.names = append(h.names[:i], h.names[i+1:]...)
			break
		}
	}
	return true
}

func (h *header) get(name string) []string { return h.vals[strings.ToLower(name)] }

func (h *header) size() int {
	n := 0
	for _, k := range h.names {
		for _, v := range h.vals[k] {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// httpHeader converts to net/http's form (canonical keys).
func (h *header) httpHeader() http.Header {
	out := make(http.Header, len(h.names))
	for _, n := range h.names {
		out[http.CanonicalHeaderKey(n)] = append([]string(nil), h.vals[n]...)
	}
	return out
}

// message is a request or a response: what their shared hostcalls use.
type message interface {
	headers() *header
	httpVersion() *uint32 // an http_version code
	framingMode() *bool   // true: manual framing (framing_headers_mode_set 1)
}

// messageImpls returns the hostcalls of module m (fastly_http_req or
// fastly_http_resp) that requests and responses share, written once: the
// header calls, version_get/_set and framing_headers_mode_set. lookup
// resolves a handle to its message. Both modules' argument structs are the
// same types (args_gen.go); only the bindings differ.
func messageImpls(m string, lookup func(c *call, h uint32) (message, error)) []impl {
	hdr := func(c *call, h uint32) (*header, error) {
		o, err := lookup(c, h)
		if err != nil {
			return nil, err
		}
		return o.headers(), nil
	}
	nameArg := func(b []byte) (string, error) {
		name := string(b)
		if !httpguts.ValidHeaderFieldName(name) {
			return "", statusErr(abi.Inval, "invalid header name %q", name)
		}
		return name, nil
	}
	// hdrName resolves the handle and the header name that most header
	// calls start with.
	hdrName := func(c *call, h uint32, name []byte) (*header, string, error) {
		hd, err := hdr(c, h)
		if err != nil {
			return nil, "", err
		}
		n, err := nameArg(name)
		return hd, n, err
	}
	valueArg := func(b []byte) (string, error) {
		v := string(b)
		if !httpguts.ValidHeaderFieldValue(v) {
			return "", statusErr(abi.Inval, "invalid header value for %q", v)
		}
		return v, nil
	}
	// update applies change to a copy of h and keeps it only when the
	// block stays within the header size limit.
	update := func(c *call, h *header, change func(h *header)) error {
		next := h.clone()
		change(next)
		if next.size() > c.s.env.limits.MaxHeaderBytes {
			return statusErr(abi.HTTPHeadTooLarge, "header block over %d bytes", c.s.env.limits.MaxHeaderBytes)
		}
		*h = *next
		return nil
	}
	versionGet := func(c *call, a reqVersionGetArgs) error {
		msg, err := lookup(c, a.H)
		if err != nil {
			return err
		}
		return c.putU32(a.VersionOut, *msg.httpVersion())
	}
	versionSet := func(c *call, a reqVersionSetArgs) error {
		msg, err := lookup(c, a.H)
		if err != nil {
			return err
		}
		if a.Version > abi.HTTP3 {
			return statusErr(abi.Inval, "unknown HTTP version %d", a.Version)
		}
		*msg.httpVersion() = a.Version
		return nil
	}
	// Mode 1 lets valid Content-Length / Transfer-Encoding headers of the
	// guest frame the message (framing.go).
	framingSet := func(c *call, a reqFramingHeadersModeSetArgs) error {
		msg, err := lookup(c, a.H)
		if err != nil {
			return err
		}
		switch a.Mode {
		case abi.FramingAutomatic:
			*msg.framingMode() = false
		case abi.FramingManuallyFromHeader:
			*msg.framingMode() = true
		default:
			return statusErr(abi.Inval, "unknown framing mode %d", a.Mode)
		}
		return nil
	}
	valuesSet := func(c *call, a reqHeaderValuesSetArgs) error {
		h, name, err := hdrName(c, a.H, a.Name)
		if err != nil {
			return err
		}
		var values []string // none: the header is removed
		if len(a.Values) > 0 {
			for _, v := range bytes.Split(bytes.TrimSuffix(a.Values, []byte{0}), []byte{0}) {
				if !httpguts.ValidHeaderFieldValue(string(v)) {
					return statusErr(abi.Inval, "invalid header value")
				}
				values = append(values, string(v))
			}
		}
		return update(c, h, func(h *header) { h.set(name, values) })
	}
	insert := func(c *call, a reqHeaderInsertArgs) error {
		h, name, err := hdrName(c, a.H, a.Name)
		if err != nil {
			return err
		}
		v, err := valueArg(a.Value)
		if err != nil {
			return err
		}
		return update(c, h, func(h *header) { h.set(name, []string{v}) })
	}
	appendV := func(c *call, a reqHeaderAppendArgs) error {
		h, name, err := hdrName(c, a.H, a.Name)
		if err != nil {
			return err
		}
		v, err := valueArg(a.Value)
		if err != nil {
			return err
		}
		return update(c, h, func(h *header) { h.add(name, v) })
	}
	remove := func(c *call, a reqHeaderRemoveArgs) error {
		h, name, err := hdrName(c, a.H, a.Name)
		if err != nil {
			return err
		}
		if !h.del(name) {
			return errNone
		}
		return nil
	}
	if m == abi.ModuleHTTPResp {
		return append(fieldGetters(fieldBinders{bindRespHeaderNamesGet, bindRespHeaderValueGet, bindRespHeaderValuesGet}, hdr, nameArg),
			bindRespVersionGet(versionGet), bindRespVersionSet(versionSet), bindRespFramingHeadersModeSet(framingSet),
			bindRespHeaderValuesSet(valuesSet), bindRespHeaderInsert(insert), bindRespHeaderAppend(appendV), bindRespHeaderRemove(remove))
	}
	return append(fieldGetters(fieldBinders{bindReqHeaderNamesGet, bindReqHeaderValueGet, bindReqHeaderValuesGet}, hdr, nameArg),
		bindReqVersionGet(versionGet), bindReqVersionSet(versionSet), bindReqFramingHeadersModeSet(framingSet),
		bindReqHeaderValuesSet(valuesSet), bindReqHeaderInsert(insert), bindReqHeaderAppend(appendV), bindReqHeaderRemove(remove))
}

// fieldBinders are the bindings of one module's three field-block getters
// (headers of a request or response, trailers of a body): their argument
// structs are the same types.
type fieldBinders struct {
	namesGet  func(func(*call, reqHeaderNamesGetArgs) error) impl
	valueGet  func(func(*call, reqHeaderValueGetArgs) error) impl
	valuesGet func(func(*call, reqHeaderValuesGetArgs) error) impl
}

// fieldGetters returns the three getters of a field block, written once
// for headers and trailers: <prefix>_names_get, <prefix>_value_get and
// <prefix>_values_get. block resolves a handle to the block; name checks
// a field name the guest passed.
func fieldGetters(b fieldBinders, block func(c *call, h uint32) (*header, error), name func([]byte) (string, error)) []impl {
	blockName := func(c *call, h uint32, n []byte) (*header, string, error) {
		hd, err := block(c, h)
		if err != nil {
			return nil, "", err
		}
		s, err := name(n)
		return hd, s, err
	}
	return []impl{
		b.namesGet(func(c *call, a reqHeaderNamesGetArgs) error {
			h, err := block(c, a.H)
			if err != nil {
				return err
			}
			return c.writeMulti(a.Buf, h.names)
		}),
		b.valueGet(func(c *call, a reqHeaderValueGetArgs) error {
			h, n, err := blockName(c, a.H, a.Name)
			if err != nil {
				return err
			}
			vs := h.get(n)
			if len(vs) == 0 {
				return errNone
			}
			return c.writeBuf(a.Value, []byte(vs[0]))
		}),
		b.valuesGet(func(c *call, a reqHeaderValuesGetArgs) error {
			h, n, err := blockName(c, a.H, a.Name)
			if err != nil {
				return err
			}
			// No value: an empty, finished listing.
			return c.writeMulti(a.Buf, h.get(n))
		}),
	}
}
