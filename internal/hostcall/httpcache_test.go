package hostcall

import (
	"encoding/binary"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
)

// kindHTTPCache is an HTTP cache handle, made only by aHTTPCache.
const kindHTTPCache handleKind = 310

// httpLookupOpts writes an http_cache_lookup_options with override key key.
func (h *harness) httpLookupOpts(key string) arg {
	a := h.aZ(abi.HTTPCacheLookupOptionsFields)
	kp, kl := h.str(key)
	binary.LittleEndian.PutUint32(h.mem.b[a.v:], uint32(kp))
	binary.LittleEndian.PutUint32(h.mem.b[a.v+4:], uint32(kl))
	return a
}

// httpWriteOpts writes an http_cache_write_options with max_age_ns maxAge
// and stale_while_revalidate_ns swr.
func (h *harness) httpWriteOpts(maxAge, swr uint64) arg {
	a := h.aZ(abi.HTTPCacheWriteOptionsFields)
	binary.LittleEndian.PutUint64(h.mem.b[a.v+abi.HTTPCacheWriteOffMaxAge:], maxAge)
	binary.LittleEndian.PutUint64(h.mem.b[a.v+abi.HTTPCacheWriteOffSWR:], swr)
	return a
}

// httpCacheState names what aHTTPCache's handle holds.
type httpCacheState int

const (
	httpObligation httpCacheState = iota // a transactional lookup of a fresh key
	httpFound                            // a lookup that found an inserted response
	httpStale                            // a transactional lookup that found a stale one: found and the obligation
)

// aHTTPCache is an HTTP cache handle of the test's key in state st.
func (h *harness) aHTTPCache(st httpCacheState) arg {
	m := abi.ModuleHTTPCache
	key := h.t.Name()
	req := uint64(h.newHandle(kindReq))
	mask := uint64(abi.HTTPCacheLookupOverrideKey)
	if st != httpObligation {
		o := h.out()
		h.want(abi.OK, m, "transaction_lookup", req, mask, h.httpLookupOpts(key).v, o)
		b := h.out()
		wo := h.httpWriteOpts(60e9, 0)
		if st == httpStale {
			wo = h.httpWriteOpts(0, 60e9)
		}
		// Surrogate keys and a vary rule, for their getters.
		for off, v := range map[int]string{abi.HTTPCacheWriteOffSurrogateKeys: "sk1 sk2", abi.HTTPCacheWriteOffVaryRule: "X-A"} {
			p, l := h.str(v)
			binary.LittleEndian.PutUint32(h.mem.b[wo.v+uint64(off):], uint32(p))
			binary.LittleEndian.PutUint32(h.mem.b[wo.v+uint64(off)+4:], uint32(l))
		}
		wmask := abi.HTTPCacheWriteStaleWhileRevalidateNs | abi.HTTPCacheWriteSurrogateKeys | abi.HTTPCacheWriteVaryRule
		h.want(abi.OK, m, "transaction_insert", uint64(h.u32(o)), uint64(h.newHandle(kindResp)), uint64(wmask), wo.v, b)
		wp, wl := h.str("cached")
		h.want(abi.OK, abi.ModuleHTTPBody, "write", uint64(h.u32(b)), wp, wl, 0, h.out())
		h.want(abi.OK, abi.ModuleHTTPBody, "close", uint64(h.u32(b)))
	}
	name := "transaction_lookup"
	if st == httpFound {
		name = "lookup"
	}
	o := h.out()
	h.want(abi.OK, m, name, req, mask, h.httpLookupOpts(key).v, o)
	return arg{v: uint64(h.u32(o)), kind: aHandle, hk: kindHTTPCache}
}

// httpCacheConventionSpecs are the convention specs of fastly_http_cache
// (conventionSpecs adds them).
func httpCacheConventionSpecs(add func(module, name string, want abi.Status, args func(h *harness) []arg)) {
	m, ok := abi.ModuleHTTPCache, abi.OK
	lookup := func(h *harness) []arg {
		return flat(h.aH(kindReq), val(uint64(abi.HTTPCacheLookupOverrideKey)), h.httpLookupOpts("key-"+h.t.Name()), h.u32o())
	}
	add(m, "get_suggested_cache_key", ok, func(h *harness) []arg { return flat(h.aH(kindReq), h.aB(32), h.u32o()) })
	add(m, "lookup", ok, lookup)
	add(m, "transaction_lookup", ok, lookup)
	add(m, "transaction_insert", ok, func(h *harness) []arg {
		return flat(h.aHTTPCache(httpObligation), h.aH(kindResp), val(0), h.httpWriteOpts(1e9, 0), h.u32o())
	})
	add(m, "transaction_insert_and_stream_back", ok, func(h *harness) []arg {
		return flat(h.aHTTPCache(httpObligation), h.aH(kindResp), val(0), h.httpWriteOpts(1e9, 0), h.u32o(), h.u32o())
	})
	add(m, "transaction_update", ok, func(h *harness) []arg {
		return flat(h.aHTTPCache(httpStale), h.aH(kindResp), val(0), h.httpWriteOpts(1e9, 0))
	})
	add(m, "transaction_update_and_return_fresh", ok, func(h *harness) []arg {
		return flat(h.aHTTPCache(httpStale), h.aH(kindResp), val(0), h.httpWriteOpts(1e9, 0), h.u32o())
	})
	add(m, "transaction_record_not_cacheable", ok, func(h *harness) []arg {
		return flat(h.aHTTPCache(httpObligation), val(0), h.httpWriteOpts(1e9, 0))
	})
	add(m, "transaction_choose_stale", ok, func(h *harness) []arg { return flat(h.aHTTPCache(httpStale)) })
	add(m, "transaction_abandon", ok, func(h *harness) []arg { return flat(h.aHTTPCache(httpObligation)) })
	add(m, "close", ok, func(h *harness) []arg { return flat(h.aHTTPCache(httpObligation)) })
	add(m, "get_suggested_backend_request", ok, func(h *harness) []arg { return flat(h.aHTTPCache(httpStale), h.u32o()) })
	add(m, "get_suggested_cache_options", ok, func(h *harness) []arg {
		return flat(h.aHTTPCache(httpObligation), h.aH(kindResp), val(0), h.httpWriteOpts(0, 0), h.u32o(), h.aO(56, 8))
	})
	add(m, "prepare_response_for_storage", ok, func(h *harness) []arg {
		return flat(h.aHTTPCache(httpObligation), h.aH(kindResp), h.u32o(), h.u32o())
	})
	add(m, "get_found_response", ok, func(h *harness) []arg { return flat(h.aHTTPCache(httpFound), val(1), h.u32o(), h.u32o()) })
	add(m, "get_state", ok, func(h *harness) []arg { return flat(h.aHTTPCache(httpObligation), h.u32o()) })
	for _, name := range []string{"get_length", "get_max_age_ns", "get_stale_while_revalidate_ns", "get_stale_if_error_ns", "get_age_ns", "get_hits"} {
		add(m, name, ok, func(h *harness) []arg { return flat(h.aHTTPCache(httpFound), h.u64o()) })
	}
	add(m, "get_sensitive_data", ok, func(h *harness) []arg { return flat(h.aHTTPCache(httpFound), h.u32o()) })
	for _, name := range []string{"get_surrogate_keys", "get_vary_rule"} {
		add(m, name, ok, func(h *harness) []arg { return flat(h.aHTTPCache(httpFound), h.aB(64), h.u32o()) })
	}
}

// TestHTTPCacheSessionEnd: a session that ends holding an HTTP cache
// obligation hands it on, and a host without a cache answers unsupported.
func TestHTTPCacheSessionEnd(t *testing.T) {
	env, _ := newTestEnv(t, EnvConfig{Cache: cache.New(cache.Config{MaxBytes: 1 << 20}), CacheService: "s"})
	state := func(h *harness) uint32 {
		o := h.out()
		h.want(abi.OK, abi.ModuleHTTPCache, "transaction_lookup", uint64(h.newHandle(kindReq)), uint64(abi.HTTPCacheLookupOverrideKey), h.httpLookupOpts("k").v, o)
		st := h.out()
		h.want(abi.OK, abi.ModuleHTTPCache, "get_state", uint64(h.u32(o)), st)
		return h.u32(st)
	}
	h1 := newHarness(t, harnessOpts{env: env})
	if got := state(h1); got != abi.CacheStateMustInsertOrUpdate {
		t.Fatalf("first lookup: state %d", got)
	}
	h1.s.Close()
	h2 := newHarness(t, harnessOpts{env: env})
	if got := state(h2); got != abi.CacheStateMustInsertOrUpdate {
		t.Errorf("after the session ended: state %d, want the obligation alone", got)
	}

	h := newHarness(t, harnessOpts{})
	h.want(abi.Unsupported, abi.ModuleHTTPCache, "lookup", uint64(h.newHandle(kindReq)), 0, h.httpLookupOpts("k").v, h.out())
}
