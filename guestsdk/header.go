package guestsdk

import "bytes"

// Header is a set of HTTP header fields, keyed by canonical name
// ("Content-Type"), like net/http's Header. Names read from the host are
// canonicalised; the host treats names case-insensitively.
type Header map[string][]string

// Get returns the first value of key, or "" when there is none.
func (h Header) Get(key string) string {
	if v := h[canonicalKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key (the slice is not a copy), or nil.
func (h Header) Values(key string) []string { return h[canonicalKey(key)] }

// Set replaces every value of key with value.
func (h Header) Set(key, value string) { h[canonicalKey(key)] = []string{value} }

// Add appends value to the values of key.
func (h Header) Add(key, value string) {
	k := canonicalKey(key)
	h[k] = append(h[k], value)
}

// Del removes every value of key.
func (h Header) Del(key string) { delete(h, canonicalKey(key)) }

// Clone returns a deep copy of h; Clone of a nil Header is nil.
func (h Header) Clone() Header {
	if h == nil {
		return nil
	}
	c := make(Header, len(h))
	for k, v := range h {
		c[k] = append([]string(nil), v...)
	}
	return c
}

// canonicalKey returns the canonical form of an HTTP header name: the
// first letter and every letter after a hyphen upper case, the rest lower
// case. A name holding a byte that is not a token character is returned
// unchanged, as net/http does.
func canonicalKey(s string) string {
	upper, canonical := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if byteClasses[c]&classToken == 0 {
			return s
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if canonical {
		return s
	}
	return canonicalSlow(s)
}

func canonicalSlow(s string) string {
	b := []byte(s)
	canonicalizeBytes(b)
	return string(b)
}

// canonicalizeNames gives each NUL-terminated name in b its canonical
// form (canonicalKey's), in place.
func canonicalizeNames(b []byte) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			i = len(b)
		}
		name := b[:i]
		token := true
		for _, c := range name {
			if byteClasses[c]&classToken == 0 {
				token = false
				break
			}
		}
		if token {
			canonicalizeBytes(name)
		}
		b = b[min(i+1, len(b)):]
	}
}

// canonicalizeBytes upper-cases the first letter of b and every letter
// after a hyphen and lower-cases the others, in place.
func canonicalizeBytes(b []byte) {
	upper := true
	for i, c := range b {
		if upper && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		} else if !upper && 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
		upper = c == '-'
	}
}
