package cache

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultTTL is the freshness lifetime of a cacheable response that states
// none (no Surrogate-Control or Cache-Control max-age, s-maxage or Expires):
// two minutes, Compute's default.
const DefaultTTL = 2 * time.Minute

// hitForPassTTL is how long a response the cache may not store (private,
// no-store, Set-Cookie, Vary: *) turns later requests for its URL into
// passes, so that they do not queue behind one another; hitForPassShort is
// used for an uncacheable status or an oversized body, which may change
// sooner.
const (
	hitForPassTTL   = 2 * time.Minute
	hitForPassShort = 5 * time.Second
)

// cacheableStatus reports whether Compute's readthrough cache stores a
// response with this status by default: 200, 203, 300, 301, 302, 404, 410.
func cacheableStatus(code int) bool {
	switch code {
	case 200, 203, 300, 301, 302, 404, 410:
		return true
	}
	return false
}

// directives are the parsed directives of a Cache-Control-like header.
// A directive without a value maps to "".
type directives map[string]string

func parseDirectives(values []string) directives {
	if len(values) == 0 {
		return nil
	}
	d := directives{}
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			name, val, _ := strings.Cut(part, "=")
			name = strings.ToLower(strings.TrimSpace(name))
			val = strings.Trim(strings.TrimSpace(val), `"`)
			if _, dup := d[name]; !dup {
				d[name] = val
			}
		}
	}
	return d
}

func (d directives) has(name string) bool {
	_, ok := d[name]
	return ok
}

// seconds returns a delta-seconds directive's value; ok is false when it is
// absent or not a non-negative integer.
func (d directives) seconds(name string) (time.Duration, bool) {
	v, ok := d[name]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	const maxSec = 1 << 31 // RFC 9111 1.2.2: treat larger values as 2^31
	if n > maxSec {
		n = maxSec
	}
	return time.Duration(n) * time.Second, true
}

// policy is what the cache decided about one origin response.
type policy struct {
	// store: the response may be stored; reason says why not otherwise.
	store  bool
	reason string
	// hfp is how long later requests pass when the response is not stored.
	hfp time.Duration
	// freshUntil is when the object turns stale; swr how long after that it
	// may still be served while one refresh runs.
	freshUntil time.Time
	swr        time.Duration
	// sie is the stale-if-error window after freshUntil: how long the
	// object may still answer when revalidating it fails.
	sie time.Duration
	// revalidate: stored, but every use needs revalidation (no-cache).
	revalidate bool
	// initialAge is the response's age when it arrived.
	initialAge time.Duration
	vary       []string
	keys       []string
}

// evaluate applies the readthrough cache's rules (see the package comment)
// to an origin response that arrived at now for a request req carrying the
// override ov.
func evaluate(req *http.Request, resp *http.Response, ov Override, now time.Time) policy {
	h := resp.Header
	sc := parseDirectives(h.Values("Surrogate-Control"))
	cc := parseDirectives(h.Values("Cache-Control"))
	p := policy{hfp: hitForPassTTL}
	p.initialAge = initialAge(h, now)
	switch {
	case !cacheableStatus(resp.StatusCode):
		p.reason, p.hfp = "status", hitForPassShort
		return p
	case sc.has("no-store") || cc.has("no-store"):
		p.reason = "no-store"
		return p
	case cc.has("private"):
		p.reason = "private"
		return p
	case len(h.Values("Set-Cookie")) > 0 && !ov.CacheSetCookie:
		p.reason = "set-cookie"
		return p
	case req.Header.Get("Authorization") != "" && !cc.has("public") && !cc.has("s-maxage") && !cc.has("must-revalidate"):
		// RFC 9111 3.5: a shared cache stores an answer to an authorized
		// request only when the response allows it explicitly.
		p.reason = "authorization"
		return p
	}
	for _, v := range h.Values("Vary") {
		for name := range strings.SplitSeq(v, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			if name == "*" {
				p.reason = "vary-star"
				return p
			}
			if name != "" {
				p.vary = append(p.vary, name)
			}
		}
	}
	p.store = true
	// Surrogate-Control, when present, is the edge's policy: Cache-Control's
	// no-cache is then for the clients.
	p.revalidate = sc.has("no-cache") || sc == nil && cc.has("no-cache")

	if ov.TTL != nil {
		p.freshUntil = now.Add(*ov.TTL)
	} else {
		lifetime := DefaultTTL
		if d, ok := sc.seconds("max-age"); ok {
			lifetime = d
		} else if d, ok := cc.seconds("s-maxage"); ok {
			lifetime = d
		} else if d, ok := cc.seconds("max-age"); ok {
			lifetime = d
		} else if exp := h.Get("Expires"); exp != "" {
			lifetime = 0 // RFC 9111 5.3: an invalid Expires means already expired
			if t, err := http.ParseTime(exp); err == nil {
				date := now
				if d, err := http.ParseTime(h.Get("Date")); err == nil {
					date = d
				}
				lifetime = max(t.Sub(date), 0)
			}
		}
		p.freshUntil = now.Add(lifetime - p.initialAge)
	}
	switch {
	case ov.SWR != nil:
		p.swr = *ov.SWR
	default:
		if d, ok := sc.seconds("stale-while-revalidate"); ok {
			p.swr = d
		} else if d, ok := cc.seconds("stale-while-revalidate"); ok {
			p.swr = d
		}
	}
	if d, ok := sc.seconds("stale-if-error"); ok {
		p.sie = d
	} else if d, ok := cc.seconds("stale-if-error"); ok {
		p.sie = d
	}
	if cc.has("must-revalidate") || cc.has("proxy-revalidate") {
		// RFC 9111 4.2.4: no stale answer when the response forbids it.
		p.swr, p.sie = 0, 0
	}
	if p.revalidate {
		p.sie = 0
	}
	p.keys = strings.Fields(h.Get("Surrogate-Key"))
	p.keys = append(p.keys, ov.SurrogateKeys...)
	return p
}

// initialAge is RFC 9111 4.2.3's corrected initial age, taking the response
// delay as zero: the larger of the Age header and the Date header's
// distance from now.
func initialAge(h http.Header, now time.Time) time.Duration {
	var age time.Duration
	if n, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && n > 0 {
		age = time.Duration(min(n, 1<<31)) * time.Second
	}
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		// Date has a resolution of one second: the part of the apparent
		// age under a second is rounding, not age.
		if apparent := now.Sub(d) - time.Second; apparent > age {
			age = apparent.Truncate(time.Second)
		}
	}
	return age
}

// conditionalHeaders are the request headers a fill removes: the cache fetches
// whole objects and answers the caller with them.
var conditionalHeaders = []string{"If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range", "Range"}

// hopHeaders304 are not taken from a 304 into the stored object (RFC 9111
// 3.2: the stored framing stays that of the stored body).
var hopHeaders304 = map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Content-Encoding": true, "Content-Range": true, "Connection": true, "Keep-Alive": true}
