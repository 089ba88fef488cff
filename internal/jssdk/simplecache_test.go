package jssdk_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest/testhost"
)

// TestJSSimpleCache: fastly:cache's SimpleCache over the core cache
// hostcalls, end to end: getOrSet stores the value its producer gives,
// a second getOrSet is a hit that does not call the producer, get sees
// the value, and a purge of the key's surrogate key (simpleCacheSurrogateKey)
// removes it.
func TestJSSimpleCache(t *testing.T) {
	h, get, getOrSet := simpleCacheHost(t)
	if resp, body := get("GET", "/sc/get?key=greeting"); resp.StatusCode != 404 {
		t.Fatalf("get before any set: %d %q", resp.StatusCode, body)
	}
	getOrSet("first", "first", "true")
	getOrSet("second", "first", "false") // a hit: the producer is not called
	if resp, body := get("GET", "/sc/get?key=greeting"); resp.StatusCode != 200 || body != "first" {
		t.Fatalf("get after getOrSet: %d %q", resp.StatusCode, body)
	}
	if n := h.Cache.Purge("js-simple", simpleCacheSurrogateKey("greeting"), false); n != 1 {
		t.Fatalf("purging the entry's surrogate key removed %d objects, want 1", n)
	}
	if resp, body := get("GET", "/sc/get?key=greeting"); resp.StatusCode != 404 {
		t.Fatalf("get after the purge: %d %q", resp.StatusCode, body)
	}
	getOrSet("third", "third", "true")
	for _, line := range strings.Split(h.Logs.String(), "\n") {
		if strings.Contains(line, "does not implement") {
			t.Errorf("guest called an unimplemented hostcall: %s", line)
		}
	}
}

// TestJSSimpleCachePurge: SimpleCache.purge (fastly_purge.purge_surrogate_key
// with the key's surrogate key) removes the entry for the next request.
func TestJSSimpleCachePurge(t *testing.T) {
	if !implemented("fastly_purge", "purge_surrogate_key") {
		t.Skip("SimpleCache.purge needs fastly_purge.purge_surrogate_key, which this build does not implement")
	}
	_, get, getOrSet := simpleCacheHost(t)
	getOrSet("first", "first", "true")
	if resp, body := get("POST", "/sc/purge?key=greeting"); resp.StatusCode != 200 {
		t.Fatalf("purge: %d %q", resp.StatusCode, body)
	}
	if resp, body := get("GET", "/sc/get?key=greeting"); resp.StatusCode != 404 {
		t.Fatalf("get after SimpleCache.purge: %d %q", resp.StatusCode, body)
	}
	getOrSet("second", "second", "true")
}

// simpleCacheHost serves testdata/jsguests/simplecache.js (service
// "js-simple") and returns the host, a request helper (method, path: the
// response and its body) and getOrSet(value, want body, want X-Produced)
// of key "greeting".
func simpleCacheHost(t *testing.T) (*testhost.Host, func(method, path string) (*http.Response, string), func(value, wantBody, wantProduced string)) {
	t.Helper()
	wasm := jsGuest(t, "simplecache")
	h := testhost.New(t, wasm, testhost.Config{Manifest: `service_id = "js-simple"`, EngineConfig: engine.Config{CacheDir: shared.cache}, Cache: cache.New(cache.Config{})})
	url := h.Listen(t)
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	getOrSet := func(value, wantBody, wantProduced string) {
		t.Helper()
		resp, body := get("GET", "/sc/getorset?key=greeting&ttl=60&value="+value)
		if resp.StatusCode != 200 || body != wantBody || resp.Header.Get("X-Produced") != wantProduced {
			t.Fatalf("getOrSet(%s): %d %q produced=%s, want %q produced=%s", value, resp.StatusCode, body, resp.Header.Get("X-Produced"), wantBody, wantProduced)
		}
	}
	return h, get, getOrSet
}

// simpleCacheSurrogateKey is the surrogate key the JS SDK (3.46.0) tags a
// SimpleCache entry of key with, and purges for it: the SHA-256 of the key
// in upper-case hex with colons between the bytes, cut to its first 32
// characters, without the colons (22 hex digits).
func simpleCacheSurrogateKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	var b strings.Builder
	for i, c := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return strings.ReplaceAll(b.String()[:32], ":", "")
}

// implemented reports whether edgehost implements hostcall module.name
// (abi.Hostcalls).
func implemented(module, name string) bool {
	for _, hc := range abi.Hostcalls() {
		if hc.Module == module && hc.Name == name {
			return hc.Implemented
		}
	}
	return false
}
