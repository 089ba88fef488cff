package hostcall

import (
	"encoding/binary"
	"net/http"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
)

// fastly_cache, the core cache, over the host's cache (internal/cache,
// core.go; abi/README.md, "fastly_cache"). A cache handle is one lookup:
// a transactional lookup that waits for another sandbox's obligation
// resolves later, so the getters wait for it, and fastly_async_io's
// select and is_ready take cache handles as async items (ready once
// resolved). A busy handle (transaction_lookup_async) is the same lookup
// before cache_busy_handle_wait turns it into a cache handle. An insert's
// body is a streaming body: its bytes reach the object's readers as they
// are written, closing it completes the object, abandoning it (or leaving
// it open when the sandbox ends) removes it.

// Limits of the core cache's inputs, Fastly's (abi/README.md,
// "fastly_cache"): a surrogate key is at most 1024 bytes and all of an
// object's together at most 16 KiB; user metadata at most 64 KiB.
const (
	maxSurrogateKeyBytes  = 1024
	maxSurrogateKeysBytes = 16 << 10
	maxUserMetadataBytes  = 64 << 10
)

const (
	cacheLookupKnown  = abi.CacheLookupRequestHeaders | abi.CacheLookupService | abi.CacheLookupAlwaysUseRequestedRange
	cacheWriteKnown   = abi.CacheWriteRequestHeaders | abi.CacheWriteVaryRule | abi.CacheWriteInitialAgeNs | abi.CacheWriteStaleWhileRevalidateNs | abi.CacheWriteSurrogateKeys | abi.CacheWriteLength | abi.CacheWriteUserMetadata | abi.CacheWriteSensitiveData | abi.CacheWriteEdgeMaxAgeNs | abi.CacheWriteService
	cacheGetBodyKnown = abi.CacheGetBodyFrom | abi.CacheGetBodyTo
)

// cacheLookup is a cache (or busy) handle's lookup.
type cacheLookup struct {
	l   *cache.CoreLookup
	key []byte
}

// cacheHandles are a session's core cache handle tables, made on first use.
type cacheHandles struct {
	lookups handles[*cacheLookup]
	busy    handles[*cacheLookup]
	replace handles[*cacheLookup]     // replace handles (corereplace.go)
	http    handles[*httpCacheLookup] // fastly_http_cache handles (httpcache.go)
}

func (s *Session) cacheh() *cacheHandles {
	if s.cache == nil {
		s.cache = &cacheHandles{lookups: newHandles[*cacheLookup](&s.next), busy: newHandles[*cacheLookup](&s.next), replace: newHandles[*cacheLookup](&s.next), http: newHandles[*httpCacheLookup](&s.next)}
	}
	return s.cache
}

// cacheReadiness reports whether h is a cache or busy handle, and if so
// whether its lookup has resolved (wait is closed once it does).
func (s *Session) cacheReadiness(h uint32) (isCache, ready bool, wait <-chan struct{}) {
	if s.cache == nil {
		return false, false, nil
	}
	cl, ok := s.cache.lookups.lookup(h)
	if !ok {
		cl, ok = s.cache.busy.lookup(h)
	}
	if !ok {
		return false, false, nil
	}
	select {
	case <-cl.l.Ready():
		return true, true, nil
	default:
		return true, false, cl.l.Ready()
	}
}

// closeCache ends what the sandbox's lookups still hold: an obligation is
// given up (another lookup inherits it), a wait is dropped.
func (s *Session) closeCache() {
	if s.cache == nil || s.env.cache == nil {
		return
	}
	for _, t := range []*handles[*cacheLookup]{&s.cache.lookups, &s.cache.busy, &s.cache.replace} {
		for h, cl := range t.all {
			s.env.cacheRelease(cl)
			t.drop(h)
		}
	}
	for h, hl := range s.cache.http.all {
		s.env.cacheRelease(&cacheLookup{l: hl.l})
		s.cache.http.drop(h)
	}
}

// cacheRelease gives up cl's obligation or its wait.
func (e *Env) cacheRelease(cl *cacheLookup) {
	select {
	case <-cl.l.Ready():
		e.cache.CoreCancel(cl.l)
	default:
		e.cache.CoreAbandonWaiter(cl.l)
		// It may have resolved meanwhile, with an obligation.
		select {
		case <-cl.l.Ready():
			e.cache.CoreCancel(cl.l)
		default:
		}
	}
}

// cacheStore returns the host's cache. Errors: unsupported when the host
// has none.
func (c *call) cacheStore() (*cache.Cache, error) {
	if c.s.env.cache == nil {
		return nil, statusErr(abi.Unsupported, "this host has no cache")
	}
	return c.s.env.cache, nil
}

// cacheKey checks a core cache key. Errors: inval for an empty key or
// one over cache.MaxCoreKeyBytes.
func cacheKey(k []byte) ([]byte, error) {
	if len(k) == 0 {
		return nil, statusErr(abi.Inval, "empty cache key")
	}
	if len(k) > cache.MaxCoreKeyBytes {
		return nil, statusErr(abi.Inval, "cache key of %d bytes, over the limit of %d", len(k), cache.MaxCoreKeyBytes)
	}
	return append([]byte(nil), k...), nil
}

// readStruct reads size bytes at ptr, align-aligned. Errors: inval
// outside memory, else badalign.
func (c *call) readStruct(what string, ptr, size, align uint32) ([]byte, error) {
	b, ok := c.mem.Read(ptr, size)
	if !ok {
		return nil, statusErr(abi.Inval, "%s [%d, +%d) outside linear memory", what, ptr, size)
	}
	if ptr%align != 0 {
		return nil, statusErr(abi.Badalign, "%s at %d not %d-aligned", what, ptr, align)
	}
	return b, nil
}

// structBytes reads the (ptr, len) pair at off of struct b as guest bytes
// of at most max. Errors: inval.
func (c *call) structBytes(what string, b []byte, off int, max uint32) ([]byte, error) {
	ptr, n := binary.LittleEndian.Uint32(b[off:]), binary.LittleEndian.Uint32(b[off+4:])
	if n > max {
		return nil, statusErr(abi.Inval, "%s of %d bytes, over the limit of %d", what, n, max)
	}
	v, ok := c.mem.Read(ptr, n)
	if !ok {
		return nil, statusErr(abi.Inval, "%s [%d, +%d) outside linear memory", what, ptr, n)
	}
	return append([]byte(nil), v...), nil
}

// requestHeaders returns the headers of request handle h. Errors: badf.
func (c *call) requestHeaders(h uint32) (http.Header, error) {
	r, err := c.s.reqs.get(h)
	if err != nil {
		return nil, err
	}
	return r.hdr.httpHeader(), nil
}

// cacheLookupOptions decodes cache_lookup_options: the request headers
// the lookup matches Vary rules against. Errors: inval for the reserved
// or an unknown bit, or a struct outside memory; badalign; badf for a bad
// request handle; unsupported for service (another service's cache).
func (c *call) cacheLookupOptions(mask, ptr uint32) (http.Header, error) {
	if mask&abi.CacheLookupReserved != 0 || mask&^cacheLookupKnown != 0 {
		return nil, statusErr(abi.Inval, "bad cache_lookup_options_mask %#x", mask)
	}
	if mask&abi.CacheLookupService != 0 {
		return nil, statusErr(abi.Unsupported, "looking up another service's cache is not supported")
	}
	if mask&abi.CacheLookupRequestHeaders == 0 {
		return nil, nil
	}
	b, err := c.readStruct("cache_lookup_options", ptr, abi.CacheLookupOptionsSize, 4)
	if err != nil {
		return nil, err
	}
	return c.requestHeaders(binary.LittleEndian.Uint32(b))
}

// cacheWriteOptions decodes cache_write_options (see abi/cache.go for the
// layout). Errors: inval for the reserved or an unknown bit, a struct or
// a field outside memory, surrogate keys or metadata over their limits;
// badalign; badf for a bad request handle; unsupported for service.
func (c *call) cacheWriteOptions(mask, ptr uint32) (cache.CoreWrite, error) {
	w := cache.CoreWrite{Length: -1}
	if mask&abi.CacheWriteReserved != 0 || mask&^cacheWriteKnown != 0 {
		return w, statusErr(abi.Inval, "bad cache_write_options_mask %#x", mask)
	}
	if mask&abi.CacheWriteService != 0 {
		return w, statusErr(abi.Unsupported, "writing to another service's cache is not supported")
	}
	b, err := c.readStruct("cache_write_options", ptr, abi.CacheWriteOptionsSize, 8)
	if err != nil {
		return w, err
	}
	dur := func(off int) time.Duration {
		return time.Duration(min(binary.LittleEndian.Uint64(b[off:]), 1<<63-1))
	}
	w.MaxAge = dur(abi.CacheWriteOffMaxAge)
	if mask&abi.CacheWriteRequestHeaders != 0 {
		if w.RequestHeaders, err = c.requestHeaders(binary.LittleEndian.Uint32(b[abi.CacheWriteOffRequest:])); err != nil {
			return w, err
		}
	}
	if mask&abi.CacheWriteVaryRule != 0 {
		v, err := c.structBytes("vary rule", b, abi.CacheWriteOffVaryRule, maxStringLen)
		if err != nil {
			return w, err
		}
		for _, name := range strings.Fields(string(v)) {
			w.Vary = append(w.Vary, http.CanonicalHeaderKey(name))
		}
	}
	if mask&abi.CacheWriteInitialAgeNs != 0 {
		w.InitialAge = dur(abi.CacheWriteOffInitialAge)
	}
	if mask&abi.CacheWriteStaleWhileRevalidateNs != 0 {
		w.SWR = dur(abi.CacheWriteOffSWR)
	}
	if mask&abi.CacheWriteSurrogateKeys != 0 {
		v, err := c.structBytes("surrogate keys", b, abi.CacheWriteOffSurrogateKeys, maxSurrogateKeysBytes)
		if err != nil {
			return w, err
		}
		for _, k := range strings.Fields(string(v)) {
			if len(k) > maxSurrogateKeyBytes {
				return w, statusErr(abi.Inval, "surrogate key of %d bytes, over the limit of %d", len(k), maxSurrogateKeyBytes)
			}
			w.SurrogateKeys = append(w.SurrogateKeys, k)
		}
	}
	if mask&abi.CacheWriteLength != 0 {
		w.Length = int64(min(binary.LittleEndian.Uint64(b[abi.CacheWriteOffLength:]), 1<<63-1))
	}
	if mask&abi.CacheWriteUserMetadata != 0 {
		if w.UserMetadata, err = c.structBytes("user metadata", b, abi.CacheWriteOffUserMetadata, maxUserMetadataBytes); err != nil {
			return w, err
		}
	}
	w.Sensitive = mask&abi.CacheWriteSensitiveData != 0
	// edge_max_age_ns is for a cache with tiers: this one has one, so
	// max_age_ns rules.
	return w, nil
}

// cacheHandle returns cache handle h's lookup, waiting for it to resolve.
// Errors: badf; error when the sandbox ends while it waits.
func (c *call) cacheHandle(h uint32) (*cacheLookup, error) {
	cl, err := c.s.cacheh().lookups.get(h)
	if err != nil {
		return nil, err
	}
	if err := cl.l.Wait(c.ctx); err != nil {
		return nil, statusErr(abi.Error, "waiting for the cache lookup: %v", err)
	}
	return cl, nil
}

// cacheFound returns the object cache handle h found. Errors: badf, none
// when it found none.
func (c *call) cacheFound(h uint32) (*cache.CoreEntry, error) {
	cl, err := c.cacheHandle(h)
	if err != nil {
		return nil, err
	}
	e := cl.l.Entry()
	if e == nil {
		return nil, statusErr(abi.None, "the lookup found no object")
	}
	return e, nil
}

// cacheInsertBody returns a streaming body that writes w's object.
func (c *call) cacheInsertBody(w *cache.CoreWriter) *body {
	b := newBody(c.s)
	b.knownLen = -1
	b.sink = w
	b.sinkClose = func(abandon bool) error {
		if abandon {
			_ = w.Close(cache.ErrCoreBodyAbandoned)
			return nil
		}
		if err := w.Close(nil); err != nil {
			return statusErr(abi.Error, "%v", err)
		}
		return nil
	}
	return b
}

// cacheObligation returns cache handle h's lookup when it holds the
// obligation to insert. Errors: badf; error without the obligation.
func (c *call) cacheObligation(h uint32) (*cacheLookup, error) {
	cl, err := c.cacheHandle(h)
	if err != nil {
		return nil, err
	}
	if !cl.l.HasObligation() {
		return nil, statusErr(abi.Error, "the lookup has no obligation to insert or update (its state lacks must_insert_or_update)")
	}
	return cl, nil
}

func (c *call) cacheLookupCall(key []byte, mask, opts uint32, transactional bool) (*cacheLookup, error) {
	cc, err := c.cacheStore()
	if err != nil {
		return nil, err
	}
	k, err := cacheKey(key)
	if err != nil {
		return nil, err
	}
	h, err := c.cacheLookupOptions(mask, opts)
	if err != nil {
		return nil, err
	}
	svc := c.s.env.cacheSvc
	if transactional {
		return &cacheLookup{l: cc.CoreTransactionLookup(svc, k, h), key: k}, nil
	}
	return &cacheLookup{l: cc.CoreLookup(svc, k, h), key: k}, nil
}

// getBodyRange decodes cache_get_body_options: from and to, -1 when not
// given (cache.CoreEntry.Body gives the range rules). Errors: inval for
// the reserved or an unknown bit, a struct outside memory; badalign.
func (c *call) getBodyRange(mask, ptr uint32) (from, to int64, err error) {
	if mask&abi.CacheGetBodyReserved != 0 || mask&^cacheGetBodyKnown != 0 {
		return 0, 0, statusErr(abi.Inval, "bad cache_get_body_options_mask %#x", mask)
	}
	from, to = -1, -1
	if mask == 0 {
		return from, to, nil
	}
	b, err := c.readStruct("cache_get_body_options", ptr, abi.CacheGetBodyOptionsSize, 8)
	if err != nil {
		return 0, 0, err
	}
	if mask&abi.CacheGetBodyFrom != 0 {
		from = int64(min(binary.LittleEndian.Uint64(b), 1<<62))
	}
	if mask&abi.CacheGetBodyTo != 0 {
		to = int64(min(binary.LittleEndian.Uint64(b[8:]), 1<<62))
	}
	return from, to, nil
}

// cacheEntryBody returns a body reading e's range [from, to].
func (c *call) cacheEntryBody(e *cache.CoreEntry, from, to int64) *body {
	n := int64(-1)
	if l, ok := e.Length(); ok && from <= 0 && to < 0 {
		n = l
	}
	return newStreamBody(c.s, e.Body(c.s.ctx, from, to), n)
}

func coreCacheImpls() []impl {
	putDur := func(c *call, out uint32, d time.Duration) error { return c.putU64(out, uint64(max(d, 0))) }
	return []impl{
		bindCacheLookup(func(c *call, a cacheLookupArgs) error {
			cl, err := c.cacheLookupCall(a.CacheKey, a.OptionsMask, a.Options, false)
			if err != nil {
				return err
			}
			return c.putU32(a.CacheOut, c.s.cacheh().lookups.add(cl))
		}),
		bindCacheTransactionLookup(func(c *call, a cacheTransactionLookupArgs) error {
			cl, err := c.cacheLookupCall(a.CacheKey, a.OptionsMask, a.Options, true)
			if err != nil {
				return err
			}
			return c.putU32(a.CacheOut, c.s.cacheh().lookups.add(cl))
		}),
		bindCacheTransactionLookupAsync(func(c *call, a cacheTransactionLookupAsyncArgs) error {
			cl, err := c.cacheLookupCall(a.CacheKey, a.OptionsMask, a.Options, true)
			if err != nil {
				return err
			}
			return c.putU32(a.CacheBusyOut, c.s.cacheh().busy.add(cl))
		}),
		bindCacheCacheBusyHandleWait(func(c *call, a cacheCacheBusyHandleWaitArgs) error {
			t := c.s.cacheh()
			cl, err := t.busy.get(a.BusyHandle)
			if err != nil {
				return err
			}
			if err := cl.l.Wait(c.ctx); err != nil {
				return statusErr(abi.Error, "waiting for the cache lookup: %v", err)
			}
			t.busy.remove(a.BusyHandle)
			return c.putU32(a.CacheOut, t.lookups.add(cl))
		}),
		bindCacheInsert(func(c *call, a cacheInsertArgs) error {
			cc, err := c.cacheStore()
			if err != nil {
				return err
			}
			k, err := cacheKey(a.CacheKey)
			if err != nil {
				return err
			}
			w, err := c.cacheWriteOptions(a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			bw := cc.CoreInsert(c.s.env.cacheSvc, k, nil, w)
			return c.putU32(a.BodyOut, c.s.bodies.add(c.cacheInsertBody(bw)))
		}),
		bindCacheTransactionInsert(func(c *call, a cacheTransactionInsertArgs) error {
			cl, err := c.cacheObligation(a.Handle)
			if err != nil {
				return err
			}
			w, err := c.cacheWriteOptions(a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			bw := c.s.env.cache.CoreInsert(c.s.env.cacheSvc, cl.key, cl.l, w)
			return c.putU32(a.BodyOut, c.s.bodies.add(c.cacheInsertBody(bw)))
		}),
		bindCacheTransactionInsertAndStreamBack(func(c *call, a cacheTransactionInsertAndStreamBackArgs) error {
			cl, err := c.cacheObligation(a.Handle)
			if err != nil {
				return err
			}
			w, err := c.cacheWriteOptions(a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			bw := c.s.env.cache.CoreInsert(c.s.env.cacheSvc, cl.key, cl.l, w)
			if err := c.putU32(a.BodyOut, c.s.bodies.add(c.cacheInsertBody(bw))); err != nil {
				return err
			}
			return c.putU32(a.CacheOut, c.s.cacheh().lookups.add(&cacheLookup{l: bw.Lookup(), key: cl.key}))
		}),
		bindCacheTransactionUpdate(func(c *call, a cacheTransactionUpdateArgs) error {
			cl, err := c.cacheObligation(a.Handle)
			if err != nil {
				return err
			}
			if cl.l.Entry() == nil {
				return statusErr(abi.Error, "the lookup found no object to update")
			}
			w, err := c.cacheWriteOptions(a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			c.s.env.cache.CoreUpdate(cl.l, w)
			return nil
		}),
		bindCacheTransactionCancel(func(c *call, a cacheTransactionCancelArgs) error {
			cl, err := c.cacheHandle(a.Handle)
			if err != nil {
				return err
			}
			c.s.env.cache.CoreCancel(cl.l)
			return nil
		}),
		bindCacheClose(func(c *call, a cacheCloseArgs) error {
			cl, err := c.s.cacheh().lookups.remove(a.Handle)
			if err != nil {
				// close drops replace handles too (no replace_close).
				var rerr error
				if cl, rerr = c.s.cacheh().replace.remove(a.Handle); rerr != nil {
					return err
				}
			}
			c.s.env.cacheRelease(cl)
			return nil
		}),
		bindCacheCloseBusy(func(c *call, a cacheCloseBusyArgs) error {
			cl, err := c.s.cacheh().busy.remove(a.Handle)
			if err != nil {
				return err
			}
			c.s.env.cacheRelease(cl)
			return nil
		}),
		bindCacheGetState(func(c *call, a cacheGetStateArgs) error {
			cl, err := c.cacheHandle(a.Handle)
			if err != nil {
				return err
			}
			return c.putU32(a.CacheLookupStateOut, uint32(cl.l.State()))
		}),
		bindCacheGetUserMetadata(func(c *call, a cacheGetUserMetadataArgs) error {
			e, err := c.cacheFound(a.Handle)
			if err != nil {
				return err
			}
			return c.writeBuf(a.UserMetadataOutPtr, e.UserMetadata())
		}),
		bindCacheGetBody(func(c *call, a cacheGetBodyArgs) error {
			from, to, err := c.getBodyRange(a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			e, err := c.cacheFound(a.Handle)
			if err != nil {
				return err
			}
			return c.putU32(a.BodyOut, c.s.bodies.add(c.cacheEntryBody(e, from, to)))
		}),
		bindCacheGetLength(func(c *call, a cacheGetLengthArgs) error {
			e, err := c.cacheFound(a.Handle)
			if err != nil {
				return err
			}
			n, ok := e.Length()
			if !ok {
				return statusErr(abi.None, "the object's length is not known yet")
			}
			return c.putU64(a.CacheObjectLengthOut, uint64(n))
		}),
		bindCacheGetMaxAgeNs(func(c *call, a cacheGetMaxAgeNsArgs) error {
			e, err := c.cacheFound(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.MaxAge())
		}),
		bindCacheGetStaleWhileRevalidateNs(func(c *call, a cacheGetStaleWhileRevalidateNsArgs) error {
			e, err := c.cacheFound(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.SWR())
		}),
		bindCacheGetAgeNs(func(c *call, a cacheGetAgeNsArgs) error {
			e, err := c.cacheFound(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.Age())
		}),
		bindCacheGetHits(func(c *call, a cacheGetHitsArgs) error {
			e, err := c.cacheFound(a.Handle)
			if err != nil {
				return err
			}
			return c.putU64(a.CacheHitCountOut, e.Hits())
		}),
	}
}
