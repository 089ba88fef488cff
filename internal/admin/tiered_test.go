package admin_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// activeTier is the tier object GET /v1/modules reports for the active
// version.
func activeTier(t *testing.T, h *testHost) map[string]any {
	t.Helper()
	list := h.call(t, http.MethodGet, "/v1/modules", nil, "", "")
	for _, v := range list.body["versions"].([]any) {
		v := v.(map[string]any)
		if v["active"] == true {
			tier, _ := v["tier"].(map[string]any)
			if tier == nil {
				t.Fatalf("active version without a tier: %s", list.raw)
			}
			return tier
		}
	}
	t.Fatalf("no active version: %s", list.raw)
	return nil
}

func sandboxes(tier map[string]any, name string) int {
	m, _ := tier["sandboxes"].(map[string]any)
	n, _ := m[name].(float64)
	return int(n)
}

// TestTieredDeploy deploys a module the host has never compiled with
// tiered compilation on (README.md, "Engines"): on wazero it serves from
// the interpreter before the optimized compile ends, requests keep
// succeeding across the switch, new sandboxes then run optimized code,
// and a restart with the compiled-code cache (or a second deploy of the
// same code) runs optimized code at once. wasmtime has no fast tier: its
// deploys report optimized code from the start.
func TestTieredDeploy(t *testing.T) {
	dir := t.TempDir()
	h := startHost(t, dir, hostOpts{ownCache: true, tiered: true})
	// examples/hello built with Go (3 MB) takes seconds to compile
	// optimized; under the race detector wazero's compiler is several
	// times slower, so the race build deploys it built with TinyGo
	// (about 200 KB), which still takes longer to compile than a request
	// on the interpreter takes.
	wasm := guests["hello"]
	if raceEnabled {
		wasm = guesttest.RequireTinyGoFixtures(t, "examples/hello")["hello"]
	}
	fetch := func() error {
		resp, err := http.Get(h.url + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), helloText) {
			return fmt.Errorf("%d %q", resp.StatusCode, b)
		}
		return nil
	}

	dep := h.deploy(t, wasm, "")
	tier, _ := dep.body["tier"].(map[string]any)
	if guesttest.EngineName() == "wasmtime" {
		if tier == nil || tier["tier"] != "optimized" || tier["compiling"] == true {
			t.Fatalf("wasmtime deploy: %s, want tier optimized", dep.raw)
		}
		if err := fetch(); err != nil {
			t.Fatal(err)
		}
		return
	}
	if tier == nil || tier["tier"] != "interpreter" || tier["compiling"] != true {
		t.Fatalf("first deploy of a module: %s, want tier interpreter, compiling", dep.raw)
	}

	// Two clients fetch until the switch and a little after it, each
	// pausing 200 ms between requests (the compile shares the CPUs with
	// them); every answer must be the guest's.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []error
		before   int // answers received while the status still said interpreter
		after    int
	)
	switched := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(3 * time.Minute)
			extra := 0
			for time.Now().Before(deadline) && extra < 3 {
				err := fetch()
				time.Sleep(200 * time.Millisecond)
				select {
				case <-switched:
					extra++
				default:
				}
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				}
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st := activeTier(t, h)
		if st["tier"] == "optimized" {
			if st["compiling"] == true || st["switched_after_ms"] == nil {
				t.Errorf("after the switch: %v, want compiling false and switched_after_ms", st)
			}
			before = sandboxes(st, "interpreter")
			after = sandboxes(st, "optimized")
			close(switched)
			break
		}
		if st["error"] != nil || st["compiling"] != true {
			t.Fatalf("on the interpreter, not compiling: %v", st)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no switch to optimized code in 3 minutes: %v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed around the switch, first: %v", len(failures), failures[0])
	}
	if before == 0 {
		t.Errorf("no sandbox ran on the interpreter before the switch")
	}

	// New sandboxes run optimized code: five more requests, five more
	// optimized sandboxes, no more on the interpreter.
	st := activeTier(t, h)
	interp, opt := sandboxes(st, "interpreter"), sandboxes(st, "optimized")
	if opt < after || interp < before {
		t.Fatalf("counts went down: %v (were %d interpreter, %d optimized)", st, before, after)
	}
	for range 5 {
		if err := fetch(); err != nil {
			t.Fatal(err)
		}
	}
	st = activeTier(t, h)
	if got := sandboxes(st, "optimized"); got != opt+5 {
		t.Errorf("optimized sandboxes %d after 5 requests, want %d: %v", got, opt+5, st)
	}
	if got := sandboxes(st, "interpreter"); got != interp {
		t.Errorf("interpreter sandboxes went from %d to %d after the switch: %v", interp, got, st)
	}
	t.Logf("%d sandboxes on the interpreter, then %d optimized; switch after %v ms", interp, sandboxes(st, "optimized"), st["switched_after_ms"])

	// The same code again: the cache has it, so it is compiled optimized
	// at once.
	dep = h.deploy(t, wasm, "")
	if tier, _ := dep.body["tier"].(map[string]any); tier == nil || tier["tier"] != "optimized" || tier["compiling"] == true {
		t.Errorf("second deploy of the same module: %s, want tier optimized", dep.raw)
	}

	// A restart serves the active version from the cache, optimized.
	h.stop()
	h = startHost(t, dir, hostOpts{ownCache: true, tiered: true})
	if st := activeTier(t, h); st["tier"] != "optimized" || st["compiling"] == true {
		t.Errorf("after a restart: %v, want optimized", st)
	}
	if err := fetch(); err != nil {
		t.Fatalf("after a restart: %v", err)
	}

	// New code onto a version that serves: the upload waits for the
	// optimized code, so the old version serves until then and no
	// sandbox of the new one runs on the interpreter.
	other := guests["proxy"]
	if raceEnabled {
		other = guesttest.RequireTinyGoFixtures(t, "examples/proxy")["proxy"]
	}
	dep = h.deploy(t, other, "")
	tier, _ = dep.body["tier"].(map[string]any)
	if tier == nil || tier["tier"] != "optimized" || tier["compiling"] == true || sandboxes(tier, "interpreter") != 0 {
		t.Errorf("deploy of new code over a serving version: %s, want tier optimized, no interpreter sandboxes", dep.raw)
	}
}
