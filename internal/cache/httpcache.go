package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RequestCacheable reports whether a request with this method may be
// answered from the cache: GET and HEAD, the rule Cache.Do applies (see
// the package comment), and what fastly_http_cache.is_request_cacheable
// answers (abi/README.md, "fastly_http_cache").
func RequestCacheable(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}

// HTTPSuggestion is what the readthrough cache's rules (policy.go, the
// package comment) say about storing one backend response to a request:
// fastly_http_cache's get_suggested_cache_options and
// prepare_response_for_storage (abi/README.md, "fastly_http_cache").
type HTTPSuggestion struct {
	// Store: the response may be stored; Reason says why not otherwise
	// ("status", "no-store", "private", "set-cookie", "authorization",
	// "vary-star").
	Store  bool
	Reason string
	// MaxAge is the freshness lifetime counted from the response's
	// generation (so fresh for MaxAge - InitialAge from now); zero for a
	// response that must be revalidated on every use (no-cache). For a
	// response that may not be stored it is how long to record that
	// (transaction_record_not_cacheable): the readthrough cache's
	// hit-for-pass time, 2 minutes, or 5 seconds for an uncacheable
	// status.
	MaxAge     time.Duration
	InitialAge time.Duration
	// SWR is the stale-while-revalidate window after MaxAge; SIE the
	// stale-if-error window after it.
	SWR, SIE time.Duration
	// Vary is the response's Vary header names, canonical.
	Vary []string
	// SurrogateKeys are the response's Surrogate-Key header's keys.
	SurrogateKeys []string
	// Length is the Content-Length, or -1 when the response has none.
	Length int64
}

// SuggestHTTP applies the readthrough cache's rules to a backend response
// with header h and status code to a request with header reqH, as of now.
func SuggestHTTP(reqH http.Header, code int, h http.Header, now time.Time) HTTPSuggestion {
	req := &http.Request{Method: http.MethodGet, Header: reqH}
	if req.Header == nil {
		req.Header = http.Header{}
	}
	p := evaluate(req, &http.Response{StatusCode: code, Header: h}, Override{}, now)
	s := HTTPSuggestion{Store: p.store, Reason: p.reason, InitialAge: p.initialAge, SWR: p.swr, SIE: p.sie, Vary: p.vary, SurrogateKeys: p.keys, Length: -1}
	switch {
	case !p.store:
		s.MaxAge = p.hfp
	case !p.revalidate:
		s.MaxAge = max(p.freshUntil.Sub(now)+p.initialAge, 0)
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(h.Get("Content-Length")), 10, 64); err == nil && n >= 0 {
		s.Length = n
	}
	return s
}

// Merge304 returns the header of a stored response updated by a 304 Not
// Modified's header (RFC 9111 4.3.4): the 304's fields replace the
// stored ones, except those of the stored body's framing.
func Merge304(stored, notModified http.Header) http.Header {
	out := stored.Clone()
	if out == nil {
		out = http.Header{}
	}
	for k, vs := range notModified {
		if !hopHeaders304[http.CanonicalHeaderKey(k)] {
			out[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
		}
	}
	return out
}

// Now returns the cache's time (Config.Now), the time freshness is
// counted against.
func (c *Cache) Now() time.Time { return c.now() }
