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
	n     int    // size(), kept as the block changes
	acct  *int64 // the session's count of header and trailer bytes, once the guest changed the block
}

// newHeader returns an empty block. The zero header is one too: its map
// is made on the first field.
func newHeader() *header { return &header{vals: map[string][]string{}} }

// headerFrom copies h, names sorted for a stable order.
func headerFrom(h http.Header) *header { return headerOf(h, false, 0) }

// headerOwned is headerFrom for an h nobody changes afterwards (an origin
// or cache response's, handed over whole): the block shares h's value
// slices, capped at their length, so that neither side's appends reach
// the other. Neither side changes a value in place.
func headerOwned(h http.Header) *header { return headerOf(h, true, 0) }

// headerOf is headerFrom (share false) or headerOwned (share true), with
// room for extra more names.
func headerOf(h http.Header, share bool, extra int) *header {
	out := &header{names: make([]string, 0, len(h)+extra), vals: make(map[string][]string, len(h)+extra)}
	var stack [16]string
	keys := stack[:0]
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := h[k]
		if len(vs) == 0 {
			continue
		}
		n := lowerName(k)
		if _, dup := out.vals[n]; dup || !share {
			// Two spellings of one name (a map built by hand) merge.
			for _, v := range vs {
				out.add(n, v)
			}
			continue
		}
		out.names = append(out.names, n)
		out.vals[n] = vs[:len(vs):len(vs)]
		for _, v := range vs {
			out.resize(fieldSize(n, v))
		}
	}
	return out
}

// commonFields are field names that requests and responses carry often,
// lowercase (as the block keeps them) and canonical (as net/http keys
// them): lowerName and canonicalName convert them without allocating.
var commonFields = []string{
	"accept", "accept-encoding", "accept-language", "accept-ranges", "age",
	"authorization", "cache-control", "cdn-loop", "connection",
	"content-disposition", "content-encoding", "content-language",
	"content-length", "content-range", "content-type", "cookie", "date",
	"etag", "expires", "fastly-ff", "host", "if-match", "if-modified-since",
	"if-none-match", "if-range", "if-unmodified-since", "keep-alive",
	"last-modified", "link", "location", "origin", "pragma", "range",
	"referer", "server", "set-cookie", "strict-transport-security",
	"surrogate-control", "surrogate-key", "te", "trailer",
	"transfer-encoding", "upgrade", "user-agent", "vary", "via",
	"x-cache", "x-cache-hits", "x-forwarded-for", "x-forwarded-host",
	"x-forwarded-proto", "x-request-id", "x-served-by",
}

// fieldNames maps the lowercase and the canonical spelling of each of
// commonFields to the pair; it is filled once and only read.
var fieldNames = func() map[string]fieldName {
	m := make(map[string]fieldName, 2*len(commonFields))
	for _, l := range commonFields {
		n := fieldName{lower: l, canonical: http.CanonicalHeaderKey(l)}
		m[n.lower], m[n.canonical] = n, n
	}
	return m
}()

type fieldName struct{ lower, canonical string }

// lowerName is strings.ToLower(name), allocating nothing for a common
// field name in lowercase or canonical spelling.
func lowerName(name string) string {
	if n, ok := fieldNames[name]; ok {
		return n.lower
	}
	return strings.ToLower(name)
}

// canonicalName is http.CanonicalHeaderKey(name), allocating nothing for
// a common field name.
func canonicalName(name string) string {
	if n, ok := fieldNames[name]; ok {
		return n.canonical
	}
	return http.CanonicalHeaderKey(name)
}

// fieldSize is what one field counts against the header limits: name,
// value and 4 bytes (": " and CRLF).
func fieldSize(name, value string) int { return len(name) + len(value) + 4 }

// resize records a change of delta bytes in the block's size and in the
// session's count, if the block is counted.
func (h *header) resize(delta int) {
	h.n += delta
	if h.acct != nil {
		*h.acct += int64(delta)
	}
}

// release takes the block out of its session's count (its handle is gone).
func (h *header) release() {
	if h != nil && h.acct != nil {
		*h.acct -= int64(h.n)
		h.acct = nil
	}
}

func (h *header) add(name, value string) {
	n := lowerName(name)
	if h.vals == nil {
		h.vals = map[string][]string{}
	}
	if _, ok := h.vals[n]; !ok {
		h.names = append(h.names, n)
	}
	h.vals[n] = append(h.vals[n], value)
	h.resize(fieldSize(n, value))
}

// setSize is the size of name's fields after set(name, values), less
// their size now.
func (h *header) setSize(name string, values []string) int {
	n := lowerName(name)
	d := 0
	for _, v := range values {
		d += fieldSize(n, v)
	}
	for _, v := range h.vals[n] {
		d -= fieldSize(n, v)
	}
	return d
}

func (h *header) set(name string, values []string) {
	n := lowerName(name)
	h.del(n)
	if len(values) == 0 {
		return
	}
	if h.vals == nil {
		h.vals = map[string][]string{}
	}
	h.names = append(h.names, n)
	h.vals[n] = values
	for _, v := range values {
		h.resize(fieldSize(n, v))
	}
}

func (h *header) del(name string) bool {
	n := lowerName(name)
	old, ok := h.vals[n]
	if !ok {
		return false
	}
	for _, v := range old {
		h.resize(-fieldSize(n, v))
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

// get returns the values of name, matched case-insensitively. A short
// ASCII name is lower-cased on the stack, so that a look-up by a
// canonical name (as guestsdk asks) allocates nothing.
func (h *header) get(name string) []string {
	var buf [64]byte
	if len(name) > len(buf) {
		return h.vals[strings.ToLower(name)]
	}
	b := buf[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 0x80:
			return h.vals[strings.ToLower(name)]
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return h.vals[string(b)]
}

// httpHeader converts to net/http's form (canonical keys).
func (h *header) httpHeader() http.Header {
	out := make(http.Header, len(h.names))
	for _, n := range h.names {
		out[canonicalName(n)] = append([]string(nil), h.vals[n]...)
	}
	return out
}

// httpHeaderShared is httpHeader for a block that is given away (an
// origin request's, whose request handle is consumed): the result shares
// the block's value slices, capped at their length, so that an append on
// either side does not reach the other.
func (h *header) httpHeaderShared() http.Header {
	out := make(http.Header, len(h.names))
	for _, n := range h.names {
		vs := h.vals[n]
		out[canonicalName(n)] = vs[:len(vs):len(vs)]
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
		if n, ok := fieldNames[string(b)]; ok {
			return n.lower, nil // a common name, valid
		}
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
	// update applies change, which grows h by delta bytes, only when the
	// block stays within the header size limits (growFields): one field
	// costs what it adds, not a copy of the block.
	update := func(c *call, h *header, delta int, change func(h *header)) error {
		if err := c.s.growFields(h, delta, abi.HTTPHeadTooLarge); err != nil {
			return err
		}
		change(h)
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
		return update(c, h, h.setSize(name, values), func(h *header) { h.set(name, values) })
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
		return update(c, h, h.setSize(name, []string{v}), func(h *header) { h.set(name, []string{v}) })
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
		return update(c, h, fieldSize(name, v), func(h *header) { h.add(name, v) })
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
