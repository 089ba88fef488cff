package conformance_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/guesttest/testhost"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// guests holds the fixture modules, built once in TestMain.
var guests = map[string][]byte{}

// compileCache is shared by the engines of tests that do not test caching
// themselves, and with the other packages' test binaries
// (guesttest.SharedCompileCache), so each guest is compiled once per
// engine (slow under -race).
var compileCache string

func TestMain(m *testing.M) {
	os.Exit(guesttest.Main(m, func(dir string, g map[string][]byte) {
		guests = g
		compileCache = guesttest.SharedCompileCache(filepath.Join(dir, "compile-cache"))
	}, "testdata/guests/abiconf", "testdata/guests/vcpumany", "testdata/guests/fastlystyle", "testdata/guests/sdkmeta", "testdata/guests/badimport", "testdata/guests/badsig", "testdata/guests/badstubsig", "testdata/guests/kvsecret", "testdata/guests/services", "testdata/guests/corecache", "testdata/guests/cacheproxy", "testdata/guests/httpcache", "testdata/guests/gosdkcache"))
}

// forEachEngine runs f as a subtest per engine, each with a fresh engine.
func forEachEngine(t *testing.T, cfg engine.Config, f func(t *testing.T, eng engine.Engine)) {
	if cfg.CacheDir == "" {
		cfg.CacheDir = compileCache
	}
	for _, name := range guesttest.EngineNames() {
		t.Run(name, func(t *testing.T) {
			eng, err := guesttest.NewEngine(name, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { eng.Close(context.Background()) })
			if eng.Name() != name {
				t.Fatalf("engine %q reports name %q", name, eng.Name())
			}
			f(t, eng)
		})
	}
}

type host struct {
	url  string
	logs *guesttest.LogBuffer
}

// serve runs wasm with manifest on eng behind a real loopback server.
func serve(t *testing.T, eng engine.Engine, wasm []byte, manifest string, timeout time.Duration) *host {
	t.Helper()
	h := assemble(t, eng, wasm, manifest, timeout)
	return &host{url: h.Listen(t), logs: h.Logs}
}

// load compiles wasm with manifest on eng as version 1, as the server
// loads a deployed version; its log goes to the returned buffer.
func load(t *testing.T, eng engine.Engine, wasm []byte, manifest string) (*server.Version, *guesttest.LogBuffer) {
	t.Helper()
	h := assemble(t, eng, wasm, manifest, 0)
	return h.Version, h.Logs
}

// assemble is the conformance suite's test host: debug logs, dynamic
// backends allowed to reach the fixtures' loopback origins.
func assemble(t *testing.T, eng engine.Engine, wasm []byte, manifest string, timeout time.Duration) *testhost.Host {
	t.Helper()
	guard, err := pool.NewGuard(pool.GuardConfig{AllowPrivate: true}) // the fixtures' origins are on loopback
	if err != nil {
		t.Fatal(err)
	}
	return testhost.New(t, wasm, testhost.Config{
		Engine: eng, Manifest: manifest, LogLevel: slog.LevelDebug,
		Policy: &hostcall.Policy{Guard: guard},
		Server: server.Config{SandboxTimeout: timeout},
	})
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, string(b)
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

const abiManifest = `
[local_server.config_stores.settings]
format = "inline-toml"
[local_server.config_stores.settings.contents]
greeting = "hello from the config store"
`

// TestABI drives the abiconf guest through every check on each engine:
// the statuses asserted come from the ABI (abi/README.md); beyond them,
// every report must be identical on every engine.
func TestABI(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/async/hold": // never answers; the sandbox's end cancels it
			<-r.Context().Done()
			return
		case "/async/sink":
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "sink read %d bytes", n)
			return
		}
		io.WriteString(w, "origin saw "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	target := strings.TrimPrefix(origin.URL, "http://")
	_, port, _ := net.SplitHostPort(target)

	type check struct {
		path string
		hdr  []string
		want []string // lines the report must contain
	}
	checks := []check{
		{"/status", nil, []string{
			"abi.init=0",
			"bad request handle=3", "no handle=3", "body handle as request=3", "bad body handle=3",
			"buffer out of bounds=2", "nwritten out of bounds=2", "string out of bounds=2",
			"buflen=4,3", // GET needs 3 bytes
			"misaligned out-pointer=6",
			"log endpoint reserved=2",
		}},
		{"/headers", []string{"X-Conf-Multi", "alpha", "X-Conf-Multi", "beta-longer", "X-Conf-One", "1"}, []string{
			"names calls>1=true",
			"header x-conf-multi=alpha|beta-longer", "header x-conf-one=1",
			"insert=0", "append=0", "remove=0", "remove again=10", "value_get first=one",
		}},
		{"/dynamic?" + target, nil, []string{
			"register=0", "register again=1", "reserved mask bit=2",
			"exists=0,1", "is_dynamic=0,1", "get_port=0," + port, "exists nope=0,0",
			"send=0", "status_get=0,200", "origin body=origin saw /origin", "send consumed request=3", "send unknown backend=2",
		}},
		{"/stubs", nil, []string{"fastly_object_store.open=5", "fastly_http_req.pending_req_header_remove=5"}},
		// fastly_purge (abi/README.md): this host has no cache, so nothing
		// is purged; bad keys and option bits are inval.
		{"/purge", nil, []string{"purge hard=0", "purge soft=0", "purge ret_buf small=4,24", `purge ret_buf=0,{"status":"ok","id":"0"}`,
			"purge unknown bit=2", "purge empty key=2", "purge two keys=2", "purge long key=2", "purge misaligned nwritten=6", "purge options out of memory=2"}},
		// fastly_async_io (abi/README.md): indexes, not handles; u32::MAX
		// on a timeout; an empty list without a timeout is inval.
		{"/asyncio?" + target, nil, []string{
			"register=0",
			"select empty no timeout=2", "select empty 20ms=0,4294967295",
			"select hold,fast=0,1", "is_ready fast=0,1", "is_ready hold=0,0", "select hold 30ms=0,4294967295",
			"wait fast=0", "select body=0,0", "body=origin saw /async/fast", "is_ready body at end=0,1",
			"is_ready streaming body=0,1", "select streaming body=0,0", "write streaming body=0,12",
			"close streaming body=0", "wait sink=0", "sink=sink read 12 bytes",
			"is_ready bad handle=3", "is_ready request handle=3", "select with a bad handle=3",
			"select misaligned list=6", "select list out of bounds=2",
		}},
		{"/misc", nil, []string{
			"log endpoint_get=0", "log write=0,16",
			"config_store open=0", "config_store get=hello from the config store", "config_store get missing=status 10",
			"body append=0", "appended body closed=3", "body after append=left+right",
			"client ip=0,4,127.0.0.1",
		}},
	}
	reports := map[string]string{} // path -> first engine's report
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serve(t, eng, guests["abiconf"], abiManifest, 10*time.Second)
		for _, c := range checks {
			resp, body := get(t, h.url+c.path, c.hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("%s: status %d: %q\nlogs:\n%s", c.path, resp.StatusCode, body, h.logs)
			}
			lines := strings.Split(body, "\n")
			for _, w := range c.want {
				if !contains(lines, w) {
					t.Errorf("%s: report lacks %q:\n%s", c.path, w, body)
				}
			}
			if prev, ok := reports[c.path]; !ok {
				reports[c.path] = body
			} else if prev != body {
				t.Errorf("%s: report differs from the first engine's:\n%s\nfirst engine:\n%s", c.path, body, prev)
			}
			if c.path == "/headers" {
				if got := resp.Header.Values("X-Out"); strings.Join(got, ",") != "one,two" {
					t.Errorf("X-Out = %q, want one, two", got)
				}
				if _, ok := resp.Header["X-Gone"]; ok {
					t.Error("removed header X-Gone was sent")
				}
			}
		}
		if !strings.Contains(h.logs.String(), `msg="abiconf log line"`) || !strings.Contains(h.logs.String(), "log_endpoint=conf-log") {
			t.Errorf("host log lacks the guest's log endpoint line:\n%s", h.logs)
		}
		get(t, h.url+"/stdio")
		for _, w := range []string{`msg="abiconf stdout line"`, "stream=stdout", `msg="abiconf stderr line"`, "stream=stderr"} {
			if !strings.Contains(h.logs.String(), w) {
				t.Errorf("host log lacks the guest's stdio (%s):\n%s", w, h.logs)
			}
		}
	})
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestConcurrentSandboxes: sandboxes running at once each see their own
// request (the per-run context reaches the hostcalls of the right store).
func TestConcurrentSandboxes(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serve(t, eng, guests["abiconf"], "", 10*time.Second)
		const n = 24
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprint(i)
				req, _ := http.NewRequest(http.MethodGet, h.url+"/headers", nil)
				req.Header.Set("X-Conf-Id", id)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(b), "header x-conf-id="+id+"\n") {
					errs <- fmt.Sprintf("request %s got %q", id, b)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})
}

// TestStreamingEcho: a 1 MiB request body comes back intact through
// the guest's streamed response, read and written in small pieces.
func TestStreamingEcho(t *testing.T) {
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serve(t, eng, guests["abiconf"], "", 10*time.Second)
		req, _ := http.NewRequest(http.MethodPost, h.url+"/echo", bytes.NewReader(payload))
		resp, body := do(t, req)
		if resp.StatusCode != 200 || body != string(payload) {
			t.Fatalf("status %d, %d bytes back, want the %d sent", resp.StatusCode, len(body), len(payload))
		}
		if resp.ContentLength != -1 {
			t.Errorf("a streamed response should have no Content-Length, got %d", resp.ContentLength)
		}
	})
}

// TestLimits: traps, exits, the wall-clock limit and the memory cap give
// the client the same status on every engine, and the sandbox after them
// still serves. A guest asleep in WASI (time.Sleep, poll_oneoff) is
// stopped at the wall-clock limit as a busy one is; a short sleep still
// lasts what was asked; the Fastly Go SDK's way of waiting for an origin
// (poll, sleep 1 ms, poll again) works, and is stopped at the limit too
// when the origin never answers.
func TestLimits(t *testing.T) {
	release := make(chan struct{})
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delay := 100 * time.Millisecond
		if strings.HasPrefix(r.URL.Path, "/proxy/never") {
			delay = time.Hour
		}
		select {
		case <-time.After(delay):
		case <-release:
		case <-r.Context().Done():
		}
		io.WriteString(w, "from origin "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	t.Cleanup(func() { close(release) }) // before origin.Close: cleanups run last first
	backend := fmt.Sprintf("[local_server.backends.origin]\nurl = %q\n", origin.URL)

	// The wall-clock limit: long enough for the short cases under -race on
	// a slow machine.
	const limit = time.Second
	tests := []struct {
		name   string
		wasm   []byte
		path   string
		status int
		body   string        // a prefix the body must have, when set
		min    time.Duration // the least the request may take
		max    time.Duration // the most; 5 s when 0
	}{
		{name: "wasm trap", wasm: guesttest.TrapModule(), path: "/", status: 500},
		{name: "endless loop", wasm: guesttest.LoopModule(), path: "/", status: 504, min: limit, max: limit + time.Second},
		{name: "grow past the cap", wasm: guesttest.GrowModule(), path: "/", status: 500},
		{name: "no response", wasm: guesttest.NopModule(), path: "/", status: 500},
		{name: "go panic", wasm: guests["fastlystyle"], path: "/trap", status: 500},
		{name: "nil dereference", wasm: guests["fastlystyle"], path: "/nilderef", status: 500},
		{name: "exit 3", wasm: guests["fastlystyle"], path: "/exit", status: 500},
		{name: "go loop", wasm: guests["fastlystyle"], path: "/loop", status: 504, min: limit, max: limit + time.Second},
		{name: "go out of memory", wasm: guests["fastlystyle"], path: "/mem", status: 500},
		{name: "hostcall loop", wasm: guests["abiconf"], path: "/spin?2000000000", status: 504, min: limit, max: limit + time.Second},
		{name: "sleep past the limit", wasm: guests["abiconf"], path: "/sleep?600000", status: 504, min: limit, max: limit + time.Second},
		{name: "short sleep", wasm: guests["abiconf"], path: "/sleep?50", status: 200, body: "slept=", min: 50 * time.Millisecond, max: 500 * time.Millisecond},
		{name: "fastly-style poll loop", wasm: guests["fastlystyle"], path: "/proxy/x", status: 200, body: "from origin /proxy/x", min: 100 * time.Millisecond, max: limit},
		{name: "poll loop past the limit", wasm: guests["fastlystyle"], path: "/proxy/never", status: 504, min: limit, max: limit + time.Second},
		{name: "select on a request", wasm: guests["abiconf"], path: "/selectwait?/proxy/x", status: 200, body: "select=0,0", min: 100 * time.Millisecond, max: limit},
		{name: "select past the limit", wasm: guests["abiconf"], path: "/selectwait?/proxy/never", status: 504, min: limit, max: limit + time.Second},
	}
	forEachEngine(t, engine.Config{MemoryLimitBytes: 48 << 20}, func(t *testing.T, eng engine.Engine) {
		hosts := map[*byte]*host{}
		for _, tc := range tests {
			h := hosts[&tc.wasm[0]]
			if h == nil {
				h = serve(t, eng, tc.wasm, backend, limit)
				hosts[&tc.wasm[0]] = h
			}
			t.Logf("%s: GET %s", tc.name, tc.path)
			start := time.Now()
			resp, body := get(t, h.url+tc.path)
			d := time.Since(start)
			if resp.StatusCode != tc.status || !strings.HasPrefix(body, tc.body) {
				t.Errorf("%s: status %d body %q, want %d %q", tc.name, resp.StatusCode, body, tc.status, tc.body)
			}
			maxD := tc.max
			if maxD == 0 {
				maxD = 5 * time.Second
			}
			if d < tc.min || d > maxD {
				t.Errorf("%s: took %v, want %v to %v", tc.name, d, tc.min, maxD)
			}
			if ms, ok := strings.CutPrefix(strings.TrimSpace(body), "slept="); ok {
				// The guest's own clock saw the whole sleep too.
				if n, err := strconv.Atoi(ms); err != nil || n < 50 {
					t.Errorf("%s: guest reports %q", tc.name, body)
				}
			}
		}
		h := hosts[&guests["fastlystyle"][0]]
		if resp, body := get(t, h.url+"/after"); resp.StatusCode != 200 {
			t.Fatalf("no longer serving: %d %q", resp.StatusCode, body)
		}
	})
}

// TestRunErrors checks Module.Run's error contract directly: nil for a
// clean exit, *engine.ExitError with the code, engine.ErrTimeout when the
// context ends first (deadline or cancellation), a trap error otherwise.
func TestRunErrors(t *testing.T) {
	link := hostcall.NewLinker(slog.New(slog.NewTextHandler(io.Discard, nil))).Link
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		compile := func(wasm []byte) engine.Module {
			m, err := eng.Compile(context.Background(), wasm, link())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close(context.Background()) })
			return m
		}
		nop, trap, loop := compile(guesttest.NopModule()), compile(guesttest.TrapModule()), compile(guesttest.LoopModule())
		ctx := context.Background()
		if err := nop.Run(ctx, engine.RunConfig{}); err != nil {
			t.Errorf("nop: %v", err)
		}
		err := trap.Run(ctx, engine.RunConfig{})
		var exit *engine.ExitError
		if err == nil || errors.Is(err, engine.ErrTimeout) || errors.As(err, &exit) {
			t.Errorf("trap: %v, want a trap error", err)
		}
		if strings.Contains(err.Error(), "Stack backtrace") {
			t.Errorf("trap error carries a native backtrace: %v", err)
		}
		// The clock starts before the deadline is set, so the deadline
		// is never earlier than start+100ms.
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := loop.Run(dctx, engine.RunConfig{}); !errors.Is(err, engine.ErrTimeout) {
			t.Errorf("loop with a deadline: %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
			t.Errorf("loop with a 100ms deadline stopped after %v", d)
		}
		// Cancelled, with no deadline: how the server stops a sandbox.
		cctx, cancelLoop := context.WithCancel(ctx)
		start = time.Now()
		timer := time.AfterFunc(100*time.Millisecond, cancelLoop)
		defer timer.Stop()
		if err := loop.Run(cctx, engine.RunConfig{}); !errors.Is(err, engine.ErrTimeout) {
			t.Errorf("loop cancelled: %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
			t.Errorf("loop cancelled after 100ms stopped after %v", d)
		}
		done, cancel2 := context.WithCancel(ctx)
		cancel2()
		if err := loop.Run(done, engine.RunConfig{}); !errors.Is(err, engine.ErrTimeout) {
			t.Errorf("run with an ended context: %v, want ErrTimeout", err)
		}
	})
}

// TestWASI: arguments, environment, stdin, stdout, stderr and the exit
// code reach the guest and come back.
func TestWASI(t *testing.T) {
	link := hostcall.NewLinker(slog.New(slog.NewTextHandler(io.Discard, nil))).Link
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		m, err := eng.Compile(context.Background(), guests["abiconf"], link())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(context.Background())
		for _, code := range []uint32{0, 7} {
			var out, errb bytes.Buffer
			err := m.Run(context.Background(), engine.RunConfig{
				Args:   []string{"abiconf", "wasi", fmt.Sprint(code)},
				Env:    [][2]string{{"CONF_ENV", "from the host"}},
				Stdin:  strings.NewReader("shout this"),
				Stdout: &out,
				Stderr: &errb,
			})
			var exit *engine.ExitError
			switch {
			case code == 0 && err != nil:
				t.Errorf("exit 0: %v", err)
			case code != 0 && (!errors.As(err, &exit) || exit.Code != code):
				t.Errorf("exit %d: %v", code, err)
			}
			if out.String() != "SHOUT THIS" || errb.String() != "args=3 env=from the host\n" {
				t.Errorf("stdout %q stderr %q", &out, &errb)
			}
		}
		// One writer for both streams gets both, in order.
		var both bytes.Buffer
		err = m.Run(context.Background(), engine.RunConfig{Args: []string{"abiconf", "wasi", "0"}, Stdin: strings.NewReader("x"), Stdout: &both, Stderr: &both})
		if err != nil || both.String() != "Xargs=3 env=\n" {
			t.Errorf("shared writer: %q, %v", &both, err)
		}
	})
}

// TestLoadErrors: the same modules are refused on every engine, with the
// same message.
func TestLoadErrors(t *testing.T) {
	noStart := guesttest.NopModule()
	noStart = bytes.Replace(noStart, []byte("_start"), []byte("_stort"), 1)
	tests := []struct {
		name string
		wasm []byte
		is   error
		want string
	}{
		{"not wasm", []byte("hello, world"), engine.ErrInvalidModule, "invalid wasm module"},
		{"truncated", guesttest.TrapModule()[:20], engine.ErrInvalidModule, "invalid wasm module"},
		{"no _start", noStart, engine.ErrNoStart, "no _start"},
		{"unknown module", guests["badimport"], nil, `import env.not_provided: unknown module "env"`},
		{"mistyped fastly import", guests["badsig"], nil, "import fastly_http_req.new has signature (ii)->(i), the ABI's is (i)->(i)"},
		{"mistyped unimplemented import", guests["badstubsig"], nil, "import fastly_object_store.open has signature (ii)->(i), the ABI's is (iii)->(i)"},
	}
	link := hostcall.NewLinker(slog.New(slog.NewTextHandler(io.Discard, nil))).Link
	msgs := map[string]string{}
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		for _, tc := range tests {
			m, err := eng.Compile(context.Background(), tc.wasm, link())
			if err == nil {
				m.Close(context.Background())
				t.Errorf("%s: compiled", tc.name)
				continue
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%s: %v is not %v", tc.name, err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: error %q: want one line containing %q", tc.name, err, tc.want)
			}
			if tc.is == nil {
				if prev, ok := msgs[tc.name]; ok && prev != err.Error() {
					t.Errorf("%s: %q, first engine said %q", tc.name, err, prev)
				}
				msgs[tc.name] = err.Error()
			}
		}
	})
}

// TestCompileCache: with a cache directory, an engine stores its compiled
// code under a directory named for the engine and its version, and a new
// engine on the same directory runs the module from it.
func TestCompileCache(t *testing.T) {
	dir := t.TempDir()
	link := hostcall.NewLinker(slog.New(slog.NewTextHandler(io.Discard, nil))).Link
	for _, name := range guesttest.EngineNames() {
		t.Run(name, func(t *testing.T) {
			for round := 0; round < 2; round++ {
				eng, err := guesttest.NewEngine(name, engine.Config{CacheDir: dir})
				if err != nil {
					t.Fatal(err)
				}
				m, err := eng.Compile(context.Background(), guests["abiconf"], link())
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if err := m.Run(context.Background(), engine.RunConfig{Args: []string{"x", "wasi", "0"}, Stdin: strings.NewReader("cached"), Stdout: &out}); err != nil || out.String() != "CACHED" {
					t.Errorf("round %d: %q, %v", round, &out, err)
				}
				m.Close(context.Background())
				eng.Close(context.Background())
			}
			sub, _ := filepath.Glob(filepath.Join(dir, name+"-*", "*"))
			if len(sub) == 0 {
				t.Fatalf("no cache entries under %s/%s-*", dir, name)
			}
		})
	}
}
