package hostcall

import "github.com/edgehost/edgehost/internal/cache"

// fastly_http_cache, the HTTP cache API (abi/README.md,
// "fastly_http_cache"): so far is_request_cacheable, by the readthrough
// cache's rule (internal/cache).

func httpCacheImpls() []impl {
	return []impl{
		bindHTTPCacheIsRequestCacheable(func(c *call, a httpCacheIsRequestCacheableArgs) error {
			r, err := c.s.reqs.get(a.ReqHandle)
			if err != nil {
				return err
			}
			v := uint32(0)
			if cache.RequestCacheable(r.method) {
				v = 1
			}
			return c.putU32(a.IsCacheableOut, v)
		}),
	}
}
