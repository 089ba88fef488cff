package server_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest/testhost"
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

// writeCountingListener counts the Write calls on the connections it
// accepts: each is one send to the client's socket.
type writeCountingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *writeCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeCountingConn{Conn: c, n: &l.writes}, nil
}

type writeCountingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *writeCountingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// TestReusedResponseOneWrite: a reused sandbox's small response (head,
// body and the chunked end) leaves in one write to the client's socket,
// as a plain net/http handler's does; it used to leave in two (a flush
// when the guest asked for its next request, then the last chunk).
// A response may take a second write when the 1 ms flush timer fires
// before the guest asks for its next request (a loaded machine), so the
// test asks that most responses take one.
func TestReusedResponseOneWrite(t *testing.T) {
	wasm := guests["hellomany"]
	th := testhost.New(t, wasm, testhost.Config{
		EngineConfig: engine.Config{CacheDir: compileCache},
		LogLevel:     slog.LevelDebug, Env: server.GuestEnv("test"), Policy: localDev(t),
	})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &writeCountingListener{Listener: inner}
	url := th.Serve(t, ln)
	get(t, url+"/") // the first request starts the sandbox
	const n = 40
	before := ln.writes.Load()
	for i := 0; i < n; i++ {
		if resp, body := get(t, url+"/"); resp.StatusCode != 200 || !strings.HasPrefix(body, "served ") {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if w := ln.writes.Load() - before; w >= n*3/2 {
		t.Fatalf("%d responses took %d writes to the client's socket, want about one each", n, w)
	}
}
