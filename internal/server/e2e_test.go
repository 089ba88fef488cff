package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/cache"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/guesttest/testhost"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// guests holds the fixture modules, built once in TestMain.
var guests = map[string][]byte{}

// compileCache is a compiled-code cache shared by every engine of the test
// run and by the other packages' test binaries
// (guesttest.SharedCompileCache), so each guest is compiled once
// (compiling is slow under -race).
var compileCache string

func TestMain(m *testing.M) {
	os.Exit(guesttest.Main(m, func(dir string, g map[string][]byte) {
		guests = g
		compileCache = guesttest.SharedCompileCache(dir + "/compile-cache")
	}, "examples/hello", "examples/proxy", "examples/dynamic-backend", "testdata/guests/dynbackend", "testdata/guests/hellomany", "testdata/guests/vcpumany", "testdata/guests/fastlystyle", "testdata/guests/badimport", "testdata/guests/badsig", "testdata/guests/tlsmeta", "testdata/guests/flood", "testdata/guests/hellopreinit", "testdata/guests/preinitbad", "testdata/guests/rawhello"))
}

type host struct {
	url    string
	srv    *server.Server
	loader *server.Loader
	logs   *guesttest.LogBuffer
}

type hostOpts struct {
	timeout time.Duration
	memMiB  int
	// sandboxes caps sandboxes at once; readStall and writeStall are
	// the downstream stall timeouts (server.Config; 0: the defaults).
	sandboxes             int
	readStall, writeStall time.Duration
	// waiting caps the sandboxes that gave their slot back while blocked
	// on their client (server.Config.MaxWaitingSandboxes; 0: the default).
	waiting int
	// pools configures the host's origin pools (nil: pool.NewManager).
	pools *pool.ManagerConfig
	// cache is the readthrough cache the sends go through (nil: none).
	cache *cache.Cache
}

// startHost serves wasm with the manifest text on a real loopback server.
func startHost(t *testing.T, wasm []byte, manifest string, o hostOpts) *host {
	t.Helper()
	h := testhost.New(t, wasm, testhost.Config{
		EngineConfig: engine.Config{MemoryLimitBytes: uint64(o.memMiB) << 20, CacheDir: compileCache},
		Manifest:     manifest, LogLevel: slog.LevelDebug, Env: server.GuestEnv("test"), Policy: localDev(t),
		Pools: o.pools, Cache: o.cache,
		Server: server.Config{SandboxTimeout: o.timeout, MaxConcurrentSandboxes: o.sandboxes,
			ReadStallTimeout: o.readStall, WriteStallTimeout: o.writeStall, MaxWaitingSandboxes: o.waiting},
	})
	return &host{url: h.Listen(t), srv: h.Server, loader: h.Loader, logs: h.Logs}
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
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

func backendManifest(origin string) string {
	return fmt.Sprintf("manifest_version = 3\nname = \"t\"\n[local_server.backends.origin]\nurl = %q\n", origin)
}

func TestHelloExample(t *testing.T) {
	h := startHost(t, guests["hello"], "", hostOpts{})
	resp, body := get(t, h.url+"/some/path?q=1", "User-Agent", "edgehost-test/1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	for _, want := range []string{"GET", "/some/path", "edgehost-test/1"} {
		if !strings.Contains(body, want) {
			t.Errorf("body %q lacks %q", body, want)
		}
	}
}

func TestProxyExample(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Origin", "yes")
		w.Header().Set("X-Seen-Path", r.URL.RequestURI())
		w.Header().Set("X-Seen-Header", r.Header.Get("X-Client"))
		fmt.Fprintf(w, "origin got %s %d bytes", r.Method, len(b))
	})
	h := startHost(t, guests["proxy"], backendManifest(origin.URL), hostOpts{})

	req, _ := http.NewRequest(http.MethodPost, h.url+"/a/b?c=d", strings.NewReader("hello body"))
	req.Header.Set("X-Client", "abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "origin got POST 10 bytes" {
		t.Fatalf("status %d body %q", resp.StatusCode, b)
	}
	for k, want := range map[string]string{"X-Origin": "yes", "X-Edgehost-Proxy": "1", "X-Seen-Path": "/a/b?c=d", "X-Seen-Header": "abc"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestProxyReusesOneOriginConnection(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	h := startHost(t, guests["proxy"], backendManifest(origin.URL), hostOpts{})
	for i := 0; i < 100; i++ {
		resp, body := get(t, h.url+"/")
		if resp.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: status %d body %q", i, resp.StatusCode, body)
		}
	}
	if n := origin.Conns(); n != 1 {
		t.Fatalf("100 sequential proxied requests opened %d origin connections, want 1", n)
	}
}

// TestProxyStreamsLargeBody: the origin sends half of a 10 MiB body and
// then waits until the client has received that half. A host that held
// the body whole would never deliver it. The heap, measured at that point,
// must not have grown by the body size: it is compared with the same
// request paused after 64 KiB (what one sandbox costs by itself).
func TestProxyStreamsLargeBody(t *testing.T) {
	small := heapGrowthMidBody(t, 64<<10)
	big := heapGrowthMidBody(t, 5<<20)
	t.Logf("heap growth mid-body: %d KiB after 64 KiB, %d KiB after 5 MiB of a 10 MiB body", small>>10, big>>10)
	if big-small > 2<<20 {
		t.Fatalf("heap grew %d KiB more with 5 MiB of body in flight than with 64 KiB: the body is being held", (big-small)>>10)
	}
}

// heapGrowthMidBody proxies a body of 2*half bytes, pauses the origin after
// half, and returns the live heap growth at that point.
func heapGrowthMidBody(t *testing.T, half int) int64 {
	size := 2 * half
	clientGotHalf := make(chan struct{})
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "warm")
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 1024) // 16 KiB
		for sent := 0; sent < size; sent += len(chunk) {
			if sent == half {
				w.(http.Flusher).Flush()
				select {
				case <-clientGotHalf:
				case <-time.After(20 * time.Second):
					return // the test fails on the short body
				}
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	h := startHost(t, guests["proxy"], backendManifest(origin.URL), hostOpts{})
	get(t, h.url+"/warm-up")

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, err := http.Get(h.url + "/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.CopyN(io.Discard, resp.Body, int64(half)); err != nil {
		t.Fatalf("reading the first half: %v", err)
	}
	runtime.GC()
	var mid runtime.MemStats
	runtime.ReadMemStats(&mid)
	close(clientGotHalf)
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != int64(size-half) {
		t.Fatalf("second half: %d bytes, %v", n, err)
	}
	return int64(mid.HeapAlloc) - int64(before.HeapAlloc)
}

func TestFastlyStyleGuest(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from origin "+r.URL.Path) })
	h := startHost(t, guests["fastlystyle"], backendManifest(origin.URL), hostOpts{})
	tests := []struct {
		path, want string
		hdr        string
	}{
		{"/hi", "fastlystyle GET /hi\nheaders: accept-encoding,user-agent,x-long-header-name-for-paging,host\n", ""},
		{"/stub", "stub status 5\n", ""},
		{"/purge", "purge status 0\n", ""}, // implemented; this host has no cache to purge
		{"/proxy/x", "from origin /proxy/x", "1"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, h.url+tc.path, "User-Agent", "t", "X-Long-Header-Name-For-Paging", "v")
			if resp.StatusCode != 200 || body != tc.want {
				t.Fatalf("status %d body %q, want %q\nlogs:\n%s", resp.StatusCode, body, tc.want, h.logs)
			}
			if got := resp.Header.Get("X-Fastlystyle"); got != tc.hdr {
				t.Errorf("X-Fastlystyle = %q, want %q", got, tc.hdr)
			}
		})
	}
}

// TestGuestFailuresAreIsolated: each failing request gets a 5xx with a
// short body and a log line; the server goes on serving.
//
// A guest that fails by itself runs under a generous wall-clock limit, so
// that a loaded machine cannot turn its failure into the limit's 504; only
// /loop needs the limit to end, and its host's limit is short yet leaves
// the request after it time to finish.
func TestGuestFailuresAreIsolated(t *testing.T) {
	h := startHost(t, guests["fastlystyle"], "", hostOpts{timeout: 30 * time.Second, memMiB: 64})
	limited := startHost(t, guests["fastlystyle"], "", hostOpts{timeout: 2 * time.Second, memMiB: 64})
	tests := []struct {
		path   string
		host   *host
		status int
		log    string
	}{
		{"/trap", h, 500, "exited with code 2"},
		{"/exit", h, 500, "exited with code 3"},
		{"/none", h, 500, "guest sent no response"},
		{"/loop", limited, 504, "wall-clock limit"},
		{"/mem", h, 500, "exited with code"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			h := tc.host
			resp, body := get(t, h.url+tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.status, body)
			}
			if len(body) == 0 || len(body) > 300 {
				t.Errorf("error body should be short and say why: %q", body)
			}
			if !strings.Contains(h.logs.String(), tc.log) {
				t.Errorf("log lacks %q", tc.log)
			}
			resp, body = get(t, h.url+"/after")
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "fastlystyle GET /after") {
				t.Fatalf("server stopped serving after %s: %d %q", tc.path, resp.StatusCode, body)
			}
		})
	}
}

func TestHandMadeModules(t *testing.T) {
	// Only the loop needs the wall-clock limit to end; the others end by
	// themselves, under a limit a loaded machine cannot reach first.
	tests := []struct {
		name    string
		wasm    []byte
		timeout time.Duration
		status  int
	}{
		{"trap", guesttest.TrapModule(), 30 * time.Second, 500},
		{"loop", guesttest.LoopModule(), 200 * time.Millisecond, 504},
		{"grow past the memory cap", guesttest.GrowModule(), 30 * time.Second, 500},
		{"returns without responding", guesttest.NopModule(), 30 * time.Second, 500},
		{"hostcall without a memory", guesttest.MemorylessHostcallModule(), 30 * time.Second, 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startHost(t, tc.wasm, "", hostOpts{timeout: tc.timeout, memMiB: 8})
			resp, body := get(t, h.url+"/")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tc.status, body)
			}
			// A hostcall's pointer into a memory the guest lacks gets a
			// status, not a host panic (recovered, but a bug).
			if strings.Contains(h.logs.String(), "hostcall panicked") {
				t.Errorf("a hostcall panicked:\n%s", h.logs)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	eng, err := guesttest.Engine(engine.Config{CacheDir: compileCache})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pool.NewManager(log), Logger: log}
	tests := []struct {
		name string
		wasm []byte
		want string
		is   error
	}{
		{"not wasm", []byte("hello, world"), "invalid wasm module", engine.ErrInvalidModule},
		{"truncated", guesttest.TrapModule()[:20], "invalid wasm module", engine.ErrInvalidModule},
		{"unknown module", guests["badimport"], `env.not_provided: unknown module "env"`, nil},
		{"mistyped fastly import", guests["badsig"], "import fastly_http_req.new has signature (ii)->(i), the ABI's is (i)->(i)", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loader.Load(context.Background(), "x", tc.wasm, config.Default())
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

// TestStreamedResponseFraming: a streamed response (examples/hello sends
// its head with send_downstream streaming, then writes and closes the
// body) reaches an HTTP/1.1 client chunked, however soon the guest ended,
// and in full, one request after another on a kept-alive connection.
func TestStreamedResponseFraming(t *testing.T) {
	h := startHost(t, guests["hello"], "", hostOpts{})
	for i := 0; i < 20; i++ {
		resp, err := http.Get(h.url + "/framing")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("request %d: reading the body: %v", i, err)
		}
		if resp.StatusCode != 200 || !strings.Contains(string(b), "path: /framing\n") {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
		if te := resp.TransferEncoding; len(te) != 1 || te[0] != "chunked" || resp.ContentLength != -1 {
			t.Fatalf("request %d: Transfer-Encoding %v, Content-Length %d; want chunked and none", i, te, resp.ContentLength)
		}
	}
}
