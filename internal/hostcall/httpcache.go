package hostcall

import (
	"encoding/binary"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
)

// fastly_http_cache, the HTTP cache API (abi/README.md,
// "fastly_http_cache"), over the core cache's transactions
// (internal/cache, core.go) in a namespace of its own: the same store,
// memory bound, service generation and surrogate-key purges, with the
// stored response's status and header kept with its body, and the
// readthrough cache's rules (cache.SuggestHTTP) behind the suggested
// options. An HTTP cache handle is one lookup; a transactional lookup
// that waits for another sandbox's obligation resolves later, and the
// calls on its handle wait for it. A lookup is keyed by the request's
// HTTP cache key (cache.HTTPKey of its host and path; what
// get_suggested_cache_key answers), or by the override key of its
// options, and by the backend its backend_name option names: that is the
// readthrough cache's key of a send of the request to that backend, so
// the HTTP cache API and the send path find each other's objects.
// Objects vary on the request headers their vary rule names.

const (
	httpCacheLookupKnown = abi.HTTPCacheLookupOverrideKey | abi.HTTPCacheLookupBackendName
	httpCacheWriteKnown  = abi.HTTPCacheWriteVaryRule | abi.HTTPCacheWriteInitialAgeNs | abi.HTTPCacheWriteStaleWhileRevalidateNs | abi.HTTPCacheWriteSurrogateKeys | abi.HTTPCacheWriteLength | abi.HTTPCacheWriteSensitiveData | abi.HTTPCacheWriteStaleIfErrorNs
)

// httpCacheLookup is an HTTP cache handle's lookup and the request it was
// made for, as of the lookup.
type httpCacheLookup struct {
	l      *cache.CoreLookup
	key    cache.Key
	method string
	uri    string
	hdr    http.Header
}

func (s *Session) httpCacheh() *handles[*httpCacheLookup] { return &s.cacheh().http }

// httpCacheKey is the HTTP cache key of request r (cache.HTTPKey): its
// host (the Host header when set, else its URI's) and its URI's path and
// query.
func httpCacheKey(r *request) []byte {
	u, err := r.parsedURL()
	if err != nil {
		return cache.HTTPKey("", r.uri)
	}
	host := u.Host
	if h := r.hdr.get("Host"); len(h) > 0 && h[0] != "" {
		host = h[0]
	}
	return cache.HTTPKey(host, u.RequestURI())
}

// httpCacheLookupCall is lookup and transaction_lookup. Errors: badf for
// a bad request handle; inval for the reserved or an unknown mask bit, an
// options struct, override key or backend name outside memory, an empty
// key or one over cache.MaxCoreKeyBytes, an unknown backend; badalign;
// unsupported without a cache.
func (c *call) httpCacheLookupCall(rh, mask, opts uint32, transactional bool) (*httpCacheLookup, error) {
	cc, err := c.cacheStore()
	if err != nil {
		return nil, err
	}
	r, err := c.s.reqs.get(rh)
	if err != nil {
		return nil, err
	}
	if mask&abi.HTTPCacheLookupReserved != 0 || mask&^httpCacheLookupKnown != 0 {
		return nil, statusErr(abi.Inval, "bad http_cache_lookup_options_mask %#x", mask)
	}
	key, backend := httpCacheKey(r), ""
	if mask&(abi.HTTPCacheLookupOverrideKey|abi.HTTPCacheLookupBackendName) != 0 {
		size := uint32(abi.HTTPCacheLookupOptionsFields)
		if mask&abi.HTTPCacheLookupBackendName != 0 {
			size = abi.HTTPCacheLookupOptionsSize
		}
		b, err := c.readStruct("http_cache_lookup_options", opts, size, 4)
		if err != nil {
			return nil, err
		}
		if mask&abi.HTTPCacheLookupOverrideKey != 0 {
			if key, err = c.structBytes("override key", b, 0, cache.MaxCoreKeyBytes); err != nil {
				return nil, err
			}
		}
		if mask&abi.HTTPCacheLookupBackendName != 0 {
			name, err := c.structBytes("backend name", b, abi.HTTPCacheLookupOffBackendName, maxStringLen)
			if err != nil {
				return nil, err
			}
			be, err := c.s.lookupBackend(string(name))
			if err != nil {
				return nil, err
			}
			backend = be.cacheKey()
		}
	}
	if key, err = cacheKey(key); err != nil {
		return nil, err
	}
	hl := &httpCacheLookup{key: cache.HTTPCacheKey(c.s.env.cacheSvc, backend, key), method: r.method, uri: r.uri, hdr: r.hdr.httpHeader()}
	if transactional {
		hl.l = cc.HTTPTransactionLookup(hl.key, hl.hdr)
	} else {
		hl.l = cc.HTTPLookup(hl.key, hl.hdr)
	}
	return hl, nil
}

// httpCacheHandle returns HTTP cache handle h's lookup, waiting for it to
// resolve. Errors: badf; error when the sandbox ends while it waits.
func (c *call) httpCacheHandle(h uint32) (*httpCacheLookup, error) {
	hl, err := c.s.httpCacheh().get(h)
	if err != nil {
		return nil, err
	}
	if err := hl.l.Wait(c.ctx); err != nil {
		return nil, statusErr(abi.Error, "waiting for the cache lookup: %v", err)
	}
	return hl, nil
}

// httpCacheFound returns the response handle h found. Errors: badf, none.
func (c *call) httpCacheFound(h uint32) (*cache.CoreEntry, error) {
	hl, err := c.httpCacheHandle(h)
	if err != nil {
		return nil, err
	}
	e := hl.l.Entry()
	if e == nil {
		return nil, statusErr(abi.None, "the lookup found no response")
	}
	return e, nil
}

// httpCacheObligation returns handle h's lookup when it holds the
// obligation to insert or update. Errors: badf; error without it.
func (c *call) httpCacheObligation(h uint32) (*httpCacheLookup, error) {
	hl, err := c.httpCacheHandle(h)
	if err != nil {
		return nil, err
	}
	if !hl.l.HasObligation() {
		return nil, statusErr(abi.Error, "the lookup has no obligation to insert or update (its state lacks must_insert_or_update)")
	}
	return hl, nil
}

// httpWriteOptions decodes http_cache_write_options (abi/httpcache.go
// gives the layout) for a write of the response with header rh. Without
// the vary_rule bit the response's Vary header is the rule. Errors: inval
// for the reserved or an unknown bit, a struct or field outside memory,
// surrogate keys over their limits; badalign.
func (c *call) httpWriteOptions(mask, ptr uint32, rh http.Header) (cache.CoreWrite, error) {
	w := cache.CoreWrite{Length: -1}
	if mask&abi.HTTPCacheWriteReserved != 0 || mask&^httpCacheWriteKnown != 0 {
		return w, statusErr(abi.Inval, "bad http_cache_write_options_mask %#x", mask)
	}
	size := uint32(abi.HTTPCacheWriteOptionsFields)
	if mask&abi.HTTPCacheWriteStaleIfErrorNs != 0 {
		size = abi.HTTPCacheWriteOptionsSize // stale_if_error_ns at 48 must be in memory
	}
	b, err := c.readStruct("http_cache_write_options", ptr, size, 8)
	if err != nil {
		return w, err
	}
	dur := func(off int) time.Duration {
		return time.Duration(min(binary.LittleEndian.Uint64(b[off:]), 1<<63-1))
	}
	w.MaxAge = dur(abi.HTTPCacheWriteOffMaxAge)
	if mask&abi.HTTPCacheWriteVaryRule != 0 {
		v, err := c.structBytes("vary rule", b, abi.HTTPCacheWriteOffVaryRule, maxStringLen)
		if err != nil {
			return w, err
		}
		for _, name := range strings.Fields(string(v)) {
			w.Vary = append(w.Vary, http.CanonicalHeaderKey(name))
		}
	} else {
		w.Vary = cache.SuggestHTTP(nil, http.StatusOK, rh, time.Time{}).Vary
	}
	if mask&abi.HTTPCacheWriteInitialAgeNs != 0 {
		w.InitialAge = dur(abi.HTTPCacheWriteOffInitialAge)
	}
	if mask&abi.HTTPCacheWriteStaleWhileRevalidateNs != 0 {
		w.SWR = dur(abi.HTTPCacheWriteOffSWR)
	}
	if mask&abi.HTTPCacheWriteSurrogateKeys != 0 {
		v, err := c.structBytes("surrogate keys", b, abi.HTTPCacheWriteOffSurrogateKeys, maxSurrogateKeysBytes)
		if err != nil {
			return w, err
		}
		if err := checkSurrogateKeys(v); err != nil {
			return w, err
		}
		w.SurrogateKeys = strings.Fields(string(v))
	}
	if mask&abi.HTTPCacheWriteLength != 0 {
		w.Length = int64(min(binary.LittleEndian.Uint64(b[abi.HTTPCacheWriteOffLength:]), 1<<63-1))
	}
	w.Sensitive = mask&abi.HTTPCacheWriteSensitiveData != 0
	if mask&abi.HTTPCacheWriteStaleIfErrorNs != 0 {
		w.SIE = dur(abi.HTTPCacheWriteOffStaleIfError)
	}
	return w, nil
}

// httpCacheWrite takes response handle resp (consumed) and the write
// options for a write in hl. Errors: as httpWriteOptions; badf for a bad
// response handle (checked first, then not consumed).
func (c *call) httpCacheWrite(hl *httpCacheLookup, resp, mask, opts uint32) (cache.CoreWrite, error) {
	r, err := c.s.resps.get(resp)
	if err != nil {
		return cache.CoreWrite{}, err
	}
	rh := r.hdr.httpHeader()
	w, err := c.httpWriteOptions(mask, opts, rh)
	if err != nil {
		return w, err
	}
	c.s.resps.remove(resp)
	w.Status, w.Header, w.RequestHeaders = r.status, rh, hl.hdr
	return w, nil
}

// httpCacheUpdate updates the response hl found with resp's status and
// header (a 304's header merged into the stored one, the stored status
// kept). Errors: as httpCacheWrite; error without an obligation or a
// found response.
func (c *call) httpCacheUpdate(h, resp, mask, opts uint32) (*httpCacheLookup, error) {
	hl, err := c.httpCacheObligation(h)
	if err != nil {
		return nil, err
	}
	e := hl.l.Entry()
	if e == nil {
		return nil, statusErr(abi.Error, "the lookup found no response to update")
	}
	w, err := c.httpCacheWrite(hl, resp, mask, opts)
	if err != nil {
		return nil, err
	}
	if w.Status == http.StatusNotModified {
		w.Status, w.Header = e.Status(), cache.Merge304(e.Header(), w.Header)
	}
	c.s.env.cache.CoreUpdate(hl.l, w)
	return hl, nil
}

// httpCacheRelookup returns a non-transactional lookup of hl's key, made now.
func (c *call) httpCacheRelookup(hl *httpCacheLookup) *httpCacheLookup {
	n := *hl
	n.l = c.s.env.cache.HTTPLookup(hl.key, hl.hdr)
	return &n
}

// newResponseHandle makes a response handle of status code and header h.
func (c *call) newResponseHandle(code int, h http.Header) uint32 {
	r := newResponse()
	r.status, r.hdr = code, headerFrom(h)
	return c.s.resps.add(r)
}

func httpCacheImpls() []impl {
	putDur := func(c *call, out uint32, d time.Duration) error { return c.putU64(out, uint64(max(d, 0))) }
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
		bindHTTPCacheGetSuggestedCacheKey(func(c *call, a httpCacheGetSuggestedCacheKeyArgs) error {
			r, err := c.s.reqs.get(a.ReqHandle)
			if err != nil {
				return err
			}
			return c.writeBuf(a.KeyOutPtr, httpCacheKey(r))
		}),
		bindHTTPCacheLookup(func(c *call, a httpCacheLookupArgs) error {
			hl, err := c.httpCacheLookupCall(a.ReqHandle, a.OptionsMask, a.Options, false)
			if err != nil {
				return err
			}
			return c.putU32(a.HTTPCacheOut, c.s.httpCacheh().add(hl))
		}),
		bindHTTPCacheTransactionLookup(func(c *call, a httpCacheTransactionLookupArgs) error {
			hl, err := c.httpCacheLookupCall(a.ReqHandle, a.OptionsMask, a.Options, true)
			if err != nil {
				return err
			}
			return c.putU32(a.HTTPCacheOut, c.s.httpCacheh().add(hl))
		}),
		bindHTTPCacheTransactionInsert(func(c *call, a httpCacheTransactionInsertArgs) error {
			hl, err := c.httpCacheObligation(a.Handle)
			if err != nil {
				return err
			}
			w, err := c.httpCacheWrite(hl, a.RespHandle, a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			bw := c.s.env.cache.HTTPInsert(hl.key, hl.l, w)
			return c.putU32(a.BodyOut, c.s.bodies.add(c.cacheInsertBody(bw)))
		}),
		bindHTTPCacheTransactionInsertAndStreamBack(func(c *call, a httpCacheTransactionInsertAndStreamBackArgs) error {
			hl, err := c.httpCacheObligation(a.Handle)
			if err != nil {
				return err
			}
			w, err := c.httpCacheWrite(hl, a.RespHandle, a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			bw := c.s.env.cache.HTTPInsert(hl.key, hl.l, w)
			if err := c.putU32(a.BodyOut, c.s.bodies.add(c.cacheInsertBody(bw))); err != nil {
				return err
			}
			n := *hl
			n.l = bw.Lookup()
			return c.putU32(a.HTTPCacheOut, c.s.httpCacheh().add(&n))
		}),
		bindHTTPCacheTransactionUpdate(func(c *call, a httpCacheTransactionUpdateArgs) error {
			_, err := c.httpCacheUpdate(a.Handle, a.RespHandle, a.OptionsMask, a.Options)
			return err
		}),
		bindHTTPCacheTransactionUpdateAndReturnFresh(func(c *call, a httpCacheTransactionUpdateAndReturnFreshArgs) error {
			hl, err := c.httpCacheUpdate(a.Handle, a.RespHandle, a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			return c.putU32(a.HTTPCacheOut, c.s.httpCacheh().add(c.httpCacheRelookup(hl)))
		}),
		bindHTTPCacheTransactionRecordNotCacheable(func(c *call, a httpCacheTransactionRecordNotCacheableArgs) error {
			hl, err := c.httpCacheObligation(a.Handle)
			if err != nil {
				return err
			}
			w, err := c.httpWriteOptions(a.OptionsMask, a.Options, nil)
			if err != nil {
				return err
			}
			// Only the max age and the vary rule count (abi/README.md).
			rec := cache.CoreWrite{MaxAge: w.MaxAge, Vary: w.Vary, RequestHeaders: hl.hdr, Length: 0, NotCacheable: true}
			bw := c.s.env.cache.HTTPInsert(hl.key, hl.l, rec)
			if err := bw.Close(nil); err != nil {
				return statusErr(abi.Error, "%v", err)
			}
			return nil
		}),
		bindHTTPCacheTransactionAbandon(func(c *call, a httpCacheTransactionAbandonArgs) error {
			hl, err := c.httpCacheHandle(a.Handle)
			if err != nil {
				return err
			}
			c.s.env.cache.CoreCancel(hl.l)
			return nil
		}),
		bindHTTPCacheTransactionChooseStale(func(c *call, a httpCacheTransactionChooseStaleArgs) error {
			hl, err := c.httpCacheObligation(a.Handle)
			if err != nil {
				return err
			}
			if hl.l.State()&cache.CoreStale == 0 {
				return statusErr(abi.Error, "the lookup found no stale response to choose")
			}
			c.s.env.cache.CoreCancel(hl.l)
			return nil
		}),
		bindHTTPCacheClose(func(c *call, a httpCacheCloseArgs) error {
			hl, err := c.s.httpCacheh().remove(a.Handle)
			if err != nil {
				return err
			}
			c.s.env.cacheRelease(&cacheLookup{l: hl.l})
			return nil
		}),
		bindHTTPCacheGetSuggestedBackendRequest(func(c *call, a httpCacheGetSuggestedBackendRequestArgs) error {
			hl, err := c.httpCacheHandle(a.Handle)
			if err != nil {
				return err
			}
			h := hl.hdr.Clone()
			// Revalidating a stale response: ask for it conditionally.
			if e := hl.l.Entry(); e != nil && hl.l.HasObligation() {
				sh := e.Header()
				if v := sh.Get("ETag"); v != "" && h.Get("If-None-Match") == "" {
					h.Set("If-None-Match", v)
				}
				if v := sh.Get("Last-Modified"); v != "" && h.Get("If-Modified-Since") == "" {
					h.Set("If-Modified-Since", v)
				}
			}
			r := newRequest()
			r.method, r.uri, r.hdr = hl.method, hl.uri, headerFrom(h)
			// It fills the HTTP cache: the readthrough cache passes it,
			// even when the guest sets a cache override on it (Fastly's
			// Go SDK sets its own), so the two do not both fill one key.
			r.override, r.cacheFill = cache.Override{Pass: true}, true
			return c.putU32(a.ReqOut, c.s.reqs.add(r))
		}),
		bindHTTPCacheGetSuggestedCacheOptions(func(c *call, a httpCacheGetSuggestedCacheOptionsArgs) error {
			hl, err := c.httpCacheHandle(a.Handle)
			if err != nil {
				return err
			}
			r, err := c.s.resps.get(a.Response)
			if err != nil {
				return err
			}
			// The mask names the options wanted; Fastly's Go SDK asks with
			// every bit, the reserved one included, which is ignored here.
			if a.OptionsMask&^(httpCacheWriteKnown|abi.HTTPCacheWriteReserved) != 0 {
				return statusErr(abi.Inval, "bad http_cache_write_options_mask %#x", a.OptionsMask)
			}
			size := uint32(abi.HTTPCacheWriteOptionsFields)
			if a.OptionsMask&abi.HTTPCacheWriteStaleIfErrorNs != 0 {
				size = abi.HTTPCacheWriteOptionsSize
			}
			in, err := c.readStruct("http_cache_write_options", a.Options, size, 8)
			if err != nil {
				return err
			}
			out, err := c.readStruct("http_cache_write_options", a.OptionsOut, size, 8)
			if err != nil {
				return err
			}
			in = append([]byte(nil), in...)
			s := cache.SuggestHTTP(hl.hdr, r.status, r.hdr.httpHeader(), c.s.env.cache.Now())
			o := make([]byte, len(out))
			var mask uint32
			binary.LittleEndian.PutUint64(o[abi.HTTPCacheWriteOffMaxAge:], uint64(s.MaxAge))
			binary.LittleEndian.PutUint64(o[abi.HTTPCacheWriteOffInitialAge:], uint64(s.InitialAge))
			mask |= abi.HTTPCacheWriteInitialAgeNs
			binary.LittleEndian.PutUint64(o[abi.HTTPCacheWriteOffSWR:], uint64(s.SWR))
			mask |= abi.HTTPCacheWriteStaleWhileRevalidateNs
			if s.Length >= 0 {
				binary.LittleEndian.PutUint64(o[abi.HTTPCacheWriteOffLength:], uint64(s.Length))
				mask |= abi.HTTPCacheWriteLength
			}
			if a.OptionsMask&abi.HTTPCacheWriteStaleIfErrorNs != 0 {
				binary.LittleEndian.PutUint64(o[abi.HTTPCacheWriteOffStaleIfError:], uint64(s.SIE))
				mask |= abi.HTTPCacheWriteStaleIfErrorNs
			}
			// The vary rule and surrogate keys go to the guest's buffers
			// the input options give (their ptr and capacity), when it
			// asks for them with their bits; their length goes in the
			// output's len field, and a buffer too short answers buflen.
			short := false
			str := func(bit uint32, off int, v string) error {
				if a.OptionsMask&bit == 0 {
					return nil
				}
				ptr, capacity := binary.LittleEndian.Uint32(in[off:]), binary.LittleEndian.Uint32(in[off+4:])
				binary.LittleEndian.PutUint32(o[off:], ptr)
				binary.LittleEndian.PutUint32(o[off+4:], uint32(len(v)))
				mask |= bit
				if uint32(len(v)) > capacity {
					short = true
					return nil
				}
				if !c.mem.Write(ptr, []byte(v)) {
					return statusErr(abi.Inval, "buffer [%d, +%d) outside linear memory", ptr, len(v))
				}
				return nil
			}
			if err := str(abi.HTTPCacheWriteVaryRule, abi.HTTPCacheWriteOffVaryRule, strings.Join(s.Vary, " ")); err != nil {
				return err
			}
			if err := str(abi.HTTPCacheWriteSurrogateKeys, abi.HTTPCacheWriteOffSurrogateKeys, strings.Join(s.SurrogateKeys, " ")); err != nil {
				return err
			}
			copy(out, o)
			if err := c.putU32(a.OptionsMaskOut, mask); err != nil {
				return err
			}
			if short {
				return statusErr(abi.Buflen, "a vary rule or surrogate keys buffer is too short")
			}
			return nil
		}),
		bindHTTPCachePrepareResponseForStorage(func(c *call, a httpCachePrepareResponseForStorageArgs) error {
			hl, err := c.httpCacheHandle(a.Handle)
			if err != nil {
				return err
			}
			r, err := c.s.resps.get(a.Response)
			if err != nil {
				return err
			}
			if err := c.checkOut(a.HTTPStorageActionOut, 4, 4); err != nil {
				return err
			}
			rh := r.hdr.httpHeader()
			action, code := abi.HTTPStorageInsert, r.status
			switch e := hl.l.Entry(); {
			case r.status == http.StatusNotModified && e != nil:
				action, code, rh = abi.HTTPStorageUpdate, e.Status(), cache.Merge304(e.Header(), rh)
			default:
				s := cache.SuggestHTTP(hl.hdr, r.status, rh, c.s.env.cache.Now())
				switch {
				case s.Store:
				case s.Reason == "status":
					action = abi.HTTPStorageDoNotStore
				default:
					action = abi.HTTPStorageRecordUncacheable
				}
			}
			// The cache consumes Surrogate-Control.
			rh.Del("Surrogate-Control")
			c.s.resps.remove(a.Response)
			if err := c.putU32(a.RespOut, c.newResponseHandle(code, rh)); err != nil {
				return err
			}
			return c.putU32(a.HTTPStorageActionOut, action)
		}),
		bindHTTPCacheGetFoundResponse(func(c *call, a httpCacheGetFoundResponseArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			h := e.Header()
			if a.TransformForClient != 0 {
				h.Set("Age", strconv.FormatInt(int64(e.Age()/time.Second), 10))
			}
			n := int64(-1)
			if l, ok := e.Length(); ok {
				n = l
			}
			if err := c.putU32(a.RespOut, c.newResponseHandle(e.Status(), h)); err != nil {
				return err
			}
			return c.putU32(a.RespBodyOut, c.s.bodies.add(newStreamBody(c.s, e.Body(c.s.ctx, -1, -1), n)))
		}),
		bindHTTPCacheGetState(func(c *call, a httpCacheGetStateArgs) error {
			hl, err := c.httpCacheHandle(a.Handle)
			if err != nil {
				return err
			}
			return c.putU32(a.CacheLookupStateOut, uint32(hl.l.State()))
		}),
		bindHTTPCacheGetLength(func(c *call, a httpCacheGetLengthArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			n, ok := e.Length()
			if !ok {
				return statusErr(abi.None, "the response's length is not known yet")
			}
			return c.putU64(a.CacheObjectLengthOut, uint64(n))
		}),
		bindHTTPCacheGetMaxAgeNs(func(c *call, a httpCacheGetMaxAgeNsArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.MaxAge())
		}),
		bindHTTPCacheGetStaleWhileRevalidateNs(func(c *call, a httpCacheGetStaleWhileRevalidateNsArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.SWR())
		}),
		bindHTTPCacheGetStaleIfErrorNs(func(c *call, a httpCacheGetStaleIfErrorNsArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.SIE())
		}),
		bindHTTPCacheGetAgeNs(func(c *call, a httpCacheGetAgeNsArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.Age())
		}),
		bindHTTPCacheGetHits(func(c *call, a httpCacheGetHitsArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			return c.putU64(a.CacheHitCountOut, e.Hits())
		}),
		bindHTTPCacheGetSensitiveData(func(c *call, a httpCacheGetSensitiveDataArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			v := uint32(0)
			if e.Sensitive() {
				v = 1
			}
			return c.putU32(a.IsSensitiveOut, v)
		}),
		bindHTTPCacheGetSurrogateKeys(func(c *call, a httpCacheGetSurrogateKeysArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			return c.writeBuf(a.SurrogateKeysOutPtr, []byte(strings.Join(e.SurrogateKeys(), " ")))
		}),
		bindHTTPCacheGetVaryRule(func(c *call, a httpCacheGetVaryRuleArgs) error {
			e, err := c.httpCacheFound(a.Handle)
			if err != nil {
				return err
			}
			return c.writeBuf(a.VaryRuleOutPtr, []byte(strings.Join(e.Vary(), " ")))
		}),
	}
}
