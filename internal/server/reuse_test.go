package server_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/server"
)

// TestSandboxReuse: a guest using guestsdk.ServeMany (next_request) serves
// requests in turn in one sandbox; a failure ends that sandbox only, and
// the next request gets a fresh one.
func TestSandboxReuse(t *testing.T) {
	h := startHost(t, guests["hellomany"], "", hostOpts{timeout: 2 * time.Second})
	for i := 1; i <= 10; i++ {
		resp, body := get(t, h.url+"/")
		if want := "served " + strconv.Itoa(i); resp.StatusCode != 200 || body != want {
			t.Fatalf("request %d: %d %q, want %q (one sandbox serving in turn)", i, resp.StatusCode, body, want)
		}
	}
	for _, tc := range []struct {
		path   string
		status int
	}{{"/trap", 500}, {"/loop", 504}} {
		if resp, body := get(t, h.url+tc.path); resp.StatusCode != tc.status {
			t.Fatalf("%s: %d %q, want %d", tc.path, resp.StatusCode, body, tc.status)
		}
		if resp, body := get(t, h.url+"/"); resp.StatusCode != 200 || body != "served 1" {
			t.Fatalf("after %s: %d %q, want a fresh sandbox", tc.path, resp.StatusCode, body)
		}
	}
}

func TestSandboxReuseConcurrent(t *testing.T) {
	h := startHost(t, guests["hellomany"], "", hostOpts{})
	var wg sync.WaitGroup
	errs := make(chan string, 400)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				resp, body := get(t, h.url+"/")
				if resp.StatusCode != 200 || !strings.HasPrefix(body, "served ") {
					errs <- body
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("failed request: %q", e)
	}
}

// TestRetireEndsParkedSandboxes: after a new version is activated, the
// old one's parked sandboxes end and Retire returns; requests go to the new
// version.
func TestRetireEndsParkedSandboxes(t *testing.T) {
	h := startHost(t, guests["hellomany"], "", hostOpts{})
	get(t, h.url+"/") // leaves a parked sandbox
	old := h.srv.Active()
	v, err := h.loader.Load(context.Background(), "2", guests["hello"], config.Default())
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Activate(v)
	done := make(chan error, 1)
	go func() { done <- server.Retire(context.Background(), old) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("Retire did not end the parked sandbox within 1 s")
	}
	if _, body := get(t, h.url+"/x"); !strings.HasPrefix(body, "hello from edgehost") {
		t.Fatalf("new version not serving: %q", body)
	}
}
