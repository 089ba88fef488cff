package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The core cache (fastly_cache; README.md, "Caching"): objects a guest
// stores under its own keys, with its own freshness, in the same bounded
// store as the readthrough cache's, so that cache_memory_mib, the service's
// cache generation and surrogate-key purges (Purge, PurgeAll) cover them
// too.
//
// An object has a max age and a stale-while-revalidate window, both
// counted from its insertion minus its initial age. It is usable while
// fresh or within that window, and gone after. A transactional lookup of a
// key that has no usable object (or only a stale one) gives one lookup the
// obligation to insert (or update) it; concurrent transactional lookups of
// the key wait for that one and then see what it inserted, while it is
// still being written. Objects are per the values of the request headers
// their Vary rule names.

// MaxCoreKeyBytes is the longest core cache key, in bytes (4 KiB, Fastly's
// limit; abi/README.md, "fastly_cache").
const MaxCoreKeyBytes = 4096

// ErrCoreBodyAbandoned ends the body of a core cache object whose writer
// went away before finishing it: readers see the object incomplete, and it
// is not kept.
var ErrCoreBodyAbandoned = errors.New("cache: the object's writer abandoned its body")

// CoreWrite is the metadata of a core cache insert or update, the fields
// of fastly_cache's cache_write_options.
type CoreWrite struct {
	// MaxAge is how long the object is fresh, counted from its insertion
	// minus InitialAge.
	MaxAge time.Duration
	// InitialAge is the object's age when inserted.
	InitialAge time.Duration
	// SWR is how long after MaxAge the object is still usable, stale.
	SWR time.Duration
	// SIE is how long after MaxAge the object may still answer a
	// readthrough request whose revalidation failed (stale-if-error).
	SIE time.Duration
	// Vary names request headers whose values, as RequestHeaders gives
	// them, select this variant of the key.
	Vary           []string
	RequestHeaders http.Header
	// SurrogateKeys are the object's surrogate keys, for Purge.
	SurrogateKeys []string
	// Length is the body's length in bytes, when known; -1 otherwise.
	Length int64
	// UserMetadata is returned as it is by lookups.
	UserMetadata []byte
	// Sensitive marks the object as sensitive data (kept in memory only,
	// as every object is).
	Sensitive bool
	// Status and Header are the stored HTTP response's status and header
	// (HTTP cache objects; zero and nil for core cache objects).
	Status int
	Header http.Header
	// NotCacheable records that the key's responses are not cacheable (a
	// hit-for-pass for MaxAge): lookups that find the record pass
	// (fastly_http_cache.transaction_record_not_cacheable).
	NotCacheable bool
}

// CoreState is a core cache lookup's state, the cache_lookup_state bits.
type CoreState uint32

// The cache_lookup_state bits (abi/README.md, "fastly_cache").
const (
	CoreFound CoreState = 1 << iota
	CoreUsable
	CoreStale
	CoreMustInsertOrUpdate
)

// coreData is what a core cache object has beyond an object: its metadata
// and body, which may still be arriving.
type coreData struct {
	maxAge    time.Duration
	length    int64
	meta      []byte
	sensitive bool
	// notCacheable: a hit-for-pass record, with no body.
	notCacheable bool
	vary         []string  // the Vary rule it was written with
	b            *coreBody // shared by the updates of one insert
}

// coreBody is an inserted object's body.
type coreBody struct {
	mu   sync.Mutex
	st   *stream // while the body is written; nil once complete
	err  error   // the body's failure, once st ended with one
	body []byte  // complete body
}

// size returns the bytes the body holds once complete.
func (b *coreBody) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.body)
}

// CoreEntry is one object a core cache lookup found, as of the lookup.
type CoreEntry struct {
	c    *Cache
	obj  *object
	d    *coreData // obj.core, or a view of a readthrough object (readthroughView)
	hits uint64
	age  time.Duration
}

// UserMetadata returns the object's user metadata.
func (e *CoreEntry) UserMetadata() []byte { return e.d.meta }

// MaxAge, SWR and Age are the object's max age, stale-while-revalidate
// window and age at the lookup.
func (e *CoreEntry) MaxAge() time.Duration { return e.d.maxAge }

// SWR returns the object's stale-while-revalidate window.
func (e *CoreEntry) SWR() time.Duration { return e.obj.swr }

// SIE returns the object's stale-if-error window.
func (e *CoreEntry) SIE() time.Duration { return e.obj.sie }

// Age returns the object's age at the lookup.
func (e *CoreEntry) Age() time.Duration { return e.age }

// Hits returns the object's hits, this lookup's included.
func (e *CoreEntry) Hits() uint64 { return e.hits }

// Sensitive reports whether the object was written as sensitive data.
func (e *CoreEntry) Sensitive() bool { return e.d.sensitive }

// SurrogateKeys returns the object's surrogate keys.
func (e *CoreEntry) SurrogateKeys() []string { return e.obj.keys }

// Status returns the stored HTTP response's status (0 for a core cache
// object).
func (e *CoreEntry) Status() int { return e.obj.status }

// Header returns a copy of the stored HTTP response's header.
func (e *CoreEntry) Header() http.Header { return e.obj.header.Clone() }

// Vary returns the header names of the object's Vary rule.
func (e *CoreEntry) Vary() []string { return e.d.vary }

// Length returns the body's length in bytes: the insert's Length when it
// gave one, else the complete body's; ok is false while a body of unknown
// length is still being written.
func (e *CoreEntry) Length() (n int64, ok bool) {
	d := e.d
	if d.length >= 0 {
		return d.length, true
	}
	b := d.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st == nil && b.err == nil {
		return int64(len(b.body)), true
	}
	return 0, false
}

// Body returns a reader of a range of the body, streaming while the body
// is being written; ctx bounds the waits. from and to are
// fastly_cache.get_body's offsets, negative when not given: from alone
// reads from byte from to the end; from and to read bytes [from, to],
// to inclusive; to alone reads the last to bytes (waiting for the body's
// end when its length is not known). When the body's length n is known
// and the range is invalid for it (from >= n, to >= n with from, to < from,
// or to alone outside [1, n]) the whole body is returned, as Fastly's
// reference host does (abi/README.md, "fastly_cache"). A body that fails
// while read ends its reader with the failure.
func (e *CoreEntry) Body(ctx context.Context, from, to int64) io.ReadCloser {
	d := e.d
	if n, ok := e.Length(); ok {
		switch {
		case from < 0 && to < 0:
		case from < 0 && (to < 1 || to > n),
			from >= 0 && from >= n,
			from >= 0 && to >= 0 && (to < from || to >= n):
			from, to = -1, -1
		case from < 0:
			from, to = n-to, -1
		}
	}
	d.b.mu.Lock()
	st, body, err := d.b.st, d.b.body, d.b.err
	d.b.mu.Unlock()
	if err != nil {
		return io.NopCloser(&errReader{err})
	}
	if st == nil {
		return io.NopCloser(bytes.NewReader(sliceRange(body, from, to)))
	}
	r := st.reader(ctx)
	if r == nil {
		return io.NopCloser(&errReader{ErrCoreBodyAbandoned})
	}
	if from < 0 && to >= 0 {
		// The last to bytes of a body of unknown length: read it all.
		return &suffixReader{r: r, n: to}
	}
	return &rangeReader{r: r, skip: max(from, 0), left: to - max(from, 0) + 1, bounded: to >= 0}
}

// sliceRange returns body's bytes per Body's from and to (normalised: to
// alone is a suffix).
func sliceRange(body []byte, from, to int64) []byte {
	n := int64(len(body))
	switch {
	case from < 0 && to >= 0:
		return body[n-min(to, n):]
	case from < 0:
		return body
	}
	from = min(from, n)
	end := n
	if to >= 0 && to+1 < end {
		end = max(to+1, from)
	}
	return body[from:end]
}

// suffixReader reads all of r and then gives its last n bytes.
type suffixReader struct {
	r    io.ReadCloser
	n    int64
	rest *bytes.Reader
}

func (s *suffixReader) Read(p []byte) (int, error) {
	if s.rest == nil {
		all, err := io.ReadAll(s.r)
		if err != nil {
			return 0, err
		}
		s.rest = bytes.NewReader(sliceRange(all, -1, s.n))
	}
	return s.rest.Read(p)
}

func (s *suffixReader) Close() error { return s.r.Close() }

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

// rangeReader skips the first skip bytes of r and stops after left
// (when bounded).
type rangeReader struct {
	r       io.ReadCloser
	skip    int64
	left    int64
	bounded bool
}

func (r *rangeReader) Read(p []byte) (int, error) {
	for r.skip > 0 {
		buf := make([]byte, min(r.skip, 32<<10))
		n, err := r.r.Read(buf)
		r.skip -= int64(n)
		if err != nil {
			return 0, err
		}
	}
	if r.bounded {
		if r.left <= 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > r.left {
			p = p[:r.left]
		}
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	return n, err
}

func (r *rangeReader) Close() error { return r.r.Close() }

// CoreWriter writes the body of an inserted core cache object: Write
// appends (readers see the bytes at once), Close(nil) completes it (the
// object keeps it), Close(err) abandons it (readers see err; the object
// is removed).
type CoreWriter struct {
	c      *Cache
	obj    *object
	st     *stream
	n      int64
	closed bool
}

// Write appends p to the body. It never fails: a body past the cache's
// object size cap goes on streaming to its readers and is not kept.
func (w *CoreWriter) Write(p []byte) (int, error) {
	if w.closed {
		return 0, errors.New("cache: write on a closed core cache body")
	}
	w.n += int64(len(p))
	if w.n > w.c.cfg.MaxObjectBytes {
		w.st.stopStoring()
	}
	w.st.write(p)
	return len(p), nil
}

// Close ends the body: err nil completes it, else it is abandoned. A body
// shorter or longer than the insert's Length is abandoned too.
func (w *CoreWriter) Close(err error) error {
	if w.closed {
		return nil
	}
	w.closed = true
	d := w.obj.core
	if err == nil && d.length >= 0 && w.n != d.length {
		err = errors.New("cache: core cache body of " + strconv.FormatInt(w.n, 10) + " bytes, not the " + strconv.FormatInt(d.length, 10) + " its insert gave")
	}
	body, kept := w.st.stored()
	c := w.c
	b := d.b
	b.mu.Lock()
	if err == nil && kept {
		b.body, b.st = bytes.Clone(body), nil
	} else {
		if err == nil {
			err = errors.New("cache: core cache body over the object size cap")
		}
		b.err = err
	}
	b.mu.Unlock()
	w.st.finish(err)
	if cur, ok := c.store.GetIfPresent(w.obj.key); ok && cur == w.obj {
		if err != nil {
			c.store.Invalidate(w.obj.key)
		} else {
			c.store.Set(w.obj.key, w.obj) // its weight now counts the body
		}
	}
	return err
}

// CoreLookup is the outcome of a core cache lookup: the object found (if
// any), and for a transactional lookup whether it holds the obligation to
// insert or update. A transactional lookup that waits for another's
// obligation resolves later: Wait blocks until then, Ready reports it.
type CoreLookup struct {
	c     *Cache
	key   string // primary key
	reqH  http.Header
	ready chan struct{}

	// Set once ready is closed.
	entry      *CoreEntry
	stale      bool
	pass       bool // found a not-cacheable record
	obligation *coreTxn
	err        error
	// replaceWait: a replace (ReplaceWait) waiting for another's
	// obligation; it resolves to what is then stored, never with one.
	replaceWait bool
}

// coreTxn is a key's pending obligation: the lookup holding it and the
// lookups waiting for it.
type coreTxn struct {
	key     string
	waiters []*CoreLookup
}

// Ready returns a channel closed once the lookup has resolved.
func (l *CoreLookup) Ready() <-chan struct{} { return l.ready }

// Wait blocks until the lookup resolves, or ctx ends (ctx.Err()).
func (l *CoreLookup) Wait(ctx context.Context) error {
	select {
	case <-l.ready:
		return l.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// State returns the lookup's state; call after Wait.
func (l *CoreLookup) State() CoreState {
	var s CoreState
	if l.entry != nil {
		// Lookups return only objects fresh or within their
		// stale-while-revalidate window: usable.
		s |= CoreFound | CoreUsable
		if l.stale {
			s |= CoreStale
		}
	}
	if l.obligation != nil {
		s |= CoreMustInsertOrUpdate
	}
	return s
}

// Entry returns the object found, or nil; call after Wait.
func (l *CoreLookup) Entry() *CoreEntry { return l.entry }

// HasObligation reports whether the lookup must insert or update.
func (l *CoreLookup) HasObligation() bool { return l.obligation != nil }

// Pass reports whether the lookup found a record that the key's responses
// are not cacheable (CoreWrite.NotCacheable): it has neither an object nor
// an obligation; call after Wait.
func (l *CoreLookup) Pass() bool { return l.pass }

// corePrimaryKey is the primary key of a core cache key. It starts with a
// NUL byte, which no readthrough primary key does (those start with the
// service id and its generation, digits), so the two kinds never meet in
// the store.
func corePrimaryKey(service string, gen uint64, key []byte) string {
	return "\x00core\x00" + service + "\x00" + strconv.FormatUint(gen, 10) + "\x00" + string(key)
}

// coreFind returns the usable object of primary key pk for request
// headers h, and whether it is stale. Under an HTTP cache key (which is a
// readthrough primary key) it finds the readthrough cache's objects too,
// and reports its hit-for-pass marker as a not-cacheable record.
func (c *Cache) coreFind(pk string, h http.Header, now time.Time) (*object, bool) {
	var vary []string
	if p, ok := c.store.GetIfPresent("V" + pk); ok {
		if now.Before(p.hfpUntil) {
			return c.hitForPass, false
		}
		vary = p.vary
	}
	obj, ok := c.store.GetIfPresent(variantKey(pk, vary, h))
	if !ok || obj.core == nil && obj.status == 0 {
		return nil, false
	}
	fresh, swr := obj.state(now)
	if !fresh && !swr {
		return nil, false
	}
	return obj, !fresh
}

// notCacheable reports whether o is a not-cacheable record.
func (o *object) notCacheable() bool { return o.core != nil && o.core.notCacheable }

// readthroughView is the core data of a readthrough object (stored by
// Cache.Do), for HTTP cache lookups that find it.
func readthroughView(obj *object) *coreData {
	ma := time.Duration(obj.freshUntil.Load()-obj.arrived.UnixNano()) + obj.initialAge
	return &coreData{maxAge: max(ma, 0), length: int64(len(obj.body)), vary: varyNamesOf(obj.header), b: &coreBody{body: obj.body}}
}

// varyNamesOf returns the canonical header names of h's Vary.
func varyNamesOf(h http.Header) []string {
	var names []string
	for _, v := range h.Values("Vary") {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, http.CanonicalHeaderKey(n))
			}
		}
	}
	return names
}

// replacedEntry is obj as a replace finds it: a replace is not a hit.
func (c *Cache) replacedEntry(obj *object, now time.Time) *CoreEntry {
	e := c.coreEntry(obj, now)
	e.hits = obj.hits.Add(^uint64(0))
	return e
}

func (c *Cache) coreEntry(obj *object, now time.Time) *CoreEntry {
	d := obj.core
	if d == nil {
		d = readthroughView(obj)
	}
	return &CoreEntry{c: c, obj: obj, d: d, hits: obj.hits.Add(1), age: obj.age(now)}
}

// HTTPKey returns the HTTP cache key of a request to host (the Host
// header, else the URL's host) for requestURI (path and query): the
// SHA-256 of the lower-cased host, a NUL and requestURI, 32 bytes.
// Fastly's default cache key is the URL and the Host (README.md,
// "Caching"); fastly_http_cache.get_suggested_cache_key answers it, and
// both the readthrough cache and the HTTP cache API key their objects by
// it (abi/README.md, "fastly_http_cache").
func HTTPKey(host, requestURI string) []byte {
	// The hashed bytes are built in one buffer, on the stack when short.
	// (strings.ToLower allocates only when host has upper case).
	var stack [256]byte
	b := append(stack[:0], strings.ToLower(host)...)
	b = append(b, 0)
	b = append(b, requestURI...)
	sum := sha256.Sum256(b)
	return sum[:]
}

// HTTPCacheKey is the Key of an HTTP cache API lookup in service: backend
// is the cache name of the backend the lookup names (its
// backend_name option; "" for none) and key the HTTP cache key (HTTPKey,
// or the guest's override key). The readthrough cache's Key of a send to
// that backend with that key is the same, so the two find each other's
// objects.
func HTTPCacheKey(service, backend string, key []byte) Key {
	return Key{Service: service, Backend: backend, URL: string(key)}
}

// CoreLookup looks key up in service's core cache, without joining a
// transaction: the lookup is resolved when it returns. h is the request
// headers the object's Vary rule is matched against (nil: none).
func (c *Cache) CoreLookup(service string, key []byte, h http.Header) *CoreLookup {
	return c.lookup(corePrimaryKey(service, c.gen(service), key), h)
}

// HTTPLookup is CoreLookup in the HTTP cache (fastly_http_cache) under
// key (HTTPCacheKey), which is the readthrough cache's key space: it finds
// objects the readthrough cache stored for a send with that Key, and a
// lookup that finds a not-cacheable record (or the readthrough cache's
// hit-for-pass) passes (CoreLookup.Pass).
func (c *Cache) HTTPLookup(key Key, h http.Header) *CoreLookup {
	return c.lookup(primaryKey(key, c.gen(key.Service)), h)
}

func (c *Cache) lookup(pk string, h http.Header) *CoreLookup {
	now := c.now()
	l := &CoreLookup{c: c, key: pk, reqH: h, ready: make(chan struct{})}
	if obj, _ := c.coreFind(pk, h, now); obj != nil && obj.notCacheable() {
		l.pass = true
		c.ctr.passes.Add(1)
	} else if obj, stale := c.coreFind(pk, h, now); obj != nil {
		l.entry, l.stale = c.coreEntry(obj, now), stale
		c.ctr.hits.Add(1)
	} else {
		c.ctr.misses.Add(1)
	}
	close(l.ready)
	return l
}

// CoreTransactionLookup looks key up in service's core cache and joins its
// transaction: without a usable object, or with a stale one, the first
// such lookup gets the obligation to insert (or update) and the others
// wait for it (their Ready is not yet closed) and then see the object it
// inserted, or inherit the obligation if it gives up. The holder must
// end the obligation with CoreInsert, CoreUpdate or CoreCancel.
func (c *Cache) CoreTransactionLookup(service string, key []byte, h http.Header) *CoreLookup {
	return c.transactionLookup(corePrimaryKey(service, c.gen(service), key), h)
}

// HTTPTransactionLookup is CoreTransactionLookup in the HTTP cache under
// key (see HTTPLookup); its obligations are apart from the readthrough
// cache's fills, so the two do not collapse onto each other;
// a lookup that finds a not-cacheable record passes (CoreLookup.Pass):
// no obligation, no wait.
func (c *Cache) HTTPTransactionLookup(key Key, h http.Header) *CoreLookup {
	return c.transactionLookup(primaryKey(key, c.gen(key.Service)), h)
}

func (c *Cache) transactionLookup(pk string, h http.Header) *CoreLookup {
	now := c.now()
	l := &CoreLookup{c: c, key: pk, reqH: h, ready: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	obj, stale := c.coreFind(pk, h, now)
	if obj != nil && obj.notCacheable() {
		l.pass = true
		c.ctr.passes.Add(1)
		close(l.ready)
		return l
	}
	if obj != nil && !stale {
		l.entry = c.coreEntry(obj, now)
		c.ctr.hits.Add(1)
		close(l.ready)
		return l
	}
	if obj != nil {
		l.entry, l.stale = c.coreEntry(obj, now), true
		c.ctr.hits.Add(1)
		c.ctr.staleHits.Add(1)
	}
	if c.coreTxns == nil {
		c.coreTxns = map[string]*coreTxn{}
	}
	t := c.coreTxns[pk]
	switch {
	case t == nil:
		t = &coreTxn{key: pk}
		c.coreTxns[pk] = t
		l.obligation = t
		if obj == nil {
			c.ctr.misses.Add(1)
		}
		close(l.ready)
	case obj != nil:
		// Stale and someone else revalidates: serve the stale object.
		close(l.ready)
	default:
		c.ctr.collapsed.Add(1)
		t.waiters = append(t.waiters, l)
	}
	return l
}

// endTxnLocked ends t's obligation held by l: the waiters resolve against
// the store now (inserted: they find the object; cancelled: the first
// gets the obligation, or the first that matches no object). c.mu held.
func (c *Cache) endTxnLocked(l *CoreLookup) {
	t := l.obligation
	l.obligation = nil
	if t == nil || c.coreTxns[t.key] != t {
		return
	}
	delete(c.coreTxns, t.key)
	now := c.now()
	waiters := t.waiters
	t.waiters = nil
	var next *coreTxn
	for _, w := range waiters {
		if w.replaceWait {
			if obj, stale := c.coreFind(w.key, w.reqH, now); obj != nil && !obj.notCacheable() {
				w.entry, w.stale = c.replacedEntry(obj, now), stale
			}
			close(w.ready)
			continue
		}
		if obj, _ := c.coreFind(w.key, w.reqH, now); obj != nil && obj.notCacheable() {
			w.pass = true
			c.ctr.passes.Add(1)
			close(w.ready)
			continue
		}
		if obj, stale := c.coreFind(w.key, w.reqH, now); obj != nil {
			w.entry, w.stale = c.coreEntry(obj, now), stale
			c.ctr.hits.Add(1)
			close(w.ready)
			continue
		}
		if next == nil {
			next = &coreTxn{key: t.key}
			c.coreTxns[t.key] = next
			w.obligation = next
			close(w.ready)
			continue
		}
		next.waiters = append(next.waiters, w)
	}
}

// CoreCancel gives up l's obligation, if it holds one: a waiting lookup
// inherits it. Closing a lookup that holds one does the same.
func (c *Cache) CoreCancel(l *CoreLookup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.endTxnLocked(l)
}

// CoreAbandonWaiter drops a lookup still waiting for another's obligation
// (its handle was closed).
func (c *Cache) CoreAbandonWaiter(l *CoreLookup) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.coreTxns[l.key]; t != nil {
		for i, w := range t.waiters {
			if w == l {
				t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
				break
			}
		}
	}
}

// CoreInsert stores a new object for key under service (a non-transactional
// insert when l is nil; else l's obligation, which ends) and returns the
// writer of its body. The object is visible at once: lookups read its
// body as it is written. ctx is unused by the writer; readers take their
// own.
func (c *Cache) CoreInsert(service string, key []byte, l *CoreLookup, w CoreWrite) *CoreWriter {
	gen := c.gen(service)
	return c.insert(service, corePrimaryKey(service, gen, key), gen, l, w)
}

// HTTPInsert is CoreInsert in service's HTTP cache. With w.NotCacheable
// the object is a not-cacheable record: its writer should be closed at
// once, with nothing written.
func (c *Cache) HTTPInsert(key Key, l *CoreLookup, w CoreWrite) *CoreWriter {
	gen := c.gen(key.Service)
	return c.insert(key.Service, primaryKey(key, gen), gen, l, w)
}

func (c *Cache) insert(service, pk string, gen uint64, l *CoreLookup, w CoreWrite) *CoreWriter {
	now := c.now()
	if l != nil {
		pk = l.key
	}
	st := newStream()
	obj := c.newCoreObject(service, pk, w, now)
	obj.core.b = &coreBody{st: st}
	c.mu.Lock()
	c.insertLocked(pk, obj, w.Vary, gen, c.purges.Load())
	if l != nil {
		c.endTxnLocked(l)
	}
	c.mu.Unlock()
	return &CoreWriter{c: c, obj: obj, st: st}
}

// ReplaceStrategy is how CoreReplace treats other writers of the key
// (cache_replace_strategy; abi/README.md, "fastly_cache").
type ReplaceStrategy uint32

// The replace strategies, as their ABI values.
const (
	// ReplaceImmediate starts at once, racing other writers; the existing
	// object stays visible until the replacement is inserted.
	ReplaceImmediate ReplaceStrategy = 1
	// ReplaceImmediateForceMiss removes the existing object at once, and
	// transactional lookups of the key that follow wait for the
	// replacement (unless another lookup already holds the key's
	// obligation: then the replace races it, as ReplaceImmediate).
	ReplaceImmediateForceMiss ReplaceStrategy = 2
	// ReplaceWait waits for the key's pending obligation, if any, to end
	// first.
	ReplaceWait ReplaceStrategy = 3
)

// CoreReplace starts replacing key's object in service's core cache (the
// fastly_cache replace family) and returns a lookup of the object being
// replaced: its Entry is the usable object found (stale ones included),
// nil when there is none. h is the request headers the object's Vary
// rule is matched against. With ReplaceWait the lookup resolves once a
// pending obligation ends (Wait). Write the replacement with
// CoreReplaceInsert; a ReplaceImmediateForceMiss replace that ends
// without one releases the lookups waiting on it with CoreCancel.
func (c *Cache) CoreReplace(service string, key []byte, h http.Header, s ReplaceStrategy) *CoreLookup {
	pk := corePrimaryKey(service, c.gen(service), key)
	now := c.now()
	l := &CoreLookup{c: c, key: pk, reqH: h, ready: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.coreTxns[pk]
	if s == ReplaceWait && t != nil {
		l.replaceWait = true
		t.waiters = append(t.waiters, l)
		return l
	}
	obj, stale := c.coreFind(pk, h, now)
	if obj != nil && !obj.notCacheable() {
		l.entry, l.stale = c.replacedEntry(obj, now), stale
	}
	if s == ReplaceImmediateForceMiss {
		if l.entry != nil {
			c.store.Invalidate(obj.key)
		}
		if t == nil {
			if c.coreTxns == nil {
				c.coreTxns = map[string]*coreTxn{}
			}
			t = &coreTxn{key: pk}
			c.coreTxns[pk] = t
			l.obligation = t
		}
	}
	close(l.ready)
	return l
}

// CoreReplaceInsert stores the replacement of the object l (a resolved
// CoreReplace of service's key) replaces, ending what l holds, and
// returns the writer of its body, as CoreInsert does. Without
// RequestHeaders of its own, w's variant is chosen by l's.
func (c *Cache) CoreReplaceInsert(service string, l *CoreLookup, w CoreWrite) *CoreWriter {
	if w.RequestHeaders == nil {
		w.RequestHeaders = l.reqH
	}
	return c.insert(service, l.key, c.gen(service), l, w)
}

// CoreUpdate replaces the metadata of the object l found (keeping its
// body) with w, and ends l's obligation. It returns false when l found no
// object or holds no obligation.
func (c *Cache) CoreUpdate(l *CoreLookup, w CoreWrite) bool {
	if l.entry == nil || l.obligation == nil {
		return false
	}
	old := l.entry.obj
	now := c.now()
	obj := c.newCoreObject(old.service, l.key, w, now)
	od := l.entry.d
	obj.core.b = od.b
	if w.Length < 0 {
		obj.core.length = od.length
	}
	obj.hits.Store(old.hits.Load())
	c.mu.Lock()
	c.insertLocked(l.key, obj, w.Vary, c.gen(old.service), c.purges.Load())
	c.endTxnLocked(l)
	c.mu.Unlock()
	return true
}

func (c *Cache) newCoreObject(service, pk string, w CoreWrite, now time.Time) *object {
	vk := variantKey(pk, w.Vary, w.RequestHeaders)
	obj := &object{
		service: service, key: vk, arrived: now, initialAge: w.InitialAge, swr: w.SWR, sie: w.SIE,
		keys: w.SurrogateKeys, header: w.Header.Clone(), status: w.Status,
		core: &coreData{maxAge: w.MaxAge, length: w.Length, meta: bytes.Clone(w.UserMetadata), sensitive: w.Sensitive, notCacheable: w.NotCacheable, vary: w.Vary},
	}
	if obj.header == nil {
		obj.header = http.Header{}
	}
	obj.freshUntil.Store(now.Add(w.MaxAge - w.InitialAge).UnixNano())
	return obj
}

// Lookup returns a resolved lookup of the object w writes, for reading it
// back while it is written (transaction_insert_and_stream_back). It
// counts no hit.
func (w *CoreWriter) Lookup() *CoreLookup {
	l := &CoreLookup{c: w.c, key: w.obj.key, ready: make(chan struct{})}
	l.entry = &CoreEntry{c: w.c, obj: w.obj, d: w.obj.core, hits: w.obj.hits.Load(), age: w.obj.age(w.c.now())}
	close(l.ready)
	return l
}
