package hostcall

import (
	"encoding/binary"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
)

// Handle kinds made only by the core cache helpers below.
const (
	kindCache handleKind = 300 + iota
	kindCacheBusy
)

// lookupOpts writes a cache_lookup_options naming request handle req.
func (h *harness) lookupOpts(req uint32) arg {
	a := h.aZ(abi.CacheLookupOptionsSize)
	binary.LittleEndian.PutUint32(h.mem.b[a.v:], req)
	return a
}

// writeOpts writes a cache_write_options with max_age_ns maxAge.
func (h *harness) writeOpts(maxAge uint64) arg {
	a := h.aZ(abi.CacheWriteOptionsSize)
	binary.LittleEndian.PutUint64(h.mem.b[a.v:], maxAge)
	return a
}

// aCache is a cache handle of a transactional lookup of a fresh key (it
// holds the obligation), or of a lookup that found an inserted object
// (found), or a busy handle.
func (h *harness) aCache(k handleKind, found bool) arg {
	key := h.t.Name()
	kp, kl := h.str(key)
	if found {
		b := h.out()
		wo := h.writeOpts(60e9)
		mp, ml := h.str("md")
		binary.LittleEndian.PutUint32(h.mem.b[wo.v+abi.CacheWriteOffUserMetadata:], uint32(mp))
		binary.LittleEndian.PutUint32(h.mem.b[wo.v+abi.CacheWriteOffUserMetadata+4:], uint32(ml))
		h.want(abi.OK, abi.ModuleCache, "insert", kp, kl, uint64(abi.CacheWriteUserMetadata), wo.v, b)
		wp, wl := h.str("cached")
		h.want(abi.OK, abi.ModuleHTTPBody, "write", uint64(h.u32(b)), wp, wl, 0, h.out())
		h.want(abi.OK, abi.ModuleHTTPBody, "close", uint64(h.u32(b)))
	}
	o := h.out()
	name := "transaction_lookup"
	if k == kindCacheBusy {
		name = "transaction_lookup_async"
	}
	h.want(abi.OK, abi.ModuleCache, name, kp, kl, 0, h.lookupOpts(0).v, o)
	return arg{v: uint64(h.u32(o)), kind: aHandle, hk: k}
}

// coreCacheConventionSpecs are the convention specs of fastly_cache
// (conventionSpecs adds them).
func coreCacheConventionSpecs(add func(module, name string, want abi.Status, args func(h *harness) []arg)) {
	m, ok := abi.ModuleCache, abi.OK
	lookup := func(h *harness) []arg {
		return flat(h.aS("key-"+h.t.Name()), val(uint64(abi.CacheLookupRequestHeaders)), h.lookupOpts(h.newHandle(kindReq)), h.u32o())
	}
	add(m, "lookup", ok, lookup)
	add(m, "transaction_lookup", ok, lookup)
	add(m, "transaction_lookup_async", ok, lookup)
	add(m, "insert", ok, func(h *harness) []arg {
		return flat(h.aS("key"), val(0), h.writeOpts(1e9), h.u32o())
	})
	add(m, "cache_busy_handle_wait", ok, func(h *harness) []arg { return flat(h.aCache(kindCacheBusy, false), h.u32o()) })
	add(m, "close_busy", ok, func(h *harness) []arg { return flat(h.aCache(kindCacheBusy, false)) })
	add(m, "transaction_insert", ok, func(h *harness) []arg {
		return flat(h.aCache(kindCache, false), val(0), h.writeOpts(1e9), h.u32o())
	})
	add(m, "transaction_insert_and_stream_back", ok, func(h *harness) []arg {
		return flat(h.aCache(kindCache, false), val(0), h.writeOpts(1e9), h.u32o(), h.u32o())
	})
	add(m, "transaction_update", ok, func(h *harness) []arg {
		// A stale object: the transaction must update it.
		kp, kl := h.str(h.t.Name())
		b := h.out()
		wo := h.writeOpts(0)
		binary.LittleEndian.PutUint64(h.mem.b[wo.v+abi.CacheWriteOffSWR:], 60e9)
		h.want(abi.OK, m, "insert", kp, kl, uint64(abi.CacheWriteStaleWhileRevalidateNs), wo.v, b)
		h.want(abi.OK, abi.ModuleHTTPBody, "close", uint64(h.u32(b)))
		o := h.out()
		h.want(abi.OK, m, "transaction_lookup", kp, kl, 0, h.lookupOpts(0).v, o)
		return flat(arg{v: uint64(h.u32(o)), kind: aHandle, hk: kindCache}, val(0), h.writeOpts(1e9))
	})
	add(m, "transaction_cancel", ok, func(h *harness) []arg { return flat(h.aCache(kindCache, false)) })
	add(m, "close", ok, func(h *harness) []arg { return flat(h.aCache(kindCache, false)) })
	add(m, "get_state", ok, func(h *harness) []arg { return flat(h.aCache(kindCache, false), h.u32o()) })
	add(m, "get_user_metadata", ok, func(h *harness) []arg { return flat(h.aCache(kindCache, true), h.aB(16), h.u32o()) })
	add(m, "get_body", ok, func(h *harness) []arg {
		o := h.aZ(abi.CacheGetBodyOptionsSize)
		binary.LittleEndian.PutUint64(h.mem.b[o.v+8:], 2)
		return flat(h.aCache(kindCache, true), val(uint64(abi.CacheGetBodyTo)), o, h.u32o())
	})
	for _, name := range []string{"get_length", "get_max_age_ns", "get_stale_while_revalidate_ns", "get_age_ns", "get_hits"} {
		add(m, name, ok, func(h *harness) []arg { return flat(h.aCache(kindCache, true), h.u64o()) })
	}
	add("fastly_http_cache", "is_request_cacheable", ok, func(h *harness) []arg { return flat(h.aH(kindReq), h.u32o()) })
}

// TestCoreCacheNoCache: a host without a cache answers unsupported.
func TestCoreCacheNoCache(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	kp, kl := h.str("k")
	h.want(abi.Unsupported, abi.ModuleCache, "lookup", kp, kl, 0, h.lookupOpts(0).v, h.out())
	h.want(abi.Unsupported, abi.ModuleCache, "insert", kp, kl, 0, h.writeOpts(0).v, h.out())
}

// TestCoreCacheSessionEnd: a session that ends holding an obligation
// hands it on, and an insert body it left open leaves no object.
func TestCoreCacheSessionEnd(t *testing.T) {
	env, _ := newTestEnv(t, EnvConfig{Cache: cache.New(cache.Config{MaxBytes: 1 << 20}), CacheService: "s"})
	h1 := newHarness(t, harnessOpts{env: env})
	kp, kl := h1.str("k")
	o := h1.out()
	h1.want(abi.OK, abi.ModuleCache, "transaction_lookup", kp, kl, 0, h1.lookupOpts(0).v, o)
	st := h1.out()
	h1.want(abi.OK, abi.ModuleCache, "get_state", uint64(h1.u32(o)), st)
	if got := h1.u32(st); got != abi.CacheStateMustInsertOrUpdate {
		t.Fatalf("first lookup: state %d", got)
	}
	b := h1.out()
	h1.want(abi.OK, abi.ModuleCache, "insert", kp, kl, 0, h1.writeOpts(60e9).v, b)
	h1.s.Close()

	h2 := newHarness(t, harnessOpts{env: env})
	kp, kl = h2.str("k")
	o = h2.out()
	h2.want(abi.OK, abi.ModuleCache, "transaction_lookup", kp, kl, 0, h2.lookupOpts(0).v, o)
	st = h2.out()
	h2.want(abi.OK, abi.ModuleCache, "get_state", uint64(h2.u32(o)), st)
	if got := h2.u32(st); got != abi.CacheStateMustInsertOrUpdate {
		t.Errorf("after the session ended: state %d, want the obligation alone", got)
	}
}

// kindCacheReplace is a replace handle, made only by aReplace.
const kindCacheReplace handleKind = 320

// aReplace is a replace handle of the test's key, replacing an inserted
// object when found.
func (h *harness) aReplace(found bool) arg {
	if found {
		h.aCache(kindCache, true)
	}
	kp, kl := h.str(h.t.Name())
	o := h.out()
	h.want(abi.OK, abi.ModuleCache, "replace", kp, kl, 0, h.aZ(abi.CacheReplaceOptionsSize).v, o)
	return arg{v: uint64(h.u32(o)), kind: aHandle, hk: kindCacheReplace}
}

// coreReplaceConventionSpecs are the convention specs of the replace
// family (conventionSpecs adds them).
func coreReplaceConventionSpecs(add func(module, name string, want abi.Status, args func(h *harness) []arg)) {
	m, ok := abi.ModuleCache, abi.OK
	add(m, "replace", ok, func(h *harness) []arg {
		o := h.aZ(abi.CacheReplaceOptionsSize)
		binary.LittleEndian.PutUint32(h.mem.b[o.v:], h.newHandle(kindReq))
		binary.LittleEndian.PutUint32(h.mem.b[o.v+4:], abi.CacheReplaceWait)
		return flat(h.aS("key-"+h.t.Name()), val(uint64(abi.CacheReplaceRequestHeaders|abi.CacheReplaceStrategy)), o, h.u32o())
	})
	add(m, "replace_insert", ok, func(h *harness) []arg {
		return flat(h.aReplace(false), val(0), h.writeOpts(1e9), h.u32o())
	})
	add(m, "replace_get_state", ok, func(h *harness) []arg { return flat(h.aReplace(true), h.u32o()) })
	add(m, "replace_get_user_metadata", ok, func(h *harness) []arg { return flat(h.aReplace(true), h.aB(16), h.u32o()) })
	add(m, "replace_get_body", ok, func(h *harness) []arg {
		o := h.aZ(abi.CacheGetBodyOptionsSize)
		binary.LittleEndian.PutUint64(h.mem.b[o.v+8:], 2)
		return flat(h.aReplace(true), val(uint64(abi.CacheGetBodyTo)), o, h.u32o())
	})
	for _, name := range []string{"replace_get_length", "replace_get_max_age_ns", "replace_get_stale_while_revalidate_ns", "replace_get_age_ns", "replace_get_hits"} {
		add(m, name, ok, func(h *harness) []arg { return flat(h.aReplace(true), h.u64o()) })
	}
}
