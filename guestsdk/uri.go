package guestsdk

import "net/url"

// parseURI parses the absolute request URI the host hands a guest
// (http://host/path?query, see Request.URL). For the common URI, a
// lower-case http or https scheme, a host of letters, digits, dots and
// hyphens with an optional numeric port, and a path and query without
// percent escapes or a fragment, it builds the url.URL directly, equal to
// what url.Parse returns, at a fraction of url.Parse's cost in Wasm (the
// performance log, host/bench/README.md: url.Parse is the largest single
// item of a reused request's guest time). Any other URI goes to
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
	// Path: bytes that stand for themselves, up to an optional '?'.
	j := 0
	for j < len(rest) && byteClasses[rest[j]]&classPath != 0 {
		j++
	}
	path, query, hasQuery := rest[:j], "", false
	if j < len(rest) {
		if rest[j] != '?' {
			return false
		}
		query, hasQuery = rest[j+1:], true
		for k := 0; k < len(query); k++ {
			if byteClasses[query[k]]&classQuery == 0 {
				return false
			}
		}
	}
	u.Scheme, u.Host, u.Path, u.RawQuery = scheme, host, path, query
	u.ForceQuery = hasQuery && query == ""
	return true
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
	// classQuery: a byte parseSimpleURI keeps in a query: printable
	// ASCII other than space, '#' and '%'.
	classQuery
)

// byteClasses holds the class bits of each byte value (TestByteClasses
// checks it against the definitions above).
const byteClasses = "" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x09\x08\x01\x0d\x01\x0d\x09\x08\x08\x09\x0d\x0c\x0f\x0f\x0c\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0c\x0c\x08\x0c\x08\x08" +
	"\x0c\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x08\x08\x08\x09\x0d" +
	"\x09\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x0f\x08\x09\x08\x0d\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" +
	"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
