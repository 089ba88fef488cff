package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a test clock the cache and the origins share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// origin is a loopback HTTP origin counting its requests.
type origin struct {
	*httptest.Server
	n        atomic.Int64
	mu       sync.Mutex
	lastReqs []*http.Request
}

func newOrigin(t testing.TB, clk *clock, h func(n int64, w http.ResponseWriter, r *http.Request)) *origin {
	o := &origin{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := o.n.Add(1)
		o.mu.Lock()
		o.lastReqs = append(o.lastReqs, r)
		o.mu.Unlock()
		if clk != nil {
			w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat))
		}
		h(n, w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) last() *http.Request {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastReqs[len(o.lastReqs)-1]
}

func (o *origin) fetch() FetchFunc {
	client := o.Client()
	return func(ctx context.Context, req *http.Request) (*http.Response, error) {
		req = req.WithContext(ctx)
		req.RequestURI = ""
		return client.Transport.RoundTrip(req)
	}
}

type result struct {
	status int
	header http.Header
	body   string
	err    error
}

func get(t testing.TB, c *Cache, o *origin, svc, path string, ov Override, hdr ...string) result {
	t.Helper()
	return do(t, c, o, http.MethodGet, svc, path, ov, hdr...)
}

func do(t testing.TB, c *Cache, o *origin, method, svc, path string, ov Override, hdr ...string) result {
	t.Helper()
	req, err := http.NewRequest(method, o.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(context.Background(), req, Key{Service: svc, Backend: "origin", URL: req.URL.String()}, ov, o.fetch())
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: string(b), err: err}
}

func dur(d time.Duration) *time.Duration { return &d }

// step is one request of a semantics case: advance the clock by after,
// send the request, then expect the answer.
type step struct {
	after      time.Duration
	hdr        []string
	ov         Override
	method     string
	wantCache  string // X-Cache
	wantOrigin int64  // origin requests so far
	wantBody   string // "" : not checked
	check      func(t *testing.T, r result, o *origin)
}

func TestHTTPSemantics(t *testing.T) {
	versioned := func(hdrs ...string) func(n int64, w http.ResponseWriter, r *http.Request) {
		return func(n int64, w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(hdrs); i += 2 {
				w.Header().Add(hdrs[i], hdrs[i+1])
			}
			fmt.Fprintf(w, "v%d", n)
		}
	}
	etagged := func(cc string) func(n int64, w http.ResponseWriter, r *http.Request) {
		return func(n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", cc)
			w.Header().Set("ETag", `"e1"`)
			if r.Header.Get("If-None-Match") == `"e1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			fmt.Fprintf(w, "v%d", n)
		}
	}
	cases := []struct {
		name    string
		handler func(n int64, w http.ResponseWriter, r *http.Request)
		steps   []step
	}{
		{"max-age", versioned("Cache-Control", "max-age=60"), []step{
			{wantCache: "MISS", wantOrigin: 1, wantBody: "v1"},
			{after: 30 * time.Second, wantCache: "HIT", wantOrigin: 1, wantBody: "v1", check: func(t *testing.T, r result, _ *origin) {
				if r.header.Get("Age") != "30" || r.header.Get("X-Cache-Hits") != "1" {
					t.Errorf("Age %q X-Cache-Hits %q, want 30 and 1", r.header.Get("Age"), r.header.Get("X-Cache-Hits"))
				}
			}},
			{after: 31 * time.Second, wantCache: "MISS", wantOrigin: 2, wantBody: "v2"},
		}},
		{"s-maxage over max-age", versioned("Cache-Control", "max-age=0, s-maxage=60"), []step{
			{wantCache: "MISS", wantOrigin: 1},
			{after: 50 * time.Second, wantCache: "HIT", wantOrigin: 1, wantBody: "v1"},
			{after: 11 * time.Second, wantCache: "MISS", wantOrigin: 2},
		}},
		{"Surrogate-Control over Cache-Control, stripped", versioned("Cache-Control", "no-cache, s-maxage=1", "Surrogate-Control", "max-age=60"), []step{
			{wantCache: "MISS", wantOrigin: 1, check: func(t *testing.T, r result, _ *origin) {
				if v := r.header.Get("Surrogate-Control"); v != "" {
					t.Errorf("Surrogate-Control %q reached the caller", v)
				}
			}},
			{after: 50 * time.Second, wantCache: "HIT", wantOrigin: 1, wantBody: "v1", check: func(t *testing.T, r result, _ *origin) {
				if v := r.header.Get("Surrogate-Control"); v != "" {
					t.Errorf("Surrogate-Control %q stored", v)
				}
				if v := r.header.Get("Cache-Control"); v != "no-cache, s-maxage=1" {
					t.Errorf("Cache-Control %q, want it kept for the client", v)
				}
			}},
		}},
		{"no-store", versioned("Cache-Control", "max-age=60, no-store"), []step{
			{wantCache: "MISS", wantOrigin: 1, wantBody: "v1"},
			{wantCache: "MISS", wantOrigin: 2, wantBody: "v2"},
		}},
		{"Surrogate-Control no-store", versioned("Surrogate-Control", "no-store"), []step{
			{wantCache: "MISS", wantOrigin: 1},
			{wantCache: "MISS", wantOrigin: 2},
		}},
		{"private", versioned("Cache-Control", "private, max-age=60"), []step{
			{wantCache: "MISS", wantOrigin: 1},
			{wantCache: "MISS", wantOrigin: 2, wantBody: "v2"},
		}},
		{"no-cache revalidates every use", etagged("no-cache"), []step{
			{wantCache: "MISS", wantOrigin: 1, wantBody: "v1"},
			{wantCache: "MISS", wantOrigin: 2, wantBody: "v1", check: func(t *testing.T, r result, o *origin) {
				if got := o.last().Header.Get("If-None-Match"); got != `"e1"` {
					t.Errorf("revalidation If-None-Match %q", got)
				}
			}},
		}},
		{"Vary", versioned("Cache-Control", "max-age=60", "Vary", "Accept-Language"), []step{
			{hdr: []string{"Accept-Language", "en"}, wantCache: "MISS", wantOrigin: 1, wantBody: "v1"},
			{hdr: []string{"Accept-Language", "fr"}, wantCache: "MISS", wantOrigin: 2, wantBody: "v2"},
			{hdr: []string{"Accept-Language", "en"}, wantCache: "HIT", wantOrigin: 2, wantBody: "v1"},
			{hdr: []string{"Accept-Language", "fr"}, wantCache: "HIT", wantOrigin: 2, wantBody: "v2"},
			{wantCache: "MISS", wantOrigin: 3, wantBody: "v3"},
		}},
		{"Vary star", versioned("Cache-Control", "max-age=60", "Vary", "*"), []step{
			{wantCache: "MISS", wantOrigin: 1},
			{wantCache: "MISS", wantOrigin: 2},
		}},
		{"Expires", func(n int64, w http.ResponseWriter, r *http.Request) {
			d, _ := http.ParseTime(w.Header().Get("Date"))
			w.Header().Set("Expires", d.Add(60*time.Second).Format(http.TimeFormat))
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{wantCache: "MISS", wantOrigin: 1},
			{after: 59 * time.Second, wantCache: "HIT", wantOrigin: 1},
			{after: 2 * time.Second, wantCache: "MISS", wantOrigin: 2},
		}},
		{"invalid Expires is stale", versioned("Expires", "0"), []step{
			{wantCache: "MISS", wantOrigin: 1},
			{wantCache: "MISS", wantOrigin: 2},
		}},
		{"Age shortens max-age", versioned("Cache-Control", "max-age=60", "Age", "50"), []step{
			{wantCache: "MISS", wantOrigin: 1},
			{after: 5 * time.Second, wantCache: "HIT", wantOrigin: 1, check: func(t *testing.T, r result, _ *origin) {
				if r.header.Get("Age") != "55" {
					t.Errorf("Age %q, want 55", r.header.Get("Age"))
				}
			}},
			{after: 6 * time.Second, wantCache: "MISS", wantOrigin: 2},
		}},
		{"default TTL", versioned(), []step{
			{wantCache: "MISS", wantOrigin: 1},
			{after: DefaultTTL - time.Second, wantCache: "HIT", wantOrigin: 1},
			{after: 2 * time.Second, wantCache: "MISS", wantOrigin: 2},
		}},
		{"304 revalidation refreshes the object", etagged("max-age=10"), []step{
			{wantCache: "MISS", wantOrigin: 1, wantBody: "v1"},
			{after: 20 * time.Second, wantCache: "MISS", wantOrigin: 2, wantBody: "v1", check: func(t *testing.T, r result, o *origin) {
				if got := o.last().Header.Get("If-None-Match"); got != `"e1"` {
					t.Errorf("revalidation If-None-Match %q", got)
				}
			}},
			{after: 5 * time.Second, wantCache: "HIT", wantOrigin: 2, wantBody: "v1"},
		}},
		{"Last-Modified revalidation", func(n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=10")
			w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
			if r.Header.Get("If-Modified-Since") != "" {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{wantCache: "MISS", wantOrigin: 1, wantBody: "v1"},
			{after: 20 * time.Second, wantCache: "MISS", wantOrigin: 2, wantBody: "v1"},
			{wantCache: "HIT", wantOrigin: 2, wantBody: "v1"},
		}},
		{"changed object replaces the stale one", func(n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=10")
			w.Header().Set("ETag", fmt.Sprintf(`"e%d"`, n))
			fmt.Fprintf(w, "v%d", n)
		}, []step{
			{wantCache: "MISS", wantOrigin: 1, wantBody: "v1"},
			{after: 20 * time.Second, wantCache: "MISS", wantOrigin: 2, wantBody: "v2"},
			{wantCache: "HIT", wantOrigin: 2, wantBody: "v2"},
		}},
		{"stale-while-revalidate", versioned("Cache-Control", "max-age=10, stale-while-revalidate=60"), []step{
			{wantCache: "MISS", wantOrigin: 1, wantBody: "v1"},
			{after: 20 * time.Second, wantCache: "HIT", wantBody: "v1", check: func(t *testing.T, r result, o *origin) {
				waitFor(t, "the background refresh", func() bool { return o.n.Load() == 2 })
			}},
		}},
		{"override stale-while-revalidate", versioned("Cache-Control", "max-age=10"), []step{
			{ov: Override{SWR: dur(60 * time.Second)}, wantCache: "MISS", wantOrigin: 1},
			{after: 20 * time.Second, wantCache: "HIT", wantBody: "v1"},
		}},
		{"must-revalidate cancels swr", versioned("Cache-Control", "max-age=10, stale-while-revalidate=60, must-revalidate"), []step{
			{wantCache: "MISS", wantOrigin: 1},
			{after: 20 * time.Second, wantCache: "MISS", wantOrigin: 2, wantBody: "v2"},
		}},
		{"Set-Cookie not shared", versioned("Cache-Control", "max-age=60", "Set-Cookie", "s=1"), []step{
			{wantCache: "MISS", wantOrigin: 1},
			{wantCache: "MISS", wantOrigin: 2},
		}},
		{"Set-Cookie shared when the override says so", versioned("Cache-Control", "max-age=60", "Set-Cookie", "s=1"), []step{
			{ov: Override{CacheSetCookie: true}, wantCache: "MISS", wantOrigin: 1},
			{ov: Override{CacheSetCookie: true}, wantCache: "HIT", wantOrigin: 1},
		}},
		{"500 not stored", func(n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.WriteHeader(500)
		}, []step{
			{wantCache: "MISS", wantOrigin: 1},
			{after: 6 * time.Second, wantCache: "MISS", wantOrigin: 2},
		}},
		{"404 stored", func(n int64, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "max-age=60")
			w.WriteHeader(404)
		}, []step{
			{wantCache: "MISS", wantOrigin: 1},
			{wantCache: "HIT", wantOrigin: 1},
		}},
		{"override TTL", versioned("Cache-Control", "max-age=0"), []step{
			{ov: OverrideFromABI(TagTTL, 60, 0, ""), wantCache: "MISS", wantOrigin: 1},
			{after: 30 * time.Second, wantCache: "HIT", wantOrigin: 1},
		}},
		{"override pass", versioned("Cache-Control", "max-age=60"), []step{
			{ov: OverrideFromABI(TagPass, 0, 0, ""), wantCache: "MISS", wantOrigin: 1},
			{ov: OverrideFromABI(TagPass, 0, 0, ""), wantCache: "MISS", wantOrigin: 2},
			{wantCache: "MISS", wantOrigin: 3},
			{wantCache: "HIT", wantOrigin: 3},
		}},
		{"POST passes", versioned("Cache-Control", "max-age=60"), []step{
			{method: http.MethodPost, wantCache: "MISS", wantOrigin: 1},
			{method: http.MethodPost, wantCache: "MISS", wantOrigin: 2},
		}},
		{"HEAD answered from GET object", versioned("Cache-Control", "max-age=60"), []step{
			{method: http.MethodHead, wantCache: "MISS", wantOrigin: 1},
			{wantCache: "MISS", wantOrigin: 2, wantBody: "v2"},
			{method: http.MethodHead, wantCache: "HIT", wantOrigin: 2, wantBody: ""},
		}},
		{"Authorization not stored", versioned("Cache-Control", "max-age=60"), []step{
			{hdr: []string{"Authorization", "Bearer x"}, wantCache: "MISS", wantOrigin: 1},
			{hdr: []string{"Authorization", "Bearer x"}, wantCache: "MISS", wantOrigin: 2},
		}},
		{"caller's conditional headers stripped", versioned("Cache-Control", "max-age=60", "ETag", `"x"`), []step{
			{hdr: []string{"If-None-Match", `"x"`}, wantCache: "MISS", wantOrigin: 1, wantBody: "v1", check: func(t *testing.T, r result, o *origin) {
				if got := o.last().Header.Get("If-None-Match"); got != "" {
					t.Errorf("fill sent the caller's If-None-Match %q", got)
				}
			}},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			c := New(Config{Now: clk.Now})
			o := newOrigin(t, clk, tc.handler)
			for i, s := range tc.steps {
				clk.advance(s.after)
				method := s.method
				if method == "" {
					method = http.MethodGet
				}
				r := do(t, c, o, method, "svc", "/x", s.ov, s.hdr...)
				if r.err != nil {
					t.Fatalf("step %d: %v", i, r.err)
				}
				if got := r.header.Get("X-Cache"); got != s.wantCache {
					t.Errorf("step %d: X-Cache %q, want %q", i, got, s.wantCache)
				}
				if s.check != nil {
					s.check(t, r, o)
				}
				if s.wantOrigin != 0 {
					if got := o.n.Load(); got != s.wantOrigin {
						t.Errorf("step %d: origin requests %d, want %d", i, got, s.wantOrigin)
					}
				}
				if s.wantBody != "" || method == http.MethodHead {
					if r.body != s.wantBody {
						t.Errorf("step %d: body %q, want %q", i, r.body, s.wantBody)
					}
				}
			}
		})
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStaleWhileRevalidateOneRefresh(t *testing.T) {
	clk := newClock()
	c := New(Config{Now: clk.Now})
	release := make(chan struct{})
	o := newOrigin(t, clk, func(n int64, w http.ResponseWriter, r *http.Request) {
		if n > 1 {
			<-release
		}
		w.Header().Set("Cache-Control", "max-age=10, stale-while-revalidate=60")
		fmt.Fprintf(w, "v%d", n)
	})
	get(t, c, o, "svc", "/", Override{})
	clk.advance(20 * time.Second)
	for i := range 20 {
		r := get(t, c, o, "svc", "/", Override{})
		if r.body != "v1" || r.header.Get("X-Cache") != "HIT" {
			t.Fatalf("request %d during the refresh: %q %q", i, r.body, r.header.Get("X-Cache"))
		}
	}
	waitFor(t, "the refresh request", func() bool { return o.n.Load() == 2 })
	close(release)
	waitFor(t, "the refreshed object", func() bool { return c.Stats().Stored == 2 })
	if r := get(t, c, o, "svc", "/", Override{}); r.body != "v2" {
		t.Errorf("after the refresh: %q", r.body)
	}
	if n := o.n.Load(); n != 2 {
		t.Errorf("origin requests %d, want 2 (one refresh)", n)
	}
}

func TestCollapsing(t *testing.T) {
	const waiters = 100
	c := New(Config{})
	var started atomic.Int64
	release := make(chan struct{})
	first := bytes.Repeat([]byte("a"), 1000)
	rest := bytes.Repeat([]byte("b"), 100_000)
	o := newOrigin(t, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
		// Hold the headers until every request has called Do.
		for started.Load() < waiters {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Cache-Control", "max-age=60")
		w.Write(first)
		w.(http.Flusher).Flush()
		<-release
		w.Write(rest)
	})
	var firstBytes sync.WaitGroup
	firstBytes.Add(waiters)
	bodies := make([][]byte, waiters)
	errs := make([]error, waiters)
	var wg sync.WaitGroup
	for i := range waiters {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, o.URL+"/big", nil)
			started.Add(1)
			resp, err := c.Do(context.Background(), req, Key{Service: "s", Backend: "origin", URL: req.URL.String()}, Override{}, o.fetch())
			if err != nil {
				errs[i] = err
				firstBytes.Done()
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, len(first))
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				errs[i] = err
			}
			firstBytes.Done()
			tail, err := io.ReadAll(resp.Body)
			if err != nil {
				errs[i] = err
			}
			bodies[i] = append(buf, tail...)
		})
	}
	done := make(chan struct{})
	go func() { firstBytes.Wait(); close(done) }()
	select {
	case <-done: // every request read the first bytes while the origin still held the rest
	case <-time.After(20 * time.Second):
		t.Fatal("the requests did not get the first bytes before the origin finished")
	}
	close(release)
	wg.Wait()
	want := append(append([]byte(nil), first...), rest...)
	for i := range waiters {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if !bytes.Equal(bodies[i], want) {
			t.Fatalf("request %d: body of %d bytes, want %d", i, len(bodies[i]), len(want))
		}
	}
	if n := o.n.Load(); n != 1 {
		t.Errorf("origin requests %d, want 1", n)
	}
	if s := c.Stats(); s.Collapsed != waiters-1 || s.Misses != 1 {
		t.Errorf("stats %+v, want %d collapsed and 1 miss", s, waiters-1)
	}
	waitFor(t, "the object", func() bool { return c.Stats().Stored == 1 })
	if r := get(t, c, o, "s", "/big", Override{}); r.header.Get("X-Cache") != "HIT" || r.body != string(want) {
		t.Errorf("after the fill: X-Cache %q, %d bytes", r.header.Get("X-Cache"), len(r.body))
	}
}

func TestTruncatedOrigin(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(w io.Writer)
	}{
		{"short Content-Length", func(w io.Writer) {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 100\r\n\r\n"+strings.Repeat("x", 50))
		}},
		{"chunked, cut mid-body", func(w io.Writer) {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n"+strings.Repeat("x", 50)+"\r\n10\r\nxx")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(Config{})
			o := newOrigin(t, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
				if n > 1 {
					w.Header().Set("Cache-Control", "max-age=60")
					io.WriteString(w, "whole")
					return
				}
				conn, bw, err := w.(http.Hijacker).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				tc.write(bw)
				bw.Flush()
				// Die once a second request shares this fill.
				waitFor(t, "the waiter", func() bool { return c.Stats().Collapsed == 1 })
			})
			// A leader and a waiter both read the failing body.
			req, _ := http.NewRequest(http.MethodGet, o.URL+"/t", nil)
			key := Key{Service: "s", Backend: "origin", URL: req.URL.String()}
			leader, err := c.Do(context.Background(), req, key, Override{}, o.fetch())
			if err != nil {
				t.Fatal(err)
			}
			waiter, err := c.Do(context.Background(), req.Clone(context.Background()), key, Override{}, o.fetch())
			if err != nil {
				t.Fatal(err)
			}
			for name, resp := range map[string]*http.Response{"leader": leader, "waiter": waiter} {
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil {
					t.Errorf("%s read %d bytes and no error", name, len(b))
				}
			}
			if o.n.Load() != 1 || c.Stats().Collapsed != 1 {
				t.Fatalf("origin %d, collapsed %d: the waiter did not share the fill", o.n.Load(), c.Stats().Collapsed)
			}
			r := get(t, c, o, "s", "/t", Override{})
			if r.err != nil || r.body != "whole" || r.header.Get("X-Cache") != "MISS" {
				t.Errorf("next request: %q %q %v, want a fresh fetch", r.body, r.header.Get("X-Cache"), r.err)
			}
		})
	}
}

func TestOriginError(t *testing.T) {
	c := New(Config{})
	want := errors.New("backend down")
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/", nil)
	_, err := c.Do(context.Background(), req, Key{URL: req.URL.String()}, Override{}, func(context.Context, *http.Request) (*http.Response, error) {
		return nil, want
	})
	if !errors.Is(err, want) {
		t.Fatalf("err %v, want %v", err, want)
	}
}

func TestPurge(t *testing.T) {
	clk := newClock()
	c := New(Config{Now: clk.Now})
	o := newOrigin(t, clk, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("ETag", `"e"`)
		switch r.URL.Path {
		case "/a":
			w.Header().Set("Surrogate-Key", "k1 shared")
		case "/b":
			w.Header().Set("Surrogate-Key", "shared")
		case "/c":
			w.Header().Set("Surrogate-Key", "other")
		}
		if r.Header.Get("If-None-Match") == `"e"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		fmt.Fprintf(w, "%s v%d", r.URL.Path, n)
	})
	for _, p := range []string{"/a", "/b", "/c", "/d"} {
		get(t, c, o, "s", p, Override{})
	}
	get(t, c, o, "s", "/d", Override{SurrogateKeys: []string{"shared"}}) // a hit: /d's object has no key
	if n := c.Purge("s", "shared", false); n != 2 {
		t.Errorf("purged %d, want 2", n)
	}
	for _, tc := range []struct {
		path, cache string
	}{{"/a", "MISS"}, {"/b", "MISS"}, {"/c", "HIT"}, {"/d", "HIT"}} {
		if r := get(t, c, o, "s", tc.path, Override{}); r.header.Get("X-Cache") != tc.cache {
			t.Errorf("%s after hard purge: %s, want %s", tc.path, r.header.Get("X-Cache"), tc.cache)
		}
	}
	if n := c.Purge("other-service", "other", false); n != 0 {
		t.Errorf("purge of another service removed %d", n)
	}
	waitFor(t, "the purged objects' index entries", func() bool { return true })
	// Soft purge: the object is stale and revalidates.
	before := o.n.Load()
	if n := c.Purge("", "other", true); n != 1 {
		t.Errorf("soft purged %d, want 1", n)
	}
	r := get(t, c, o, "s", "/c", Override{})
	if o.n.Load() != before+1 || o.last().Header.Get("If-None-Match") != `"e"` || r.body != "/c v3" {
		t.Errorf("after soft purge: origin %d (was %d), If-None-Match %q, body %q", o.n.Load(), before, o.last().Header.Get("If-None-Match"), r.body)
	}
	if r := get(t, c, o, "s", "/c", Override{}); r.header.Get("X-Cache") != "HIT" {
		t.Errorf("revalidated object not fresh again: %s", r.header.Get("X-Cache"))
	}
	// Override surrogate keys purge like the header's.
	get(t, c, o, "s", "/e", Override{SurrogateKeys: []string{"ov"}})
	c.Purge("s", "ov", false)
	if r := get(t, c, o, "s", "/e", Override{}); r.header.Get("X-Cache") != "MISS" {
		t.Errorf("/e after purging its override key: %s", r.header.Get("X-Cache"))
	}
	c.PurgeAll("")
	if r := get(t, c, o, "s", "/c", Override{}); r.header.Get("X-Cache") != "MISS" {
		t.Errorf("/c after purge all: %s", r.header.Get("X-Cache"))
	}
}

func TestPurgeDuringFill(t *testing.T) {
	c := New(Config{})
	release := make(chan struct{})
	o := newOrigin(t, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Surrogate-Key", "k")
		w.(http.Flusher).Flush()
		if n == 1 {
			<-release
		}
		fmt.Fprintf(w, "v%d", n)
	})
	req, _ := http.NewRequest(http.MethodGet, o.URL+"/", nil)
	resp, err := c.Do(context.Background(), req, Key{URL: req.URL.String()}, Override{}, o.fetch())
	if err != nil {
		t.Fatal(err)
	}
	c.Purge("", "k", false)
	close(release)
	io.ReadAll(resp.Body)
	resp.Body.Close()
	if r := get(t, c, o, "", "/", Override{}); r.body != "v2" {
		t.Errorf("the fill that started before the purge was stored: %q", r.body)
	}
}

func TestEviction(t *testing.T) {
	const maxBytes = 1 << 20
	c := New(Config{MaxBytes: maxBytes, MaxObjectBytes: 256 << 10})
	body := strings.Repeat("z", 100<<10)
	o := newOrigin(t, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		if r.URL.Path == "/huge" {
			io.WriteString(w, strings.Repeat("h", 300<<10))
			return
		}
		io.WriteString(w, body)
	})
	const objects = 40
	for i := range objects {
		if r := get(t, c, o, "s", fmt.Sprintf("/%d", i), Override{}); r.body != body {
			t.Fatalf("object %d: %d bytes", i, len(r.body))
		}
		waitFor(t, "the object", func() bool { return c.Stats().Stored == uint64(i+1) })
	}
	c.store.CleanUp()
	s := c.Stats()
	if s.Bytes > maxBytes || s.Evictions == 0 {
		t.Errorf("after %d objects of 100 KiB in 1 MiB: %d bytes, %d evictions", objects, s.Bytes, s.Evictions)
	}
	// Probe with a fetch that fails, so that misses store nothing.
	hits := 0
	down := func(context.Context, *http.Request) (*http.Response, error) { return nil, errors.New("probe") }
	for i := range objects {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/%d", o.URL, i), nil)
		if resp, err := c.Do(context.Background(), req, Key{Service: "s", Backend: "origin", URL: req.URL.String()}, Override{}, down); err == nil {
			resp.Body.Close()
			hits++
		}
	}
	if hits == 0 || hits > 10 {
		t.Errorf("%d of %d objects of 100 KiB still cached in 1 MiB", hits, objects)
	}
	// Over the object cap: streamed whole, not stored.
	for i := range 2 {
		if r := get(t, c, o, "s", "/huge", Override{}); len(r.body) != 300<<10 || r.header.Get("X-Cache") != "MISS" {
			t.Errorf("huge %d: %d bytes, %s", i, len(r.body), r.header.Get("X-Cache"))
		}
	}
}

func TestOversizedWithoutLength(t *testing.T) {
	c := New(Config{MaxBytes: 1 << 20, MaxObjectBytes: 64 << 10})
	o := newOrigin(t, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		for range 20 {
			w.Write(bytes.Repeat([]byte("q"), 10<<10))
			w.(http.Flusher).Flush() // chunked: no Content-Length
		}
	})
	for i := range 2 {
		r := get(t, c, o, "s", "/", Override{})
		if len(r.body) != 200<<10 || r.err != nil {
			t.Fatalf("request %d: %d bytes, %v", i, len(r.body), r.err)
		}
	}
	if o.n.Load() != 2 || c.Stats().Stored != 0 {
		t.Errorf("origin %d, stored %d: a body over the cap was stored", o.n.Load(), c.Stats().Stored)
	}
}

func TestGeneration(t *testing.T) {
	c := New(Config{})
	o := newOrigin(t, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "v%d", n)
	})
	get(t, c, o, "s1", "/", Override{})
	get(t, c, o, "s2", "/", Override{})
	if r := get(t, c, o, "s1", "/", Override{}); r.header.Get("X-Cache") != "HIT" {
		t.Fatal("not cached")
	}
	if n := c.SetGeneration("s1", 0); n != 0 {
		t.Errorf("setting the same generation removed %d", n)
	}
	if n := c.SetGeneration("s1", 7); n != 1 {
		t.Errorf("generation change removed %d, want 1", n)
	}
	if r := get(t, c, o, "s1", "/", Override{}); r.header.Get("X-Cache") != "MISS" || r.body != "v3" {
		t.Errorf("s1 after its generation change: %s %q", r.header.Get("X-Cache"), r.body)
	}
	if r := get(t, c, o, "s2", "/", Override{}); r.header.Get("X-Cache") != "HIT" || r.body != "v2" {
		t.Errorf("s2 after s1's generation change: %s %q", r.header.Get("X-Cache"), r.body)
	}
	if r := get(t, c, o, "s1", "/", Override{}); r.header.Get("X-Cache") != "HIT" {
		t.Errorf("s1 under its new generation: %s", r.header.Get("X-Cache"))
	}
}

// TestVaryWhileFilling: a request for another variant arriving during a
// fill does not get that fill's body.
func TestVaryWhileFilling(t *testing.T) {
	c := New(Config{})
	release := make(chan struct{})
	o := newOrigin(t, nil, func(n int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Vary", "Accept-Language")
		w.(http.Flusher).Flush()
		if r.Header.Get("Accept-Language") == "en" {
			<-release
		}
		io.WriteString(w, "lang="+r.Header.Get("Accept-Language"))
	})
	req, _ := http.NewRequest(http.MethodGet, o.URL+"/v", nil)
	req.Header.Set("Accept-Language", "en")
	key := Key{Service: "s", Backend: "origin", URL: req.URL.String()}
	en, err := c.Do(context.Background(), req, key, Override{}, o.fetch())
	if err != nil {
		t.Fatal(err)
	}
	fr := get(t, c, o, "s", "/v", Override{}, "Accept-Language", "fr")
	close(release)
	b, err := io.ReadAll(en.Body)
	en.Body.Close()
	if err != nil || string(b) != "lang=en" || fr.body != "lang=fr" {
		t.Errorf("en %q %v, fr %q", b, err, fr.body)
	}
	waitFor(t, "both variants", func() bool { return c.Stats().Stored == 2 })
	for _, lang := range []string{"en", "fr"} {
		if r := get(t, c, o, "s", "/v", Override{}, "Accept-Language", lang); r.body != "lang="+lang || r.header.Get("X-Cache") != "HIT" {
			t.Errorf("%s: %q %s", lang, r.body, r.header.Get("X-Cache"))
		}
	}
	if n := o.n.Load(); n != 2 {
		t.Errorf("origin requests %d, want 2", n)
	}
}

// TestStaleIfError: within its stale-if-error window a stale object
// answers (a HIT) when its revalidation fails before a response; past the
// window, or with must-revalidate or no-cache, the failure reaches the
// caller, and an origin's 5xx is an answer that reaches it too.
func TestStaleIfError(t *testing.T) {
	cases := []struct {
		name   string
		header []string // the first answer's headers
		fail   string   // "conn": later origin requests fail; "503": they answer 503
		after  time.Duration
		stale  bool // the stored object answers
	}{
		{"Cache-Control, in the window", []string{"Cache-Control", "max-age=60, stale-if-error=600"}, "conn", 120 * time.Second, true},
		{"Surrogate-Control wins", []string{"Surrogate-Control", "max-age=60, stale-if-error=600", "Cache-Control", "max-age=60, stale-if-error=10"}, "conn", 120 * time.Second, true},
		{"past the window", []string{"Cache-Control", "max-age=60, stale-if-error=600"}, "conn", 700 * time.Second, false},
		{"none stated", []string{"Cache-Control", "max-age=60"}, "conn", 120 * time.Second, false},
		{"must-revalidate", []string{"Cache-Control", "max-age=60, stale-if-error=600, must-revalidate"}, "conn", 120 * time.Second, false},
		{"no-cache", []string{"Cache-Control", "no-cache, stale-if-error=600"}, "conn", 120 * time.Second, false},
		{"an origin 5xx is an answer", []string{"Cache-Control", "max-age=60, stale-if-error=600"}, "503", 120 * time.Second, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			c := New(Config{Now: clk.Now})
			var down atomic.Bool
			o := newOrigin(t, clk, func(n int64, w http.ResponseWriter, r *http.Request) {
				if !down.Load() {
					for i := 0; i+1 < len(tc.header); i += 2 {
						w.Header().Set(tc.header[i], tc.header[i+1])
					}
					io.WriteString(w, "kept")
					return
				}
				if tc.fail == "503" {
					w.WriteHeader(http.StatusServiceUnavailable)
					io.WriteString(w, "down")
					return
				}
				// Drop the connection without an answer.
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					conn.Close()
				}
			})
			if r := get(t, c, o, "svc", "/x", Override{}); r.err != nil || r.body != "kept" {
				t.Fatalf("first request: %+v", r)
			}
			down.Store(true)
			clk.advance(tc.after)
			r := get(t, c, o, "svc", "/x", Override{})
			switch {
			case tc.stale && (r.err != nil || r.status != 200 || r.body != "kept" || r.header.Get("X-Cache") != "HIT"):
				t.Fatalf("got %d %q X-Cache %q err %v, want the stored object as a HIT", r.status, r.body, r.header.Get("X-Cache"), r.err)
			case !tc.stale && tc.fail == "conn" && r.err == nil:
				t.Fatalf("got %d %q, want the origin's failure", r.status, r.body)
			case tc.fail == "503" && (r.err != nil || r.status != 503):
				t.Fatalf("got %d %q err %v, want the origin's 503", r.status, r.body, r.err)
			}
			want := uint64(0)
			if tc.stale {
				want = 1
			}
			if got := c.Stats().StaleIfError; got != want {
				t.Errorf("Stats.StaleIfError %d, want %d", got, want)
			}
		})
	}
}
