package guestsdk

import (
	"net/url"
	"unsafe"
)

// parseURI parses the absolute request URI the host hands a guest
// (http://host/path?query, see Request.URL). For the usual URI, a
// lower-case http or https scheme, a host of letters, digits, dots and
// hyphens with an optional numeric port, and no fragment, it builds the
// url.URL directly, equal to what url.Parse returns, at a fraction of
// url.Parse's cost in Wasm (the performance log, host/bench/README.md:
// url.Parse is the largest single item of a reused request's guest
// time). The path may hold percent escapes and the query any byte
// url.Parse keeps (all but control bytes and '#'). Any other URI goes to
// url.Parse, whose errors it returns.
func parseURI(uri string) (*url.URL, error) {
	if u, ok := parseSimpleURI(uri); ok {
		return u, nil
	}
	return url.Parse(uri)
}

// parseSimpleURI is parseURI's fast path; ok is false for a URI it does
// not handle. Its loops test each byte with one look-up in byteClasses:
// every branch of Go's Wasm code is a jump through its function's
// dispatch table, so a chain of comparisons per byte is what costs.
func parseSimpleURI(uri string) (u *url.URL, ok bool) {
	u = new(url.URL)
	if !parseSimpleURIInto(u, uri) {
		return nil, false
	}
	return u, true
}

// parseSimpleURIInto is parseSimpleURI setting the fields of *u, which
// must be the zero url.URL (a new one: the fields a simple URI leaves
// empty are not written), rather than allocating a url.URL; u is left
// alone when ok is false.
func parseSimpleURIInto(u *url.URL, uri string) (ok bool) {
	var scheme, rest string
	switch {
	case len(uri) > len("http://") && uri[:len("http://")] == "http://":
		scheme, rest = "http", uri[len("http://"):]
	case len(uri) > len("https://") && uri[:len("https://")] == "https://":
		scheme, rest = "https", uri[len("https://"):]
	default:
		return false
	}
	// Host: letters, digits, dots and hyphens, then an optional ':' and
	// digits, up to the first '/' or '?'.
	i := 0
	for i < len(rest) && byteClasses[rest[i]]&classHost != 0 {
		i++
	}
	if i == 0 {
		return false
	}
	if i < len(rest) && rest[i] == ':' {
		i++
		for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
			i++
		}
	}
	if i < len(rest) && rest[i] != '/' && rest[i] != '?' {
		return false
	}
	host := rest[:i]
	rest = rest[i:]
	// Path: up to an optional '?'; the query after it is RawQuery as it
	// stands.
	j := 0
	for j < len(rest) && rest[j] != '?' {
		j++
	}
	query, hasQuery := "", false
	if j < len(rest) {
		query, hasQuery = rest[j+1:], true
		for k := 0; k < len(query); k++ {
			if byteClasses[query[k]]&classQuery == 0 {
				return false
			}
		}
	}
	path, rawPath, ok := unescapePath(rest[:j])
	if !ok {
		return false
	}
	u.Scheme, u.Host, u.Path, u.RawPath, u.RawQuery = scheme, host, path, rawPath, query
	u.ForceQuery = hasQuery && query == ""
	return true
}

// unescapePath returns the Path and RawPath url.Parse gives for the
// escaped path p: p with its percent escapes decoded, and p itself as
// RawPath unless url.URL.EscapedPath would write the decoded path back as
// p (every byte one that stands for itself, every escape upper-case and
// of a byte that does not). ok is false for a byte parseSimpleURI leaves
// to url.Parse (a control byte, '#', a '%' without two hex digits).
func unescapePath(p string) (path, rawPath string, ok bool) {
	escapes, keepRaw := 0, false
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case byteClasses[c]&classPath != 0:
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", "", false
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if byteClasses[v]&classPath != 0 || 'a' <= p[i+1] || 'a' <= p[i+2] {
				keepRaw = true // EscapedPath would write it otherwise
			}
			escapes++
			i += 2
		case byteClasses[c]&classQuery == 0:
			return "", "", false // a control byte or '#'
		default:
			keepRaw = true // a byte EscapedPath would escape
		}
	}
	if keepRaw {
		rawPath = p
	}
	if escapes == 0 {
		return p, rawPath, true // the usual path: nothing to decode
	}
	b := make([]byte, 0, len(p)-2*escapes)
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			b = append(b, unhex(p[i+1])<<4|unhex(p[i+2]))
			i += 2
			continue
		}
		b = append(b, p[i])
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), rawPath, true
}

// isHex reports whether c is a hex digit (either case, as url.Parse
// takes them).
func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unhex is the value of the hex digit c.
func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// The bits of byteClasses.
const (
	// classToken: an HTTP token character (RFC 9110, section 5.6.2):
	// letters, digits and !#$%&'*+-.^_`|~.
	classToken = 1 << iota
	// classHost: a letter, digit, '.' or '-' (parseSimpleURI's hosts).
	classHost
	// classPath: a byte that stands for itself in a path, both as
	// url.Parse reads it and as url.URL.EscapedPath writes it back (so
	// that RawPath stays empty): letters, digits and /-._~$&+,;=:@.
	classPath
	// classQuery: a byte parseSimpleURI keeps in a query (and, escaped
	// or not, in a path): any byte but the control bytes url.Parse
	// refuses (below space, and DEL) and '#', which starts a fragment.
	classQuery
)

// byteClasses holds the class bits of each byte value (TestByteClasses
// checks it against the definitions above).
const byteClasses = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x08\x09\x08\x01\x0d\x09\x0d\x09\x08\x08\x09\x0d\x0c\x0f\x0f\x0c\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0c\x0c\x08\x0c\x08\x08" +
	"\x0c\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x08\x08\x08\x09\x0d" +
	"\x09\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x08\x09\x08\x0d\x00" +
	"\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08" +
	"\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08" +
	"\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08" +
	"\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08\x08"
