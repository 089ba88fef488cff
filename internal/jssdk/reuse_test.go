package jssdk_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest/testhost"
)

// TestReusableSandbox: a JS guest that asks for sandbox reuse
// (fastly:experimental setReusableSandboxOptions, testdata/jsguests/
// hellomany.js) serves requests in turn in one sandbox through
// next_request: its module-level counter goes on from one request to the
// next, and the access log says the sandbox was reused; concurrent
// requests are all answered (a parked sandbox takes one, new sandboxes
// the others).
func TestReusableSandbox(t *testing.T) {
	wasm := jsGuest(t, "hellomany")
	h := testhost.New(t, wasm, testhost.Config{EngineConfig: engine.Config{CacheDir: shared.cache}})
	url := h.Listen(t)
	get := func() string {
		t.Helper()
		resp, err := http.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d, body %q, err %v", resp.StatusCode, b, err)
		}
		return string(b)
	}
	for _, want := range []string{"served 1", "served 2", "served 3", "served 4"} {
		if got := get(); got != want {
			t.Fatalf("got %q, want %q (one sandbox serving in turn)", got, want)
		}
	}
	if n := strings.Count(h.Logs.String(), "sandbox=reused"); n < 3 {
		t.Errorf("access log has %d reused-sandbox lines, want 3:\n%s", n, h.Logs)
	}

	// Eight at once.
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = get()
		}()
	}
	wg.Wait()
	for _, g := range got {
		if !strings.HasPrefix(g, "served ") {
			t.Fatalf("concurrent request got %q", g)
		}
	}
}
