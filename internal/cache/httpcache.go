package cache

import "net/http"

// RequestCacheable reports whether a request with this method may be
// answered from the cache: GET and HEAD, the rule Cache.Do applies (see
// the package comment), and what fastly_http_cache.is_request_cacheable
// answers (abi/README.md, "fastly_http_cache").
func RequestCacheable(method string) bool {
	return method == http.MethodGet || method == http.MethodHead
}
