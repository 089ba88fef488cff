package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/preinit"
)

// TestPreinitSandboxesStartFromSnapshot serves testdata/guests/hellopreinit,
// a Go guest built with guestsdk/preinit, on the engine
// EDGEHOST_TEST_ENGINE selects. Every answer must come from a sandbox
// that starts where the deploy-time _initialize left off: the init
// function ran once (in the snapshot), no request before it is visible,
// and the sandbox's own FASTLY_TRACE_ID and arguments are there. A
// request that grows the memory, traps or exits changes nothing for the
// next ones.
func TestPreinitSandboxesStartFromSnapshot(t *testing.T) {
	h := startHost(t, guests["hellopreinit"], "", hostOpts{})
	traces := map[string]bool{}
	check := func(path string) {
		t.Helper()
		a := do(t, h.url, "GET", path, "")
		if a.status != 200 || !strings.Contains(a.body, "path: "+path+"\n") {
			t.Fatalf("GET %s: %d %q\nlogs:\n%s", path, a.status, a.body, h.logs)
		}
		lines := strings.Split(strings.TrimSuffix(a.body, "\n"), "\n")
		state := lines[len(lines)-1]
		var trace string
		if _, err := fmt.Sscanf(state, `inits 1 served 1 last "" trace %s args 1`, &trace); err != nil || trace == "" {
			t.Fatalf("GET %s: state %q: want inits 1 served 1 last \"\" trace <id> args 1 (%v)", path, state, err)
		}
		if traces[trace] {
			t.Fatalf("GET %s: FASTLY_TRACE_ID %s seen before: the environment is the snapshot's", path, trace)
		}
		traces[trace] = true
	}
	check("/a")
	check("/b")
	check("/grow")
	check("/c")
	for path, want := range map[string]int{"/trap": 500, "/exit": 500} {
		if a := do(t, h.url, "GET", path, ""); a.status != want {
			t.Fatalf("GET %s: %d %q, want %d", path, a.status, a.body, want)
		}
		check(path + "/after")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				resp, err := http.Get(fmt.Sprintf("%s/par/%d/%d", h.url, g, i))
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(b), `inits 1 served 1 last "" trace `) {
					errs <- fmt.Errorf("parallel request %d/%d: %d %q", g, i, resp.StatusCode, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPreinitInitCallsHostcall loads testdata/guests/preinitbad, whose init
// function calls fastly_http_req.new: the load fails with preinit.ErrInit
// naming the hostcall, and the host keeps nothing of it.
func TestPreinitInitCallsHostcall(t *testing.T) {
	h := startHost(t, guests["hello"], "", hostOpts{})
	_, err := h.loader.Load(context.Background(), "2", guests["preinitbad"], config.Default())
	if !errors.Is(err, preinit.ErrInit) || !strings.Contains(err.Error(), "fastly_http_req.new") {
		t.Fatalf("load: %v; want preinit.ErrInit naming fastly_http_req.new", err)
	}
	if a := do(t, h.url, "GET", "/still", ""); a.status != 200 {
		t.Fatalf("the version before stopped serving: %d %q", a.status, a.body)
	}
}
