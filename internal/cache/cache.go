// Package cache is edgehost's readthrough HTTP cache: the cache a backend
// request made with a send hostcall goes through unless the guest passes,
// with Compute's semantics (issue 11; README.md, "Caching").
//
// The send path calls Cache.Do with the guest's request, its Key (service,
// backend, and the request's HTTP cache key, HTTPKey) and its Override (the cache_override_v2_set fields, see
// OverrideFromABI), and a fetch function that sends a request to the
// backend. Do answers from a stored object, or makes (or joins) one origin
// request and streams its body while storing it.
//
// Rules, in the order they apply:
//
//   - Only GET and HEAD requests use the cache; other methods, and requests
//     whose Override has Pass, go to the origin untouched (a pass). A HEAD
//     request is answered from a stored GET object; without one it passes.
//   - A response is stored when its status is 200, 203, 300, 301, 302, 404
//     or 410 (Compute's default cacheable statuses), it has neither
//     Cache-Control/Surrogate-Control no-store nor Cache-Control private,
//     no Set-Cookie (unless Override.CacheSetCookie), no Vary: *, and it
//     does not answer a request with Authorization (RFC 9111 3.5) unless
//     it says public, s-maxage or must-revalidate. A response that may not
//     be stored makes requests for its URL passes for two minutes (five
//     seconds for an uncacheable status or an oversized body), so they do
//     not queue behind each other (Fastly's hit-for-pass).
//   - Freshness lifetime: Override TTL (counted from now); else
//     Surrogate-Control max-age, Cache-Control s-maxage, max-age, Expires
//     minus Date, in that order of preference; else two minutes (DefaultTTL).
//     Header lifetimes are reduced by the response's age on arrival (Age,
//     or the distance from Date). Surrogate-Control is consumed: stored
//     objects and answers do not carry it.
//   - Cache-Control no-cache (or Surrogate-Control no-cache) is stored, but
//     each use revalidates it with the origin. (Fastly's own cache ignores
//     no-cache; edgehost follows RFC 9111 here.)
//   - A stale object within its stale-while-revalidate window (Override SWR,
//     else Surrogate-Control, else Cache-Control stale-while-revalidate; 0
//     with must-revalidate) is served while exactly one background request
//     refreshes it. Past that window, the request revalidates it with
//     If-None-Match / If-Modified-Since when it has an ETag or
//     Last-Modified: a 304 refreshes the stored object's headers and
//     freshness and the stored body is served; another answer replaces it.
//   - Within its stale-if-error window (Surrogate-Control, else
//     Cache-Control stale-if-error; 0 with must-revalidate or no-cache), a
//     stale object answers, as a HIT, when the request that revalidates it
//     fails before a response (the origin refuses the connection, does not
//     answer in time, breaks the connection): Compute's default. An
//     origin's 5xx answer is an answer, and reaches the caller.
//   - Objects are per Key and per the values of the request headers the
//     response's Vary names. The HTTP cache API (HTTPLookup, HTTPInsert)
//     keeps its objects under the same keys: Do answers from what it
//     stored (and passes while it records a key not cacheable), and its
//     lookups find what Do stored.
//   - Concurrent requests that miss on one Key make one origin request; the
//     others wait for its headers and stream its body as it arrives. An
//     object is stored only when its body arrived complete: an origin that
//     fails mid-body or sends fewer bytes than its Content-Length ends every
//     reader's body with an error and stores nothing, so the next request
//     fetches again. A body over Config.MaxObjectBytes streams to the
//     requests already reading it and is not stored.
//   - Fills strip the caller's conditional and Range headers: the cache
//     fetches whole objects and answers with the whole object.
//
// Every answer carries X-Cache (HIT when served from a stored object, MISS
// otherwise, passes included, as Fastly reports them), X-Cache-Hits (the
// object's hits so far, this one included; 0 on a miss) and Age (seconds).
// The cache keeps objects in memory only, so PCI has nothing to change.
package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultMemoryMiB is the default of `[edgehost] cache_memory_mib`: the
// bytes the cache's objects may take, in MiB.
const DefaultMemoryMiB = 256

// Config configures a Cache. The zero value is valid.
type Config struct {
	// MaxBytes bounds the memory of the stored objects, bodies, headers and
	// keys, in bytes (default DefaultMemoryMiB MiB). The admission and
	// eviction policy is otter's (W-TinyLFU); its accounting may run over
	// the bound briefly while it evicts.
	MaxBytes int64
	// MaxObjectBytes caps one object's body, in bytes (default MaxBytes/8);
	// larger bodies stream through without being stored.
	MaxObjectBytes int64
	// Now returns the time (default time.Now); tests move it.
	Now func() time.Time
}

// Key names what a request caches under, besides the Vary variants.
type Key struct {
	// Service is the service (guest) the object belongs to: generations and
	// purges are per service.
	Service string
	// Backend names the backend the request is sent to (the hostcall
	// layer gives its name and target).
	Backend string
	// URL names the request: the send path and the HTTP cache API give
	// its HTTP cache key (HTTPKey, or the guest's override key; see
	// HTTPCacheKey), so that the two share objects; any string that
	// identifies the request will do.
	URL string
}

// Override is a request's cache override, the fields of
// cache_override_v2_set (abi/README.md): pass, TTL, stale-while-revalidate,
// PCI and surrogate keys.
type Override struct {
	// Pass sends the request to the origin without the cache.
	Pass bool
	// TTL, when set, is the freshness lifetime counted from the response's
	// arrival, in place of the one its headers give.
	TTL *time.Duration
	// SWR, when set, is the stale-while-revalidate window in place of the
	// one the headers give.
	SWR *time.Duration
	// PCI asks that the object not be written to disk; this cache keeps
	// everything in memory, so it changes nothing.
	PCI bool
	// SurrogateKeys are added to those of the response's Surrogate-Key.
	SurrogateKeys []string
	// CacheSetCookie lets a response with Set-Cookie be stored and shared.
	// cache_override_v2_set has no bit for it: it is for the HTTP cache API.
	CacheSetCookie bool
}

// The cache_override_tag bits of Fastly's hostcall ABI.
const (
	TagPass                 = 1 << 0
	TagTTL                  = 1 << 1
	TagStaleWhileRevalidate = 1 << 2
	TagPCI                  = 1 << 3
)

// OverrideFromABI returns the Override of cache_override_v2_set's arguments:
// tag (TagPass | TagTTL | TagStaleWhileRevalidate | TagPCI), ttl and swr in
// seconds, and sk, the surrogate keys separated by spaces ("" for none;
// cache_override_set has none). Bits it does not know are ignored.
func OverrideFromABI(tag, ttl, swr uint32, sk string) Override {
	o := Override{Pass: tag&TagPass != 0, PCI: tag&TagPCI != 0, SurrogateKeys: strings.Fields(sk)}
	if tag&TagTTL != 0 {
		d := time.Duration(ttl) * time.Second
		o.TTL = &d
	}
	if tag&TagStaleWhileRevalidate != 0 {
		d := time.Duration(swr) * time.Second
		o.SWR = &d
	}
	return o
}

// FetchFunc sends req to the backend and returns its response, as the send
// path does without a cache. For a pass, Do calls it with the caller's
// context and returns its response as it is (X-Cache headers added). For a
// fill it calls it with a context detached from the caller's cancellation
// (other requests may be waiting on the answer; the backend's timeouts
// bound it) and closes the body it returns once read.
type FetchFunc func(ctx context.Context, req *http.Request) (*http.Response, error)

// Stats are the cache's counters since New, and its current size.
type Stats struct {
	// Hits counts requests answered from a stored object (stale ones
	// included).
	Hits uint64
	// StaleHits counts the hits that served a stale object during its
	// stale-while-revalidate window.
	StaleHits uint64
	// StaleIfError counts the hits that served a stale object because
	// revalidating it failed (its stale-if-error window).
	StaleIfError uint64
	// Misses counts requests that made an origin request for the cache
	// (revalidations included).
	Misses uint64
	// Passes counts requests sent to the origin past the cache: Pass,
	// uncacheable methods, hit-for-pass, and requests that could not share
	// a fill.
	Passes uint64
	// Collapsed counts requests that waited for another request's origin
	// request instead of making their own.
	Collapsed uint64
	// Revalidations counts conditional origin requests; NotModified the 304
	// answers among them.
	Revalidations, NotModified uint64
	// Stored counts objects stored; Evictions those the size bound evicted.
	Stored, Evictions uint64
	// Purged counts objects removed or marked stale by purges.
	Purged uint64
	// Objects and Bytes are the entries held now and their weight in bytes.
	Objects int
	Bytes   uint64
	// MaxBytes is the bound on Bytes.
	MaxBytes uint64
}

type counters struct {
	hits, staleHits, staleIfError, misses, passes, collapsed, revalidations, notModified, stored, evictions, purged atomic.Uint64
}

// Cache is the readthrough cache. It is safe for concurrent use.
type Cache struct {
	cfg   Config
	now   func() time.Time
	store *otter.Cache[string, *object]
	ctr   counters
	// purges counts purges and generation changes: a fill that started
	// before one does not store its object.
	purges atomic.Uint64

	// gens maps services to their generations; copied on write (under
	// mu), read without locking.
	gens atomic.Pointer[map[string]uint64]

	// hitForPass stands for the readthrough cache's hit-for-pass marker
	// when an HTTP cache lookup finds one (coreFind): the lookup passes.
	// It is never stored nor changed.
	hitForPass *object

	mu       sync.Mutex
	coreTxns map[string]*coreTxn             // core cache obligations by primary key (core.go)
	fills    map[string]*fill                // by primary key
	tags     map[string]map[*object]struct{} // surrogate key to the objects carrying it
}

// New returns an empty cache.
func New(cfg Config) *Cache {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMemoryMiB << 20
	}
	if cfg.MaxObjectBytes <= 0 {
		cfg.MaxObjectBytes = cfg.MaxBytes / 8
	}
	cfg.MaxObjectBytes = min(cfg.MaxObjectBytes, cfg.MaxBytes, 1<<31)
	c := &Cache{cfg: cfg, now: cfg.Now, fills: map[string]*fill{}, tags: map[string]map[*object]struct{}{},
		hitForPass: &object{core: &coreData{notCacheable: true}}}
	c.gens.Store(&map[string]uint64{})
	if c.now == nil {
		c.now = time.Now
	}
	c.store = otter.Must(&otter.Options[string, *object]{
		MaximumWeight: uint64(cfg.MaxBytes),
		Weigher:       func(k string, o *object) uint32 { return o.weight(k) },
		OnAtomicDeletion: func(e otter.DeletionEvent[string, *object]) {
			if e.Cause == otter.CauseOverflow {
				c.ctr.evictions.Add(1)
			}
		},
		OnDeletion: func(e otter.DeletionEvent[string, *object]) { c.untag(e.Value) },
	})
	return c
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Hits: c.ctr.hits.Load(), StaleHits: c.ctr.staleHits.Load(), StaleIfError: c.ctr.staleIfError.Load(), Misses: c.ctr.misses.Load(),
		Passes: c.ctr.passes.Load(), Collapsed: c.ctr.collapsed.Load(),
		Revalidations: c.ctr.revalidations.Load(), NotModified: c.ctr.notModified.Load(),
		Stored: c.ctr.stored.Load(), Evictions: c.ctr.evictions.Load(), Purged: c.ctr.purged.Load(),
		Objects: c.store.EstimatedSize(), Bytes: c.store.WeightedSize(), MaxBytes: uint64(c.cfg.MaxBytes),
	}
}

// object is one stored entry: a response (variant) or, under a primary
// key, the Vary names of its responses or a hit-for-pass marker.
type object struct {
	service    string
	key        string // its key in the store
	status     int
	header     http.Header
	body       []byte
	arrived    time.Time
	initialAge time.Duration
	freshUntil atomic.Int64 // unix ns
	swr        time.Duration
	sie        time.Duration // stale-if-error window after freshUntil
	revalidate bool
	keys       []string
	hits       atomic.Uint64

	vary     []string  // a primary entry: the Vary names
	hfpUntil time.Time // a primary entry: pass until then

	core *coreData // a core cache object (core.go)
}

func (o *object) weight(key string) uint32 {
	n := len(key) + len(o.body) + 256
	for k, vs := range o.header {
		for _, v := range vs {
			n += len(k) + len(v) + 32
		}
	}
	for _, k := range o.keys {
		n += len(k) + 16
	}
	for _, v := range o.vary {
		n += len(v) + 16
	}
	if o.core != nil {
		n += len(o.core.meta)
		if o.core.b != nil {
			n += o.core.b.size()
		}
	}
	return uint32(min(n, 1<<32-1))
}

// staleIfError reports whether o may answer at now when revalidating it
// failed: it is past its freshness but within its stale-if-error window.
func (o *object) staleIfError(now time.Time) bool {
	if o.sie <= 0 || o.revalidate || o.notCacheable() {
		return false
	}
	return now.Before(time.Unix(0, o.freshUntil.Load()).Add(o.sie))
}

// state says whether o is fresh at now, and if not whether it is within its
// stale-while-revalidate window.
func (o *object) state(now time.Time) (fresh, swr bool) {
	if o.revalidate {
		return false, false
	}
	fu := time.Unix(0, o.freshUntil.Load())
	if now.Before(fu) {
		return true, false
	}
	return false, now.Before(fu.Add(o.swr))
}

func (o *object) age(now time.Time) time.Duration {
	return o.initialAge + max(now.Sub(o.arrived), 0)
}

// fill is one origin request others may wait on.
type fill struct {
	ready chan struct{} // closed once the fields below are set
	obj   *object       // the object being filled; nil when there is none to share
	st    *stream       // its body; nil when obj is complete
	vary  []string
	err   error
}

func newFill() *fill { return &fill{ready: make(chan struct{})} }

func primaryKey(k Key, gen uint64) string {
	return k.Service + "\x00" + strconv.FormatUint(gen, 10) + "\x00" + k.Backend + "\x00" + k.URL
}

func variantKey(pk string, vary []string, h http.Header) string {
	if len(vary) == 0 {
		return "O" + pk
	}
	var b strings.Builder
	b.WriteString("O")
	b.WriteString(pk)
	for _, name := range vary {
		b.WriteString("\x00")
		b.WriteString(name)
		b.WriteString(":")
		b.WriteString(strings.Join(h.Values(name), "\x01"))
	}
	return b.String()
}

// Do answers req, the request a guest sends to backend key.Backend: from a
// stored object, by joining another request's origin request for the same
// key, or by calling fetch (see the package comment for the rules). The
// returned response is the caller's own (headers cloned); its body must be
// closed. On a miss it streams the origin's body as it arrives; a read
// error from it is the origin's failure. Do returns fetch's error when the
// origin request it relies on fails before the response headers, or
// ctx.Err() when ctx ends while it waits for another request's.
func (c *Cache) Do(ctx context.Context, req *http.Request, key Key, ov Override, fetch FetchFunc) (*http.Response, error) {
	if ov.Pass || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		return c.pass(ctx, req, fetch)
	}
	for attempt := 0; ; attempt++ {
		now := c.now()
		gen := c.gen(key.Service)
		pk := primaryKey(key, gen)
		var vary []string
		if p, ok := c.store.GetIfPresent("V" + pk); ok {
			if now.Before(p.hfpUntil) {
				return c.pass(ctx, req, fetch)
			}
			vary = p.vary
		}
		vk := variantKey(pk, vary, req.Header)
		obj, _ := c.store.GetIfPresent(vk)
		if obj != nil {
			fresh, swr := obj.state(now)
			if obj.notCacheable() {
				// The HTTP cache API recorded the key not cacheable.
				if fresh {
					return c.pass(ctx, req, fetch)
				}
				obj = nil
			} else if fresh || swr {
				if swr {
					c.ctr.staleHits.Add(1)
					c.refresh(ctx, req, key, pk, gen, obj, ov, fetch)
				}
				return c.hit(req, obj, now), nil
			}
		}
		if req.Method == http.MethodHead {
			return c.pass(ctx, req, fetch)
		}
		c.mu.Lock()
		f := c.fills[pk]
		if f == nil || attempt > 0 {
			nf := newFill()
			registered := f == nil
			if registered {
				c.fills[pk] = nf
			}
			c.mu.Unlock()
			return c.lead(ctx, req, key, pk, gen, obj, ov, fetch, nf, registered, false)
		}
		c.mu.Unlock()
		select {
		case <-f.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if f.err == nil && f.obj != nil && variantKey(pk, f.vary, req.Header) == f.obj.key {
			if f.st == nil {
				c.ctr.collapsed.Add(1)
				return c.respond(req, f.obj, io.NopCloser(bytes.NewReader(f.obj.body)), int64(len(f.obj.body)), "MISS", now), nil
			}
			if r := f.st.reader(ctx); r != nil {
				c.ctr.collapsed.Add(1)
				return c.respond(req, f.obj, r, contentLength(f.obj.header), "MISS", now), nil
			}
		}
		// The fill failed, is not shareable or is another variant: look
		// again, and this time fetch.
	}
}

// Stale-while-revalidate: start one background refresh of obj unless a
// fill for its key runs already.
func (c *Cache) refresh(ctx context.Context, req *http.Request, key Key, pk string, gen uint64, obj *object, ov Override, fetch FetchFunc) {
	c.mu.Lock()
	if c.fills[pk] != nil {
		c.mu.Unlock()
		return
	}
	f := newFill()
	c.fills[pk] = f
	c.mu.Unlock()
	breq := req.Clone(context.WithoutCancel(ctx))
	breq.Body = http.NoBody
	go func() {
		if _, err := c.lead(breq.Context(), breq, key, pk, gen, obj, ov, fetch, f, true, true); err != nil {
			return // the stale object stays; a later request retries
		}
	}()
}

func (c *Cache) pass(ctx context.Context, req *http.Request, fetch FetchFunc) (*http.Response, error) {
	c.ctr.passes.Add(1)
	resp, err := fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	mark(resp.Header, "MISS", 0)
	return resp, nil
}

// respondHeader is stored header h cloned with Age, X-Cache and
// X-Cache-Hits set (as h.Clone() then Set of each): one map and one
// array of values.
func respondHeader(h http.Header, age, state, hits string) http.Header {
	n := 3
	for _, vs := range h {
		n += len(vs)
	}
	vals := make([]string, 0, n)
	out := make(http.Header, len(h)+3)
	for k, vs := range h {
		if vs == nil {
			out[k] = nil
			continue
		}
		vals = append(vals, vs...)
		out[k] = vals[len(vals)-len(vs) : len(vals) : len(vals)]
	}
	for _, f := range [...]struct{ k, v string }{{"Age", age}, {"X-Cache", state}, {"X-Cache-Hits", hits}} {
		vals = append(vals, f.v)
		out[f.k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return out
}

// mark sets X-Cache and X-Cache-Hits in h, and Age 0 when h has none,
// the three values in one array.
func mark(h http.Header, state string, hits uint64) {
	v := []string{state, strconv.FormatUint(hits, 10), "0"}
	h["X-Cache"], h["X-Cache-Hits"] = v[0:1:1], v[1:2:2]
	if h.Get("Age") == "" {
		h["Age"] = v[2:3:3]
	}
}

func contentLength(h http.Header) int64 {
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		return n
	}
	return -1
}

func (c *Cache) hit(req *http.Request, obj *object, now time.Time) *http.Response {
	c.ctr.hits.Add(1)
	obj.hits.Add(1)
	if obj.core != nil {
		// Stored by the HTTP cache API: its body may still be arriving.
		e := &CoreEntry{c: c, obj: obj, d: obj.core}
		n, ok := e.Length()
		if !ok {
			n = -1
		}
		return c.respond(req, obj, e.Body(req.Context(), -1, -1), n, "HIT", now)
	}
	return c.respond(req, obj, io.NopCloser(bytes.NewReader(obj.body)), int64(len(obj.body)), "HIT", now)
}

// completeBody returns o's body when it is complete: a readthrough
// object's, or an HTTP cache API object's once written.
func (o *object) completeBody() ([]byte, bool) {
	if o.core == nil {
		return o.body, true
	}
	b := o.core.b
	if b == nil {
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.body, b.st == nil && b.err == nil
}

// respond builds the caller's response from obj with body.
func (c *Cache) respond(req *http.Request, obj *object, body io.ReadCloser, length int64, state string, now time.Time) *http.Response {
	var hits uint64
	if state == "HIT" {
		hits = obj.hits.Load()
	}
	h := respondHeader(obj.header, strconv.FormatInt(int64(obj.age(now)/time.Second), 10), state, strconv.FormatUint(hits, 10))
	if req.Method == http.MethodHead {
		body.Close()
		body = http.NoBody
	}
	status := "200 OK"
	if obj.status != http.StatusOK {
		status = strconv.Itoa(obj.status) + " " + http.StatusText(obj.status)
	}
	return &http.Response{
		Status:     status,
		StatusCode: obj.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: body, ContentLength: length, Request: req,
	}
}

// lead makes the origin request of fill f (registered: f is c.fills[pk])
// for req, revalidating base when it is not nil. background: nobody reads
// the answer.
func (c *Cache) lead(ctx context.Context, req *http.Request, key Key, pk string, gen uint64, base *object, ov Override, fetch FetchFunc, f *fill, registered, background bool) (*http.Response, error) {
	epoch := c.purges.Load()
	var baseBody []byte
	if base != nil {
		var ok bool
		if baseBody, ok = base.completeBody(); !ok {
			base = nil // an HTTP cache API object still being written
		}
	}
	oreq := req.Clone(context.WithoutCancel(ctx))
	for _, h := range conditionalHeaders {
		oreq.Header.Del(h)
	}
	validating := false
	if base != nil {
		if et := base.header.Get("ETag"); et != "" {
			oreq.Header.Set("If-None-Match", et)
			validating = true
		}
		if lm := base.header.Get("Last-Modified"); lm != "" {
			oreq.Header.Set("If-Modified-Since", lm)
			validating = true
		}
	}
	c.ctr.misses.Add(1)
	if validating {
		c.ctr.revalidations.Add(1)
	}
	resp, err := fetch(oreq.Context(), oreq)
	now := c.now()
	done := func() {
		close(f.ready)
		if registered && c.fills[pk] == f {
			delete(c.fills, pk)
		}
	}
	if err != nil {
		c.mu.Lock()
		f.err = err
		done()
		c.mu.Unlock()
		if base != nil && !background && base.staleIfError(now) {
			// Stale-if-error: the stored object answers for the origin
			// that did not.
			c.ctr.staleIfError.Add(1)
			return c.hit(req, base, now), nil
		}
		return nil, err
	}
	if resp.StatusCode == http.StatusNotModified && validating {
		c.ctr.notModified.Add(1)
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		merged := base.header.Clone()
		for k, vs := range resp.Header {
			if !hopHeaders304[k] {
				merged[k] = vs
			}
		}
		mresp := &http.Response{StatusCode: base.status, Header: merged}
		p := evaluate(oreq, mresp, ov, now)
		nobj := c.newObject(key, variantKey(pk, p.vary, req.Header), base.status, merged, p, now)
		nobj.body = baseBody
		c.mu.Lock()
		if p.store {
			c.insertLocked(pk, nobj, p.vary, gen, epoch)
		} else {
			c.store.Invalidate(base.key)
		}
		f.obj, f.vary = nobj, p.vary
		done()
		c.mu.Unlock()
		return c.respond(req, nobj, io.NopCloser(bytes.NewReader(nobj.body)), int64(len(nobj.body)), "MISS", now), nil
	}
	p := evaluate(oreq, resp, ov, now)
	if p.store && resp.ContentLength > c.cfg.MaxObjectBytes {
		p.store, p.reason, p.hfp = false, "size", hitForPassShort
	}
	if !p.store {
		c.mu.Lock()
		if c.gen(key.Service) == gen {
			c.store.Set("V"+pk, &object{service: key.Service, key: "V" + pk, hfpUntil: now.Add(p.hfp)})
		}
		done()
		c.mu.Unlock()
		if background {
			resp.Body.Close()
			return nil, nil
		}
		mark(resp.Header, "MISS", 0)
		return resp, nil
	}
	h := resp.Header.Clone()
	h.Del("Surrogate-Control")
	obj := c.newObject(key, variantKey(pk, p.vary, req.Header), resp.StatusCode, h, p, now)
	st := newStream()
	if resp.ContentLength >= 0 {
		st.data = make([]byte, 0, resp.ContentLength)
	}
	var r *streamReader
	if !background {
		r = st.reader(ctx)
	}
	c.mu.Lock()
	f.obj, f.st, f.vary = obj, st, p.vary
	close(f.ready)
	c.mu.Unlock()
	go c.copyBody(resp, st, obj, pk, p.vary, gen, epoch, f, registered)
	if background {
		return nil, nil
	}
	return c.respond(req, obj, r, resp.ContentLength, "MISS", now), nil
}

func (c *Cache) newObject(key Key, vk string, status int, h http.Header, p policy, now time.Time) *object {
	o := &object{service: key.Service, key: vk, status: status, header: h, arrived: now,
		initialAge: p.initialAge, swr: p.swr, sie: p.sie, revalidate: p.revalidate, keys: p.keys}
	o.freshUntil.Store(p.freshUntil.UnixNano())
	return o
}

// errNoReader ends a pass-through fill nobody reads any more.
var errNoReader = errors.New("cache: no reader left")

// copyBody reads the origin's body into st, then stores obj when the body
// is complete and fits.
func (c *Cache) copyBody(resp *http.Response, st *stream, obj *object, pk string, vary []string, gen, epoch uint64, f *fill, registered bool) {
	defer resp.Body.Close()
	size := int64(32 << 10)
	if resp.ContentLength >= 0 && resp.ContentLength < size {
		size = resp.ContentLength + 1 // room to see EOF, or a longer body, in one read
	}
	buf := make([]byte, size)
	var n int64
	var ferr error
	for {
		k, err := resp.Body.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > c.cfg.MaxObjectBytes {
				st.stopStoring()
			}
			if !st.write(buf[:k]) {
				ferr = errNoReader
				break
			}
		}
		if err == io.EOF {
			if resp.ContentLength >= 0 && n != resp.ContentLength {
				ferr = fmt.Errorf("cache: origin sent %d bytes of a %d-byte body: %w", n, resp.ContentLength, io.ErrUnexpectedEOF)
			}
			break
		}
		if err != nil {
			ferr = fmt.Errorf("cache: reading the origin's body: %w", err)
			break
		}
	}
	// The fill leaves the index (and its object enters the store) before
	// the readers see the end: a request that follows one that read it
	// finds the object, or fetches again.
	body, ok := st.stored()
	c.mu.Lock()
	if ok && ferr == nil {
		if cap(body) > len(body)+len(body)/8 {
			body = bytes.Clone(body)
		}
		obj.body = body
		c.insertLocked(pk, obj, vary, gen, epoch)
	}
	if registered && c.fills[pk] == f {
		delete(c.fills, pk)
	}
	c.mu.Unlock()
	st.finish(ferr)
}

// insertLocked stores obj (and its key's Vary names) unless the service's
// generation changed or a purge ran since the fill started; c.mu held.
func (c *Cache) insertLocked(pk string, obj *object, vary []string, gen, epoch uint64) {
	if c.gen(obj.service) != gen || c.purges.Load() != epoch {
		return
	}
	if len(vary) > 0 {
		c.store.Set("V"+pk, &object{service: obj.service, key: "V" + pk, vary: vary})
	} else if p, ok := c.store.GetIfPresent("V" + pk); ok && (p.vary != nil || !p.hfpUntil.IsZero()) {
		c.store.Invalidate("V" + pk)
	}
	c.store.Set(obj.key, obj)
	c.ctr.stored.Add(1)
	for _, k := range obj.keys {
		set := c.tags[k]
		if set == nil {
			set = map[*object]struct{}{}
			c.tags[k] = set
		}
		set[obj] = struct{}{}
	}
}

// untag removes a deleted object from the surrogate key index.
func (c *Cache) untag(o *object) {
	if len(o.keys) == 0 {
		return
	}
	if cur, ok := c.store.GetIfPresent(o.key); ok && cur == o {
		return // set again in its own place (a core object's weight updated)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range o.keys {
		if set := c.tags[k]; set != nil {
			delete(set, o)
			if len(set) == 0 {
				delete(c.tags, k)
			}
		}
	}
}

// Purge removes (soft: marks stale, so that it revalidates, or serves
// stale within its stale-while-revalidate window) every object of service
// that carries surrogate key sk; service "" purges the key in every
// service. It returns the number of objects purged. The next request sees
// it: fills that started before a purge do not store their objects.
func (c *Cache) Purge(service, sk string, soft bool) int {
	c.mu.Lock()
	c.purges.Add(1)
	var objs []*object
	for o := range c.tags[sk] {
		if service == "" || o.service == service {
			objs = append(objs, o)
		}
	}
	c.mu.Unlock()
	now := c.now().UnixNano()
	n := 0
	for _, o := range objs {
		if soft {
			for {
				fu := o.freshUntil.Load()
				if fu <= now || o.freshUntil.CompareAndSwap(fu, now) {
					break
				}
			}
			n++
			continue
		}
		if cur, ok := c.store.GetIfPresent(o.key); ok && cur == o {
			if _, ok := c.store.Invalidate(o.key); ok {
				n++
			}
		}
	}
	c.ctr.purged.Add(uint64(n))
	return n
}

// PurgeAll removes every object of service, or of every service when
// service is "". It returns the number of entries removed.
func (c *Cache) PurgeAll(service string) int {
	c.purges.Add(1)
	n := 0
	for k, o := range c.store.All() {
		if service == "" || o.service == service {
			if _, ok := c.store.Invalidate(k); ok && (o.status != 0 || o.core != nil) {
				n++
			}
		}
	}
	c.ctr.purged.Add(uint64(n))
	return n
}

// SetGeneration sets service's cache generation (0 until set). A change
// removes the service's objects, and fills that started under the old
// generation do not store theirs. It returns the number of objects removed.
func (c *Cache) SetGeneration(service string, gen uint64) int {
	c.mu.Lock()
	if c.gen(service) == gen {
		c.mu.Unlock()
		return 0
	}
	gens := maps.Clone(*c.gens.Load())
	gens[service] = gen
	c.gens.Store(&gens)
	c.mu.Unlock()
	return c.PurgeAll(service)
}

// gen returns service's generation.
func (c *Cache) gen(service string) uint64 { return (*c.gens.Load())[service] }
