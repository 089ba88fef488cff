package guestsdk

import "net/url"

// parseURI parses the absolute request URI the host hands a guest
// (http://host/path?query, see Request.URL). For the common URI, a
// lower-case http or https scheme, a host of letters, digits, dots and
// hyphens with an optional numeric port, and a path and query without
// percent escapes or a fragment, it builds the url.URL directly, equal to
// what url.Parse returns, at a fraction of url.Parse's cost in Wasm (the
// README's Benchmarks section: url.Parse is the largest single item of a
// reused request's guest time). Any other URI goes to url.Parse, whose
// errors it returns.
func parseURI(uri string) (*url.URL, error) {
	if u, ok := parseSimpleURI(uri); ok {
		return u, nil
	}
	return url.Parse(uri)
}

// parseSimpleURI is parseURI's fast path; ok is false for a URI it does
// not handle.
func parseSimpleURI(uri string) (u *url.URL, ok bool) {
	var scheme, rest string
	switch {
	case len(uri) > len("http://") && uri[:len("http://")] == "http://":
		scheme, rest = "http", uri[len("http://"):]
	case len(uri) > len("https://") && uri[:len("https://")] == "https://":
		scheme, rest = "https", uri[len("https://"):]
	default:
		return nil, false
	}
	// Host: up to the first '/' or '?'.
	i := 0
	colon := -1
	for ; i < len(rest) && rest[i] != '/' && rest[i] != '?'; i++ {
		c := rest[i]
		switch {
		case c == ':':
			if colon >= 0 {
				return nil, false
			}
			colon = i
		case colon >= 0:
			if c < '0' || c > '9' {
				return nil, false
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-':
		default:
			return nil, false
		}
	}
	host := rest[:i]
	if host == "" || colon == 0 {
		return nil, false
	}
	rest = rest[i:]
	path, query, hasQuery := rest, "", false
	for j := 0; j < len(rest); j++ {
		if rest[j] == '?' {
			path, query, hasQuery = rest[:j], rest[j+1:], true
			break
		}
	}
	for j := 0; j < len(path); j++ {
		if !simplePathByte(path[j]) {
			return nil, false
		}
	}
	for j := 0; j < len(query); j++ {
		if c := query[j]; c <= ' ' || c >= 0x7f || c == '#' || c == '%' {
			return nil, false
		}
	}
	return &url.URL{
		Scheme:     scheme,
		Host:       host,
		Path:       path,
		RawQuery:   query,
		ForceQuery: hasQuery && query == "",
	}, true
}

// simplePathByte reports whether c stands for itself in a path, both
// as url.Parse reads it and as url.URL.EscapedPath writes it back (so
// that RawPath stays empty).
func simplePathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '/', '-', '.', '_', '~', '$', '&', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}
