package hostcall

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
)

// The readthrough cache on the send path (README.md, "Caching";
// abi/README.md, cache_override_set and fastly_purge): every send, send_v2,
// send_v3 and send_async goes through the Env's cache.Cache with the
// request's override; send_async_streaming, requests with a body and
// methods other than GET and HEAD pass.

// Fastly's limits on surrogate keys (its Surrogate-Key reference): one key
// is at most MaxSurrogateKeyBytes bytes, a space-separated list of them at
// most MaxSurrogateKeysBytes.
const (
	MaxSurrogateKeyBytes  = 1024
	MaxSurrogateKeysBytes = 16 << 10
)

// checkSurrogateKeys checks the space-separated surrogate keys sk of
// cache_override_v2_set: UTF-8, at most MaxSurrogateKeysBytes, each key at
// most MaxSurrogateKeyBytes. Errors: inval.
func checkSurrogateKeys(sk []byte) error {
	if len(sk) > MaxSurrogateKeysBytes {
		return statusErr(abi.Inval, "surrogate keys of %d bytes: at most %d", len(sk), MaxSurrogateKeysBytes)
	}
	if !utf8.Valid(sk) {
		return statusErr(abi.Inval, "surrogate keys are not UTF-8")
	}
	for _, k := range strings.Fields(string(sk)) {
		if len(k) > MaxSurrogateKeyBytes {
			return statusErr(abi.Inval, "a surrogate key of %d bytes: at most %d", len(k), MaxSurrogateKeyBytes)
		}
	}
	return nil
}

// overrideOf returns the cache override of request handle rh: a pass for
// the HTTP cache API's suggested backend requests (request.cacheFill).
func (c *call) overrideOf(rh uint32) (cache.Override, error) {
	r, err := c.s.reqs.get(rh)
	if err != nil {
		return cache.Override{}, err
	}
	ov := r.override
	ov.SurrogateKeys = append([]string(nil), ov.SurrogateKeys...)
	if r.cacheFill {
		ov.Pass = true
	}
	return ov, nil
}

// cacheKey names be in cache keys: its name and where it sends requests
// (scheme, address, Host override), so that two sessions' dynamic backends
// of one name but different targets, or a static backend a deploy points
// elsewhere, never share objects.
func (be *backend) cacheKey() string {
	return be.name + "\x00" + be.settings.Scheme + "://" + be.settings.Addr + "\x00" + be.settings.HostOverride
}

// cacheKeyHeader is the request header by which Fastly's Go SDK gives a
// send its override cache key: the 32-byte key as 64 upper-case hex
// digits (its CacheOptions.OverrideKey without guest caching). The host
// consumes it: the backend never sees it.
const cacheKeyHeader = "Fastly-Xqd-Cache-Key"

// requestCacheKey returns the HTTP cache key of request handle rh: the
// override key of its cacheKeyHeader when that is 64 hex digits, else
// httpCacheKey; nil for a bad handle.
func (c *call) requestCacheKey(rh uint32) []byte {
	r, err := c.s.reqs.get(rh)
	if err != nil {
		return nil
	}
	if v := r.hdr.get(cacheKeyHeader); len(v) == 1 && len(v[0]) == 64 {
		if k, err := hex.DecodeString(v[0]); err == nil {
			return k
		}
	}
	return httpCacheKey(r)
}

// send sends req to be, through the cache when the env has one: a request
// with a body (or a streaming one, ov.Pass) passes. hk is the guest
// request's HTTP cache key (httpCacheKey): the readthrough cache keys the
// object by it and the backend, as an HTTP cache API lookup naming the
// backend does (cache.HTTPCacheKey), so the two share objects. The
// response the guest sees then carries X-Cache, X-Cache-Hits and Age.
func (e *Env) send(ctx context.Context, be *backend, req *http.Request, ov cache.Override, hk []byte) (*http.Response, error) {
	fetch := func(ctx context.Context, r *http.Request) (*http.Response, error) {
		return be.pool.Do(ctx, r, be.timeouts)
	}
	if e.cache == nil {
		return fetch(ctx, req)
	}
	if req.ContentLength != 0 || hk == nil {
		ov.Pass = true
	}
	return e.cache.Do(ctx, req, cache.HTTPCacheKey(e.cacheSvc, be.cacheKey(), hk), ov, fetch)
}

// The purge_options_mask bits (abi/README.md, fastly_purge).
const (
	purgeSoft   = 1 << 0
	purgeRetBuf = 1 << 1
)

func purgeImpls() []impl {
	return []impl{
		bindPurgePurgeSurrogateKey(func(c *call, a purgePurgeSurrogateKeyArgs) error {
			if a.OptionsMask&^(purgeSoft|purgeRetBuf) != 0 {
				return statusErr(abi.Inval, "unknown purge option bits %#x", a.OptionsMask&^(purgeSoft|purgeRetBuf))
			}
			sk := string(a.SurrogateKey)
			switch {
			case sk == "" || strings.ContainsAny(sk, " \t\r\n"):
				return statusErr(abi.Inval, "surrogate key %q: want one non-empty key", sk)
			case len(sk) > MaxSurrogateKeyBytes:
				return statusErr(abi.Inval, "a surrogate key of %d bytes: at most %d", len(sk), MaxSurrogateKeyBytes)
			case !utf8.ValidString(sk):
				return statusErr(abi.Inval, "surrogate key is not UTF-8")
			}
			// The options (read only with ret_buf) and the reply buffer
			// are checked before anything is purged.
			opts, ok := c.mem.Read(a.Options, 12)
			if !ok {
				return statusErr(abi.Inval, "purge options [%d, +12) outside linear memory", a.Options)
			}
			var buf, bufLen, nwritten uint32
			if a.OptionsMask&purgeRetBuf != 0 {
				if a.Options%4 != 0 {
					return statusErr(abi.Badalign, "purge options at %d: not 4-byte aligned", a.Options)
				}
				buf, bufLen, nwritten = binary.LittleEndian.Uint32(opts[0:]), binary.LittleEndian.Uint32(opts[4:]), binary.LittleEndian.Uint32(opts[8:])
				if err := c.checkOut(nwritten, 4, 4); err != nil {
					return err
				}
			}
			n := 0
			if ch := c.s.env.cache; ch != nil {
				n = ch.Purge(c.s.env.cacheSvc, sk, a.OptionsMask&purgeSoft != 0)
			}
			c.s.logger().Debug("purge", "surrogate_key", sk, "soft", a.OptionsMask&purgeSoft != 0, "purged", n)
			if a.OptionsMask&purgeRetBuf == 0 {
				return nil
			}
			// Fastly's purge API answers {"status": "ok", "id": ...}; the
			// id here is the number of objects purged.
			return c.putBuf(buf, bufLen, nwritten, []byte(`{"status":"ok","id":"`+strconv.Itoa(n)+`"}`))
		}),
	}
}
