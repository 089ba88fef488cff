package conformance_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// coreCacheHost serves the corecache guest with a host cache.
type coreCacheHost struct {
	url   string
	cache *cache.Cache
	logs  *guesttest.LogBuffer
}

func serveCoreCache(t *testing.T, eng engine.Engine, wasm []byte) *coreCacheHost {
	t.Helper()
	m, err := config.Parse("fastly.toml", []byte(`service_id = "svc-core"`), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	logs := &guesttest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pools := pool.NewManager(log)
	t.Cleanup(pools.Close)
	c := cache.New(cache.Config{MaxBytes: 16 << 20})
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pools, Logger: log, Env: server.GuestEnvFor(m), Cache: c}
	v, err := loader.Load(context.Background(), "1", wasm, m)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	srv := server.New(server.Config{Logger: log, SandboxTimeout: 20 * time.Second})
	srv.Activate(v)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &coreCacheHost{url: hs.URL, cache: c, logs: logs}
}

// call sends method path with body and returns the transcript line:
// status, the cache headers and the body.
func (h *coreCacheHost) call(t *testing.T, method, path, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, b := do(t, req)
	var parts []string
	for _, k := range []string{"X-Role", "X-State", "X-Meta", "X-Length", "X-Max-Age", "X-Swr", "X-Hits", "X-Body-Status", "X-Close-Status", "X-Cancel-Status", "X-Update-Status",
		"X-Old-State", "X-Old-Meta", "X-Old-Length", "X-Old-Max-Age", "X-Old-Swr", "X-Old-Hits", "X-Old-Body", "X-Insert-Status", "X-After-Insert"} {
		if v := resp.Header.Get(k); v != "" {
			parts = append(parts, strings.ToLower(k)+"="+v)
		}
	}
	return fmt.Sprintf("%s %s -> %d %s | %s", method, path, resp.StatusCode, strings.Join(parts, " "), b)
}

// TestCoreCacheConformance drives the corecache guest through the
// fastly_cache hostcalls on each engine: the outcomes asserted are the
// ABI's (abi/README.md, "fastly_cache"), and the transcripts (ages
// aside) are identical on every engine.
func TestCoreCacheConformance(t *testing.T) {
	transcripts := map[string]string{}
	var mu sync.Mutex
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serveCoreCache(t, eng, guests["corecache"])
		var tr strings.Builder
		step := func(method, path, body string, want ...string) {
			t.Helper()
			line := h.call(t, method, path, body)
			tr.WriteString(line + "\n")
			for _, w := range want {
				if !strings.Contains(line, w) {
					t.Errorf("%s %s: %q, want it to contain %q", method, path, line, w)
				}
			}
		}
		// lookup of a missing key: found nothing, the getters answer none (10).
		step("GET", "/lookup?key=a", "", "-> 404", "x-state=0 ", "x-meta=status 10", "x-length=status 10", "x-hits=status 10", "x-body-status=10")
		// insert, then lookups see it with its metadata; hits count.
		step("POST", "/insert?key=a&ttl=60000&swr=5000&meta=m1&sk=k1+k2&len=11", "hello world", "-> 200", "x-close-status=0")
		step("GET", "/lookup?key=a", "", "-> 200", "x-state=3 ", "x-meta=m1", "x-length=11", "x-max-age=60000ms", "x-swr=5000ms", "x-hits=1", "| hello world")
		step("GET", "/lookup?key=a", "", "x-hits=2", "| hello world")
		// ranges: from, to (inclusive), from only; to before from is the whole body.
		step("GET", "/lookup?key=a&from=6", "", "| world")
		step("GET", "/lookup?key=a&from=0&to=4", "", "| hello")
		step("GET", "/lookup?key=a&from=2&to=3", "", "| ll")
		step("GET", "/lookup?key=a&from=5&to=1", "", "| hello world")
		// to alone is a suffix (the last to bytes), as Fastly's reference
		// host reads it; a range past the end is the whole body.
		step("GET", "/lookup?key=a&to=5", "", "| world")
		step("GET", "/lookup?key=a&to=11", "", "| hello world")
		step("GET", "/lookup?key=a&to=12", "", "| hello world")
		step("GET", "/lookup?key=a&from=6&to=10", "", "| world")
		step("GET", "/lookup?key=a&from=6&to=11", "", "| hello world")
		step("GET", "/lookup?key=a&from=11", "", "| hello world")
		// insert replaces; no length given: the complete body's.
		step("POST", "/insert?key=a&ttl=60000", "replaced", "-> 200")
		step("GET", "/lookup?key=a", "", "x-meta=- ", "x-length=8", "x-hits=1", "| replaced")
		// a length that does not match the body: the object is not kept.
		step("POST", "/insert?key=short&ttl=60000&len=10", "abc", "x-close-status=1")
		step("GET", "/lookup?key=short", "", "-> 404", "x-state=0 ")
		// vary: the variant is per the named request header's value.
		step("POST", "/insert?key=v&ttl=60000&vary=X-Lang&rh=1", "english", "-> 200")
		// (the request headers of the lookup below have no X-Lang, nor had the insert's)
		step("GET", "/lookup?key=v&rh=1", "", "-> 200", "| english")

		// Transactions: a miss gives the obligation (state 8); the
		// inserter streams what it inserts back.
		step("POST", "/tx?key=t&ttl=60000&meta=tm", "transacted", "x-role=inserter", "x-state=8", "| transacted")
		step("GET", "/tx?key=t", "", "x-role=reader", "x-state=3 ", "x-meta=tm", "x-hits=1", "| transacted")
		step("GET", "/tx?key=t&async=1", "", "x-role=reader", "x-hits=2", "| transacted")
		// cancel: the next transaction_lookup gets the obligation again.
		step("GET", "/tx?key=c&cancel=1", "", "x-role=canceller", "x-cancel-status=0")
		step("POST", "/tx?key=c&ttl=60000&async=1", "after cancel", "x-role=inserter", "| after cancel")
		step("GET", "/lookup?key=c", "", "-> 200", "| after cancel")
		// a stale object within its stale-while-revalidate window: found,
		// usable, stale, and the first transaction_lookup must update it.
		step("POST", "/insert?key=s&ttl=1&swr=60000", "old", "-> 200")
		time.Sleep(20 * time.Millisecond)
		step("GET", "/lookup?key=s", "", "x-state=7 ", "| old")
		step("GET", "/tx?key=s&update=1&ttl=60000&meta=updated", "", "x-role=updater", "x-update-status=0")
		step("GET", "/lookup?key=s", "", "x-state=3 ", "x-meta=updated", "x-max-age=60000ms", "| old")

		// replace: the replaced object through replace_get_* (a replace
		// is not a hit), then replace_insert, which consumes the handle
		// (badf after); lookups see the replacement at once.
		step("POST", "/insert?key=r&ttl=60000&swr=5000&meta=m1", "old body", "-> 200")
		step("GET", "/lookup?key=r", "", "x-hits=1", "| old body")
		step("POST", "/replace?key=r&ttl=30000&meta=m2", "new body", "-> 200", "x-old-state=3 ", "x-old-meta=m1 ", "x-old-length=8 ",
			"x-old-max-age=60000ms", "x-old-swr=5000ms", "x-old-hits=1 ", "x-old-body=old body", "x-insert-status=0", "x-close-status=0", "x-after-insert=3", "| replaced")
		step("GET", "/lookup?key=r", "", "x-state=3 ", "x-meta=m2", "x-max-age=30000ms", "x-hits=1", "| new body")
		// Nothing to replace: the getters answer none (10); the insert
		// stores it. Strategy 3 (wait) with no pending insert starts at once.
		step("POST", "/replace?key=r2&ttl=60000&strategy=3", "fresh", "x-old-state=status 10", "x-old-meta=status 10", "x-old-hits=status 10",
			"x-old-body=status 10", "x-insert-status=0")
		step("GET", "/lookup?key=r2", "", "-> 200", "| fresh")
		// Strategy 2 (force miss) removes the object at once: closing
		// the handle without a replacement leaves the key empty, and the
		// next transaction_lookup gets the obligation.
		step("POST", "/replace?key=r2&strategy=2&noinsert=1", "", "x-old-state=3 ", "x-old-body=fresh", "x-close-status=0", "| not replaced")
		step("GET", "/lookup?key=r2", "", "-> 404", "x-state=0 ")
		step("GET", "/tx?key=r2&cancel=1", "", "x-role=canceller", "x-cancel-status=0")
		// Strategy 1 (immediate) keeps the object until the replacement.
		step("POST", "/replace?key=r&strategy=1&noinsert=1", "", "x-old-body=new body")
		step("GET", "/lookup?key=r", "", "-> 200", "| new body")
		// An unknown strategy, the reserved bit: inval.
		step("POST", "/replace?key=r&strategy=4", "", "-> 500", "| replace=2")

		step("GET", "/bad", "",
			"lookup empty key=2\n", "lookup key 4097 bytes=2\n", "lookup key 4096 bytes=0\n", "lookup key out of bounds=2\n",
			"lookup reserved bit=2\n", "lookup unknown bit=2\n", "lookup service=5\n", "lookup bad request handle=3\n",
			"lookup options out of bounds=2\n", "lookup misaligned out=6\n", "lookup out of bounds out=2\n",
			"insert key 4097 bytes=2\n", "insert reserved bit=2\n", "insert service=5\n", "insert misaligned options=6\n",
			"insert options out of bounds=2\n", "insert surrogate key 1025 bytes=2\n", "insert surrogate keys out of bounds=2\n",
			"insert bad request handle=3\n", "get_state bad handle=3\n", "close bad handle=3\n", "close_busy bad handle=3\n",
			"transaction_cancel bad handle=3\n", "lookup missing=0\n", "get_state missing=0,0\n", "get_length missing=10\n",
			"get_hits missing=10\n", "get_age_ns missing=10\n", "get_user_metadata missing=10\n", "get_body missing=10\n",
			"get_body reserved bit=2\n", "get_hits misaligned out=6\n", "transaction_insert without obligation=1\n",
			"transaction_update without obligation=1\n", "close=0\n", "close again=3\n", "insert with metadata=0\n",
			"close insert body=0\n", "lookup with metadata=0\n", "get_user_metadata small buffer=4,16\n",
			"transaction_lookup=0\n", "get_state=0,8\n", "transaction_update of nothing=1\n",
			"transaction_insert misaligned options=6\n", "transaction_cancel=0\n", "transaction_insert after cancel=1\n",
			"transaction_lookup again=0\n", "get_state again=0,8\n", "transaction_insert with length=0\n",
			"close short body=1\n", "lookup after short body=0\n", "get_state after short body=0,0\n",
			"is_request_cacheable GET=0,1\n", "is_request_cacheable HEAD=0,1\n", "is_request_cacheable POST=0,0\n",
			"is_request_cacheable PURGE=0,0\n", "is_request_cacheable bad handle=3\n")

		// Surrogate-key purges and the generation cover core objects.
		step("POST", "/insert?key=p&ttl=60000&sk=purge-me", "to purge", "-> 200")
		if n := h.cache.Purge("svc-core", "purge-me", false); n != 1 {
			t.Errorf("purge removed %d objects, want 1", n)
		}
		step("GET", "/lookup?key=p", "", "-> 404", "x-state=0 ")
		step("POST", "/insert?key=p&ttl=60000&sk=soft-me", "soft", "-> 200")
		h.cache.Purge("", "soft-me", true)
		step("GET", "/lookup?key=p", "", "-> 404", "x-state=0 ") // soft purge with no swr window: unusable
		h.cache.SetGeneration("svc-core", 2)
		step("GET", "/lookup?key=a", "", "-> 404", "x-state=0 ")
		mu.Lock()
		transcripts[eng.Name()] = tr.String()
		mu.Unlock()
	})
	var names []string
	for n := range transcripts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names[1:] {
		if transcripts[n] != transcripts[names[0]] {
			t.Errorf("%s and %s differ:\n%s\n---\n%s", names[0], n, transcripts[names[0]], transcripts[n])
		}
	}
}

// TestCoreCacheTransactionCollapse: while one sandbox holds a key's
// obligation, concurrent transaction_lookups of it wait; once it inserts
// they all read the object while it is still being written, and end with
// the whole body. The inserter's request body is a pipe the test feeds,
// so "still being written" is a state the test holds, not a timing.
func TestCoreCacheTransactionCollapse(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serveCoreCache(t, eng, guests["corecache"])
		pr, pw := io.Pipe()
		defer pw.Close()
		req, err := http.NewRequest("POST", h.url+"/tx?key=collapse&ttl=60000", pr)
		if err != nil {
			t.Fatal(err)
		}
		inserter, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer inserter.Body.Close()
		if r := inserter.Header.Get("X-Role"); r != "inserter" {
			t.Fatalf("first transaction: role %q, want inserter", r)
		}
		const readers = 5
		type result struct {
			role, first string
			rest        string
			err         error
		}
		results := make(chan result, readers)
		for range readers {
			go func() {
				resp, err := http.Get(h.url + "/tx?key=collapse")
				if err != nil {
					results <- result{err: err}
					return
				}
				defer resp.Body.Close()
				br := bufio.NewReader(resp.Body)
				first, err := br.ReadString('\n')
				if err != nil {
					results <- result{err: err}
					return
				}
				results <- result{role: resp.Header.Get("X-Role"), first: first}
				rest, err := io.ReadAll(br)
				results <- result{rest: string(rest), err: err}
			}()
		}
		// Every reader waits for the obligation: the cache counts them.
		deadline := time.Now().Add(10 * time.Second)
		for h.cache.Stats().Collapsed < readers {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d readers waiting after 10s", h.cache.Stats().Collapsed, readers)
			}
			time.Sleep(5 * time.Millisecond)
		}
		io.WriteString(pw, "first line\n")
		for range readers {
			r := <-results
			if r.err != nil || r.role != "reader" || r.first != "first line\n" {
				t.Fatalf("reader while the object is written: role %q first %q err %v", r.role, r.first, r.err)
			}
		}
		io.WriteString(pw, "second line\n")
		pw.Close()
		for range readers {
			r := <-results
			if r.err != nil || r.rest != "second line\n" {
				t.Errorf("reader's rest: %q, %v", r.rest, r.err)
			}
		}
		b, err := io.ReadAll(inserter.Body)
		if err != nil || string(b) != "first line\nsecond line\n" {
			t.Errorf("inserter's stream back: %q, %v", b, err)
		}
		if line := h.call(t, "GET", "/lookup?key=collapse", ""); !strings.Contains(line, "x-hits=6") || !strings.Contains(line, "| first line\nsecond line\n") {
			t.Errorf("after the transaction: %q", line)
		}
	})
}

// TestCoreCacheAbandonedInsert: an inserter whose sandbox ends without
// closing its body leaves no object; a reader streaming it sees the body
// end with an error, and the next transaction gets the obligation.
func TestCoreCacheAbandonedInsert(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serveCoreCache(t, eng, guests["corecache"])
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", h.url+"/tx?key=abandon&ttl=60000", pr)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		inserter, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(pw, "partial\n")
		resp, err := http.Get(h.url + "/tx?key=abandon")
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if first, err := br.ReadString('\n'); err != nil || first != "partial\n" || resp.Header.Get("X-Role") != "reader" {
			t.Fatalf("reader: %q %q %v", resp.Header.Get("X-Role"), first, err)
		}
		// The client goes away mid-body: the sandbox reading it ends.
		pw.CloseWithError(fmt.Errorf("client gone"))
		cancel()
		inserter.Body.Close()
		if rest, err := io.ReadAll(br); err == nil {
			t.Errorf("reader of an abandoned object: %q and no error", rest)
		}
		resp.Body.Close()
		deadline := time.Now().Add(10 * time.Second)
		for {
			line := h.call(t, "POST", "/tx?key=abandon&ttl=60000", "second try")
			if strings.Contains(line, "x-role=inserter") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the abandoned insert: %q", line)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if line := h.call(t, "GET", "/lookup?key=abandon", ""); !strings.Contains(line, "| second try") {
			t.Errorf("after the second insert: %q", line)
		}
	})
}

// TestCoreCacheTinyGoGuest: the corecache guest built with TinyGo gives
// the same answers as its Go build, on each engine.
func TestCoreCacheTinyGoGuest(t *testing.T) {
	tiny := guesttest.RequireTinyGoFixtures(t, "testdata/guests/corecache")["corecache"]
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		var reports [2]string
		for i, wasm := range [][]byte{guests["corecache"], tiny} {
			h := serveCoreCache(t, eng, wasm)
			var tr strings.Builder
			for _, c := range []struct{ method, path, body string }{
				{"POST", "/insert?key=a&ttl=60000&meta=m&sk=k&len=5", "hello"},
				{"GET", "/lookup?key=a&from=1&to=3", ""},
				{"POST", "/tx?key=t&ttl=60000", "tx body"},
				{"GET", "/tx?key=t&async=1", ""},
				{"GET", "/bad", ""},
			} {
				tr.WriteString(h.call(t, c.method, c.path, c.body) + "\n")
			}
			reports[i] = tr.String()
		}
		if reports[0] != reports[1] {
			t.Errorf("Go and TinyGo builds differ:\n%s\n---\n%s", reports[0], reports[1])
		}
		if !strings.Contains(reports[1], "| ell") || !strings.Contains(reports[1], "x-role=reader") {
			t.Errorf("TinyGo build:\n%s", reports[1])
		}
	})
}
