package conformance_test

import (
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestGoSDKHTTPCache runs the gosdkcache guest, which makes the hostcalls
// of Fastly's Go SDK Send with guest caching in that SDK's order and
// masks, against a counting origin on each engine; and checks that the
// objects it stores and those of the readthrough cache (a plain send,
// X-Mode: send) are one cache (README.md, "Caching").
func TestGoSDKHTTPCache(t *testing.T) {
	// Fastly's Go SDK is built with TinyGo or Go: the guest is built with both.
	builds := map[string][]byte{
		"go":     guests["gosdkcache"],
		"tinygo": guesttest.RequireTinyGoFixtures(t, "testdata/guests/gosdkcache")["gosdkcache"],
	}
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		for _, build := range []string{"go", "tinygo"} {
			t.Run(build, func(t *testing.T) { goSDKHTTPCache(t, eng, builds[build]) })
		}
	})
}

func goSDKHTTPCache(t *testing.T, eng engine.Engine, wasm []byte) {
	{
		origin := httpCacheOrigin(t)
		c := cache.New(cache.Config{MaxBytes: 16 << 20})
		url := serveHTTPCache(t, eng, wasm, origin.URL, c)
		get := func(path string, hdr ...string) (map[string]string, string) {
			t.Helper()
			resp, body := get(t, url+path, hdr...)
			h := map[string]string{"status": resp.Status}
			for _, k := range []string{"X-Role", "X-State", "X-Action", "X-Sugg-Mask", "X-Sugg-Max-Age", "X-Sugg-Sk", "X-Cache", "X-Steps", "Cache-Control"} {
				h[k] = resp.Header.Get(k)
			}
			return h, body
		}
		check := func(what string, h map[string]string, body, wantBody string, kv ...string) {
			t.Helper()
			if body != wantBody {
				t.Errorf("%s: body %q, want %q (headers %v)", what, body, wantBody, h)
			}
			for i := 0; i+1 < len(kv); i += 2 {
				if h[kv[i]] != kv[i+1] {
					t.Errorf("%s: %s = %q, want %q (headers %v)", what, kv[i], h[kv[i]], kv[i+1], h)
				}
			}
		}
		count := func(path string, n int) {
			t.Helper()
			if got := origin.count(path); got != n {
				t.Errorf("origin saw %d requests for %s, want %d", got, path, n)
			}
		}

		// A miss: the SDK's whole fill sequence succeeds, every call ok
		// except get_found_response before the insert (none, 10).
		h, body := get("/obj/fresh")
		check("sdk miss", h, body, "fresh body", "X-Role", "inserter", "X-State", "8", "X-Action", "0",
			"X-Sugg-Max-Age", "60000ms", "X-Sugg-Sk", "k1 k2")
		wantSteps := "cache_override_v2_set=0 is_request_cacheable=0 is_request_cacheable=0 transaction_lookup=0 get_state=0 get_found_response=10 " +
			"get_suggested_backend_request=0 cache_override_v2_set=0 send_async_v2=0 pending_req_wait_v2=0 prepare_response_for_storage=0 " +
			"get_suggested_cache_options=0 known_length=0 transaction_insert_and_stream_back=0 append=0 body_close=0 get_found_response=0 get_hits=0 " +
			"get_max_age_ns=0 get_vary_rule=0 get_age_ns=0 get_stale_while_revalidate_ns=0 get_surrogate_keys=0 get_length=0 get_sensitive_data=0 get_stale_if_error_ns=0 close=0"
		if got := h["X-Steps"]; got != wantSteps {
			t.Errorf("sdk miss steps:\n got %s\nwant %s", got, wantSteps)
		}
		// Every suggestion the SDK asks for comes back, with its bits set
		// (vary, initial age, swr, surrogate keys, length, stale-if-error).
		if m := h["X-Sugg-Mask"]; m != "190" {
			t.Errorf("suggested options mask %s, want 190", m)
		}
		h, body = get("/obj/fresh")
		check("sdk hit", h, body, "fresh body", "X-Role", "hit", "X-State", "3")
		if s := h["X-Steps"]; strings.Contains(s, "get_suggested_backend_request") || !strings.Contains(s, "get_found_response=0 get_hits=0") {
			t.Errorf("sdk hit steps: %s", s)
		}
		count("/obj/fresh", 1)

		// One cache: the plain send finds what the HTTP cache API stored
		// for the same request and backend...
		h, body = get("/obj/fresh", "X-Mode", "send")
		check("send after sdk", h, body, "fresh body", "X-Role", "send", "X-Cache", "HIT")
		count("/obj/fresh", 1)
		// ... and the HTTP cache API finds what a send stored.
		h, body = get("/obj/other", "X-Mode", "send")
		check("send miss", h, body, "body of /obj/other", "X-Cache", "MISS")
		h, body = get("/obj/other")
		check("sdk after send", h, body, "body of /obj/other", "X-Role", "hit", "X-State", "3")
		count("/obj/other", 1)

		// private: the SDK records it not cacheable; then both the SDK
		// (collapsing disabled: send_v3) and a plain send pass.
		h, body = get("/obj/private")
		check("sdk private", h, body, "private", "X-Role", "recorder", "X-Action", "3")
		h, body = get("/obj/private")
		check("sdk private again", h, body, "private", "X-Role", "pass")
		if s := h["X-Steps"]; !strings.HasSuffix(s, "get_state=0 get_found_response=10 close=0 send_v3=0") {
			t.Errorf("sdk pass steps: %s", s)
		}
		h, body = get("/obj/private", "X-Mode", "send")
		check("send private", h, body, "private", "X-Cache", "MISS")
		count("/obj/private", 3)
		// The readthrough cache's hit-for-pass makes the SDK's lookup pass.
		h, body = get("/obj/private?s=1", "X-Mode", "send")
		check("send private first", h, body, "private", "X-Cache", "MISS")
		h, body = get("/obj/private?s=1")
		check("sdk after the send's hit-for-pass", h, body, "private", "X-Role", "pass")
		count("/obj/private", 5)

		// An uncacheable status: not stored, abandoned.
		h, body = get("/obj/err")
		check("sdk 500", h, body, "err", "X-Role", "nostore", "X-Action", "2")
		h, body = get("/obj/err")
		check("sdk 500 again", h, body, "err", "X-Role", "nostore")
		count("/obj/err", 2)

		// A stale response within stale-while-revalidate: the SDK serves
		// it and revalidates (a 304 updates it) after answering.
		h, body = get("/obj/reval")
		check("reval miss", h, body, "reval body", "X-Role", "inserter")
		h, body = get("/obj/reval")
		check("reval stale hit", h, body, "reval body", "X-Role", "hit", "X-State", "15")
		h, body = get("/obj/reval")
		check("reval fresh after the update", h, body, "reval body", "X-Role", "hit", "X-State", "3")
		count("/obj/reval", 2)
		if got := origin.lastHeader("/obj/reval").Get("If-None-Match"); got != `"r1"` {
			t.Errorf("revalidation's If-None-Match = %q, want \"r1\"", got)
		}

		// An override key (32 bytes, as the SDK requires) names its own
		// object.
		key := strings.Repeat("k", 32)
		h, body = get("/obj/keyed?key=" + key)
		check("keyed miss", h, body, "body of /obj/keyed", "X-Role", "inserter")
		h, body = get("/obj/keyed?key=" + key)
		check("keyed hit", h, body, "body of /obj/keyed", "X-Role", "hit")
		count("/obj/keyed", 1)
		// Without guest caching the SDK gives a send its override key in
		// the fastly-xqd-cache-key header: the readthrough cache keys by
		// it (and consumes it), so a lookup with that key for another
		// URL finds the object.
		key2 := strings.Repeat("q", 32)
		h, body = get("/obj/xkey?key="+key2, "X-Mode", "send")
		check("send with an override key", h, body, "body of /obj/xkey", "X-Cache", "MISS")
		if v := origin.lastHeader("/obj/xkey").Get("Fastly-Xqd-Cache-Key"); v != "" {
			t.Errorf("the origin saw fastly-xqd-cache-key %q", v)
		}
		h, body = get("/obj/elsewhere?key=" + key2)
		check("sdk lookup by the send's override key", h, body, "body of /obj/xkey", "X-Role", "hit")
		count("/obj/elsewhere", 0)
	}
}
