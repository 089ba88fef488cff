package server_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestFreshSandboxesStartClean serves testdata/guests/leftover built with
// TinyGo (whose fresh sandboxes run on reset instances on wazero: README.md,
// Engines) and sends it requests one after another and many at once, on
// the engine EDGEHOST_TEST_ENGINE selects: every answer must show none of
// the state earlier requests left in package variables, the heap or a
// large array.
func TestFreshSandboxesStartClean(t *testing.T) {
	wasm := guesttest.RequireTinyGoFixtures(t, "testdata/guests/leftover")["leftover"]
	h := startHost(t, wasm, "", hostOpts{})
	const want = "served=0 last= heap=0 mark=0\n"
	for i := 0; i < 20; i++ {
		if a := do(t, h.url, "GET", fmt.Sprintf("/seq/%d", i), ""); a.status != 200 || a.body != want {
			t.Fatalf("request %d: %d %q; want 200 %q\nlogs:\n%s", i, a.status, a.body, want, h.logs)
		}
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				resp, err := http.Get(h.url + fmt.Sprintf("/par/%d/%d", g, i))
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || string(b) != want {
					t.Errorf("request %d/%d: %d %q (%v); want 200 %q", g, i, resp.StatusCode, b, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
