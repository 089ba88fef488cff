package cache

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// coreInsert stores body under key of service s with max age ttl.
func coreInsert(t testing.TB, c *Cache, key, body string, w CoreWrite) {
	t.Helper()
	bw := c.CoreInsert("s", []byte(key), nil, w)
	if _, err := bw.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := bw.Close(nil); err != nil {
		t.Fatal(err)
	}
}

func readAll(t testing.TB, r io.ReadCloser) string {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCoreFreshness: an object is fresh for its max age, then stale and
// usable for its stale-while-revalidate window, then gone; the first
// transaction of a stale object must update it, the next ones find it.
func TestCoreFreshness(t *testing.T) {
	now := time.Unix(1000, 0)
	c := New(Config{Now: func() time.Time { return now }})
	coreInsert(t, c, "k", "v", CoreWrite{MaxAge: 10 * time.Second, SWR: 5 * time.Second, Length: -1})
	for _, step := range []struct {
		at    time.Duration
		state CoreState
	}{
		{9 * time.Second, CoreFound | CoreUsable},
		{11 * time.Second, CoreFound | CoreUsable | CoreStale},
		{16 * time.Second, 0},
	} {
		now = time.Unix(1000, 0).Add(step.at)
		if got := c.CoreLookup("s", []byte("k"), nil).State(); got != step.state {
			t.Errorf("at %v: state %b, want %b", step.at, got, step.state)
		}
	}
	now = time.Unix(1011, 0)
	l1 := c.CoreTransactionLookup("s", []byte("k"), nil)
	l2 := c.CoreTransactionLookup("s", []byte("k"), nil)
	if l1.State() != CoreFound|CoreUsable|CoreStale|CoreMustInsertOrUpdate || l2.State() != CoreFound|CoreUsable|CoreStale {
		t.Errorf("stale transactions: %b, %b", l1.State(), l2.State())
	}
	if !c.CoreUpdate(l1, CoreWrite{MaxAge: time.Minute, Length: -1}) {
		t.Fatal("update refused")
	}
	l3 := c.CoreLookup("s", []byte("k"), nil)
	if l3.State() != CoreFound|CoreUsable || readAll(t, l3.Entry().Body(context.Background(), 0, -1)) != "v" {
		t.Errorf("after the update: %b", l3.State())
	}
}

// TestCoreCollapse: many transactions of a missing key, one obligation;
// the others read what it inserts as it is written.
func TestCoreCollapse(t *testing.T) {
	c := New(Config{})
	first := c.CoreTransactionLookup("s", []byte("k"), nil)
	if !first.HasObligation() {
		t.Fatal("first lookup has no obligation")
	}
	const n = 50
	var wg sync.WaitGroup
	got := make([]string, n)
	for i := range n {
		l := c.CoreTransactionLookup("s", []byte("k"), nil)
		wg.Go(func() {
			if err := l.Wait(context.Background()); err != nil || l.Entry() == nil || l.HasObligation() {
				t.Errorf("waiter %d: %v %v", i, err, l.State())
				return
			}
			got[i] = readAll(t, l.Entry().Body(context.Background(), 0, -1))
		})
	}
	w := c.CoreInsert("s", []byte("k"), first, CoreWrite{MaxAge: time.Minute, Length: -1})
	w.Write([]byte(strings.Repeat("a", 1000)))
	w.Write([]byte(strings.Repeat("b", 1000)))
	w.Close(nil)
	wg.Wait()
	for i, s := range got {
		if s != strings.Repeat("a", 1000)+strings.Repeat("b", 1000) {
			t.Fatalf("waiter %d read %d bytes", i, len(s))
		}
	}
	if s := c.Stats(); s.Collapsed != n {
		t.Errorf("collapsed %d, want %d", s.Collapsed, n)
	}
}

// TestCoreEviction: core objects count against the memory bound.
func TestCoreEviction(t *testing.T) {
	c := New(Config{MaxBytes: 64 << 10})
	for i := range 200 {
		coreInsert(t, c, "k"+strings.Repeat("x", i), strings.Repeat("v", 1024), CoreWrite{MaxAge: time.Hour, Length: -1})
	}
	c.store.CleanUp()
	if s := c.Stats(); s.Bytes > 64<<10 || s.Evictions == 0 {
		t.Errorf("after 200 KiB of objects in a 64 KiB cache: %d bytes, %d evictions", s.Bytes, s.Evictions)
	}
}

// BenchmarkCoreHit is the cost of one core cache hit on a 1 KiB object,
// lookup to body read.
func BenchmarkCoreHit(b *testing.B) {
	c := New(Config{})
	coreInsert(b, c, "k", strings.Repeat("x", 1024), CoreWrite{MaxAge: time.Hour, Length: -1})
	b.ReportAllocs()
	for b.Loop() {
		l := c.CoreLookup("s", []byte("k"), nil)
		r := l.Entry().Body(context.Background(), 0, -1)
		io.Copy(io.Discard, r)
		r.Close()
	}
}

// isReady reports whether l has resolved.
func isReady(l *CoreLookup) bool {
	select {
	case <-l.Ready():
		return true
	default:
		return false
	}
}

// TestCoreReplaceStrategies: a force-miss replace removes the object and
// holds the key, so transactional lookups wait for its replacement; a
// waiting replace resolves once the pending insert is stored, finding
// it; an immediate one keeps the object visible until it inserts.
func TestCoreReplaceStrategies(t *testing.T) {
	c := New(Config{})
	w := CoreWrite{MaxAge: time.Minute, Length: -1}
	coreInsert(t, c, "k", "old", w)

	r := c.CoreReplace("s", []byte("k"), nil, ReplaceImmediateForceMiss)
	if e := r.Entry(); e == nil || readAll(t, e.Body(context.Background(), -1, -1)) != "old" {
		t.Fatalf("force-miss replace: entry %v, want the old object", e)
	}
	if got := c.CoreLookup("s", []byte("k"), nil).State(); got != 0 {
		t.Errorf("lookup during a force-miss replace: state %b, want a miss", got)
	}
	waiter := c.CoreTransactionLookup("s", []byte("k"), nil)
	if isReady(waiter) {
		t.Fatalf("a transactional lookup did not wait for the force-miss replace (state %b)", waiter.State())
	}
	bw := c.CoreReplaceInsert("s", r, w)
	bw.Write([]byte("new"))
	bw.Close(nil)
	if err := waiter.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := waiter.Entry(); e == nil || waiter.HasObligation() || readAll(t, e.Body(context.Background(), -1, -1)) != "new" {
		t.Errorf("the waiter: state %b, want the replacement", waiter.State())
	}

	// Wait: behind a pending obligation.
	tx := c.CoreTransactionLookup("s", []byte("w"), nil)
	if !tx.HasObligation() {
		t.Fatal("no obligation")
	}
	rw := c.CoreReplace("s", []byte("w"), nil, ReplaceWait)
	if isReady(rw) {
		t.Fatal("a waiting replace did not wait for the pending insert")
	}
	bw = c.CoreInsert("s", []byte("w"), tx, w)
	bw.Write([]byte("first"))
	bw.Close(nil)
	if err := rw.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := rw.Entry(); e == nil || rw.HasObligation() || readAll(t, e.Body(context.Background(), -1, -1)) != "first" {
		t.Fatalf("waiting replace: state %b, want the inserted object", rw.State())
	}
	bw = c.CoreReplaceInsert("s", rw, w)
	bw.Write([]byte("second"))
	bw.Close(nil)
	if e := c.CoreLookup("s", []byte("w"), nil).Entry(); e == nil || readAll(t, e.Body(context.Background(), -1, -1)) != "second" {
		t.Errorf("after the waiting replace: want its object")
	}

	// Immediate: the old object stays until the insert.
	ri := c.CoreReplace("s", []byte("k"), nil, ReplaceImmediate)
	if e := c.CoreLookup("s", []byte("k"), nil).Entry(); e == nil || readAll(t, e.Body(context.Background(), -1, -1)) != "new" {
		t.Errorf("during an immediate replace the object is gone")
	}
	if h := ri.Entry().Hits(); h != 1 {
		t.Errorf("replaced object's hits %d, want 1 (the replace is not a hit)", h)
	}
}

// TestHTTPCacheSharesReadthrough: the HTTP cache API and Do keep objects
// under the same keys: each finds what the other stored, and each passes
// where the other recorded the key not cacheable.
func TestHTTPCacheSharesReadthrough(t *testing.T) {
	c := New(Config{})
	origin := 0
	fetch := func(body, cc string) FetchFunc {
		return func(ctx context.Context, r *http.Request) (*http.Response, error) {
			origin++
			h := http.Header{"Cache-Control": {cc}}
			return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
		}
	}
	do := func(key Key, f FetchFunc) (string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://example.com/x", nil)
		resp, err := c.Do(context.Background(), req, key, Override{}, f)
		if err != nil {
			t.Fatal(err)
		}
		return readAll(t, resp.Body), resp.Header.Get("X-Cache")
	}
	hk := HTTPKey("example.com", "/x")
	if len(hk) != 32 {
		t.Fatalf("HTTPKey: %d bytes, want 32", len(hk))
	}
	k := HTTPCacheKey("s", "be", hk)

	// Do stores; the HTTP cache API finds it, with its status and body.
	if b, x := do(k, fetch("from send", "max-age=60")); b != "from send" || x != "MISS" {
		t.Fatalf("first send: %q %s", b, x)
	}
	l := c.HTTPTransactionLookup(k, nil)
	if e := l.Entry(); e == nil || l.HasObligation() || e.Status() != 200 || readAll(t, e.Body(context.Background(), -1, -1)) != "from send" {
		t.Fatalf("HTTP lookup after a send: state %b", l.State())
	}
	if e := l.Entry(); e.MaxAge() != time.Minute {
		t.Errorf("max age %v, want 1m", e.MaxAge())
	}

	// The HTTP cache API stores; Do answers from it.
	k2 := HTTPCacheKey("s", "be", HTTPKey("example.com", "/y"))
	l2 := c.HTTPTransactionLookup(k2, nil)
	bw := c.HTTPInsert(k2, l2, CoreWrite{MaxAge: time.Minute, Length: -1, Status: 203, Header: http.Header{"X-A": {"1"}}})
	bw.Write([]byte("from api"))
	bw.Close(nil)
	req, _ := http.NewRequest("GET", "http://example.com/y", nil)
	resp, err := c.Do(context.Background(), req, k2, Override{}, fetch("origin", "max-age=60"))
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp.Body); b != "from api" || resp.StatusCode != 203 || resp.Header.Get("X-Cache") != "HIT" || resp.Header.Get("X-A") != "1" {
		t.Errorf("send after an HTTP insert: %d %q %v", resp.StatusCode, b, resp.Header)
	}

	// Not cacheable, recorded by either: the other passes.
	k3 := HTTPCacheKey("s", "be", HTTPKey("example.com", "/z"))
	l3 := c.HTTPTransactionLookup(k3, nil)
	c.HTTPInsert(k3, l3, CoreWrite{MaxAge: time.Minute, NotCacheable: true}).Close(nil)
	before := origin
	do(k3, fetch("z", "max-age=60"))
	do(k3, fetch("z", "max-age=60"))
	if origin-before != 2 {
		t.Errorf("sends to a key recorded not cacheable reached the origin %d times, want 2", origin-before)
	}
	k4 := HTTPCacheKey("s", "be", HTTPKey("example.com", "/p"))
	do(k4, fetch("p", "private"))
	if l := c.HTTPTransactionLookup(k4, nil); !l.Pass() || l.HasObligation() {
		t.Errorf("HTTP lookup after a send's hit-for-pass: state %b pass %v, want a pass", l.State(), l.Pass())
	}
	if origin != 4 {
		t.Errorf("origin requests %d, want 4", origin)
	}
}
