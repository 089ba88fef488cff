package hostcall

import (
	"encoding/binary"
	"net/http"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
)

// The core cache's replace family (abi/README.md, "fastly_cache"): replace
// looks up the object a key holds and starts replacing it (per its
// strategy, cache.ReplaceStrategy); the replace_get_* calls read the
// object being replaced (none when there is none); replace_insert writes
// the replacement as insert does and consumes the handle. fastly_cache's
// close also drops a replace handle (the witx has no close of its own).

const cacheReplaceKnown = abi.CacheReplaceRequestHeaders | abi.CacheReplaceStrategy | abi.CacheReplaceService | abi.CacheReplaceAlwaysUseRequestedRange

// cacheReplaceCall is replace. Errors: as lookup's (cacheLookupCall), and
// inval for a strategy other than 1, 2, 3; unsupported for service.
func (c *call) cacheReplaceCall(key []byte, mask, opts uint32) (*cacheLookup, error) {
	cc, err := c.cacheStore()
	if err != nil {
		return nil, err
	}
	k, err := cacheKey(key)
	if err != nil {
		return nil, err
	}
	if mask&abi.CacheReplaceReserved != 0 || mask&^cacheReplaceKnown != 0 {
		return nil, statusErr(abi.Inval, "bad cache_replace_options_mask %#x", mask)
	}
	if mask&abi.CacheReplaceService != 0 {
		return nil, statusErr(abi.Unsupported, "replacing in another service's cache is not supported")
	}
	strategy := cache.ReplaceImmediate
	var h http.Header
	if mask&(abi.CacheReplaceRequestHeaders|abi.CacheReplaceStrategy) != 0 {
		b, err := c.readStruct("cache_replace_options", opts, abi.CacheReplaceOptionsSize, 4)
		if err != nil {
			return nil, err
		}
		if mask&abi.CacheReplaceRequestHeaders != 0 {
			if h, err = c.requestHeaders(binary.LittleEndian.Uint32(b)); err != nil {
				return nil, err
			}
		}
		if mask&abi.CacheReplaceStrategy != 0 {
			switch v := binary.LittleEndian.Uint32(b[4:]); v {
			case abi.CacheReplaceImmediate, abi.CacheReplaceImmediateForceMiss, abi.CacheReplaceWait:
				strategy = cache.ReplaceStrategy(v)
			default:
				return nil, statusErr(abi.Inval, "unknown cache_replace_strategy %d", v)
			}
		}
	}
	return &cacheLookup{l: cc.CoreReplace(c.s.env.cacheSvc, k, h, strategy), key: k}, nil
}

// cacheReplaceHandle returns replace handle h's lookup, waiting for it to
// resolve (ReplaceWait). Errors: badf; error when the sandbox ends while
// it waits.
func (c *call) cacheReplaceHandle(h uint32) (*cacheLookup, error) {
	cl, err := c.s.cacheh().replace.get(h)
	if err != nil {
		return nil, err
	}
	if err := cl.l.Wait(c.ctx); err != nil {
		return nil, statusErr(abi.Error, "waiting for the cache replace: %v", err)
	}
	return cl, nil
}

// cacheReplaced returns the object replace handle h replaces. Errors:
// badf; none when there is none.
func (c *call) cacheReplaced(h uint32) (*cache.CoreEntry, error) {
	cl, err := c.cacheReplaceHandle(h)
	if err != nil {
		return nil, err
	}
	e := cl.l.Entry()
	if e == nil {
		return nil, statusErr(abi.None, "there is no object being replaced")
	}
	return e, nil
}

func coreReplaceImpls() []impl {
	putDur := func(c *call, out uint32, d time.Duration) error { return c.putU64(out, uint64(max(d, 0))) }
	return []impl{
		bindCacheReplace(func(c *call, a cacheReplaceArgs) error {
			cl, err := c.cacheReplaceCall(a.CacheKey, a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			return c.putU32(a.CacheReplaceOut, c.s.cacheh().replace.add(cl))
		}),
		bindCacheReplaceInsert(func(c *call, a cacheReplaceInsertArgs) error {
			cl, err := c.cacheReplaceHandle(a.Handle)
			if err != nil {
				return err
			}
			w, err := c.cacheWriteOptions(a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			c.s.cacheh().replace.remove(a.Handle)
			bw := c.s.env.cache.CoreReplaceInsert(c.s.env.cacheSvc, cl.l, w)
			return c.putU32(a.BodyOut, c.s.bodies.add(c.cacheInsertBody(bw)))
		}),
		bindCacheReplaceGetState(func(c *call, a cacheReplaceGetStateArgs) error {
			e, err := c.cacheReplaceHandle(a.Handle)
			if err != nil {
				return err
			}
			if e.l.Entry() == nil {
				return statusErr(abi.None, "there is no object being replaced")
			}
			// The replace's own hold on the key (force-miss) is not the
			// lookup's obligation.
			return c.putU32(a.CacheLookupStateOut, uint32(e.l.State()&^cache.CoreMustInsertOrUpdate))
		}),
		bindCacheReplaceGetUserMetadata(func(c *call, a cacheReplaceGetUserMetadataArgs) error {
			e, err := c.cacheReplaced(a.Handle)
			if err != nil {
				return err
			}
			return c.writeBuf(a.UserMetadataOutPtr, e.UserMetadata())
		}),
		bindCacheReplaceGetBody(func(c *call, a cacheReplaceGetBodyArgs) error {
			from, to, err := c.getBodyRange(a.OptionsMask, a.Options)
			if err != nil {
				return err
			}
			e, err := c.cacheReplaced(a.Handle)
			if err != nil {
				return err
			}
			return c.putU32(a.BodyOut, c.s.bodies.add(c.cacheEntryBody(e, from, to)))
		}),
		bindCacheReplaceGetLength(func(c *call, a cacheReplaceGetLengthArgs) error {
			e, err := c.cacheReplaced(a.Handle)
			if err != nil {
				return err
			}
			n, ok := e.Length()
			if !ok {
				return statusErr(abi.None, "the object's length is not known yet")
			}
			return c.putU64(a.CacheObjectLengthOut, uint64(n))
		}),
		bindCacheReplaceGetMaxAgeNs(func(c *call, a cacheReplaceGetMaxAgeNsArgs) error {
			e, err := c.cacheReplaced(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.MaxAge())
		}),
		bindCacheReplaceGetStaleWhileRevalidateNs(func(c *call, a cacheReplaceGetStaleWhileRevalidateNsArgs) error {
			e, err := c.cacheReplaced(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.SWR())
		}),
		bindCacheReplaceGetAgeNs(func(c *call, a cacheReplaceGetAgeNsArgs) error {
			e, err := c.cacheReplaced(a.Handle)
			if err != nil {
				return err
			}
			return putDur(c, a.CacheDurationNsOut, e.Age())
		}),
		bindCacheReplaceGetHits(func(c *call, a cacheReplaceGetHitsArgs) error {
			e, err := c.cacheReplaced(a.Handle)
			if err != nil {
				return err
			}
			return c.putU64(a.CacheHitCountOut, e.Hits())
		}),
	}
}
