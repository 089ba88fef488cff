package jssdk_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHello(t *testing.T) {
	h := app(t)
	t.Logf("app.js compiled and linked in %v", h.compile.Round(time.Millisecond))
	resp, body := h.get(t, "/hello")
	if body != "hello from js\n" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("body %q, content-type %q", body, resp.Header.Get("Content-Type"))
	}
}

// TestStaticBackend: fetch() to the fastly.toml backend "origin".
func TestStaticBackend(t *testing.T) {
	h := app(t)
	resp, body := h.get(t, "/static")
	if want := "echo /echo?via=static x-from-js=static"; body != want {
		t.Fatalf("body %q, want %q", body, want)
	}
	if got := resp.Header.Get("X-Origin-Header"); got != "yes" {
		t.Errorf("the origin's response header, as the guest read it: %q, want yes", got)
	}
	seen := h.origin.requests("/echo")
	if len(seen) == 0 || seen[len(seen)-1].host != "origin.test" {
		t.Fatalf("origin saw %+v, want a request with Host origin.test", seen)
	}
}

// TestDynamicBackendKeepalive: a Backend built in JS with httpKeepalive and
// tcpKeepalive options: the JS API reads the settings back, the pool runs
// with them, and the host's socket to the origin carries the TCP options.
func TestDynamicBackendKeepalive(t *testing.T) {
	h := app(t)
	target := h.dyn.Listener.Addr().String()
	_, body := h.get(t, "/dynamic?target="+target)
	var got struct {
		Status              int
		Body                string
		Name                string
		IsDynamic           bool
		Target              string
		Port                int
		ConnectTimeout      int
		FirstByteTimeout    int
		BetweenBytesTimeout int
		HTTPKeepaliveTime   int `json:"httpKeepaliveTime"`
		TCPKeepalive        *struct {
			TimeSecs, IntervalSecs, Probes int
		}
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	if got.Status != 200 || got.Body != "echo /echo?via=dynamic x-from-js=" {
		t.Errorf("fetch through the backend: status %d body %q", got.Status, got.Body)
	}
	if !got.IsDynamic || got.Target != "127.0.0.1" || fmt.Sprint(got.Port) != target[strings.LastIndex(target, ":")+1:] {
		t.Errorf("backend read back as dynamic=%v target=%q port=%d, want dynamic 127.0.0.1 and the origin's port", got.IsDynamic, got.Target, got.Port)
	}
	if got.ConnectTimeout != 2500 || got.FirstByteTimeout != 7000 || got.BetweenBytesTimeout != 4000 {
		t.Errorf("timeouts read back %d/%d/%d ms, want 2500/7000/4000", got.ConnectTimeout, got.FirstByteTimeout, got.BetweenBytesTimeout)
	}
	if got.HTTPKeepaliveTime != 45000 {
		t.Errorf("httpKeepaliveTime read back %d, want 45000", got.HTTPKeepaliveTime)
	}
	if ka := got.TCPKeepalive; ka == nil || ka.TimeSecs != 21 || ka.IntervalSecs != 7 || ka.Probes != 4 {
		t.Errorf("tcpKeepalive read back %+v, want time 21 s, interval 7 s, 4 probes", ka)
	}

	// The pool that served it runs with these settings.
	found := false
	for _, p := range h.pools.Pools() {
		if p.Settings.Addr != target {
			continue
		}
		found = true
		ka := p.Settings.Keepalive
		if ka.HTTPKeepaliveTime != 45*time.Second || ka.TCPDisabled || ka.TCPIdle != 21*time.Second ||
			ka.TCPInterval != 7*time.Second || ka.TCPCount != 4 {
			t.Errorf("pool for %s runs with keepalive %+v", target, ka)
		}
	}
	if !found {
		t.Fatalf("no origin pool for %s", target)
	}

	// And the host's socket to the origin has the TCP options: the
	// connection stays pooled after the request, so it is still open.
	seen := h.dyn.requests("/echo")
	if len(seen) == 0 {
		t.Fatal("the dynamic origin saw no request")
	}
	checkTCPKeepalive(t, seen[len(seen)-1].remote, target, tcpOpts{on: 1, idle: 21, intvl: 7, cnt: 4})
}

// TestPromiseAll: Promise.all over several fetches sends them together:
// the origin answers none until all are in flight at once.
func TestPromiseAll(t *testing.T) {
	h := app(t)
	const n = 6
	_, body := h.get(t, fmt.Sprintf("/all?n=%d&key=all-%d", n, time.Now().UnixNano()))
	var got []string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("answer %q: %v", body, err)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("i=%d", i))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("answers %q, want %q (\"alone\": the fetches were not in flight together)", got, want)
	}
}

// TestFetchRacesTimer: Promise.race of a fetch against setTimeout; the
// timer wins over a slow origin (and the client does not wait for the
// origin), the fetch wins over a long timer (which is cleared).
func TestFetchRacesTimer(t *testing.T) {
	h := app(t)
	start := time.Now()
	if _, body := h.get(t, "/race?fetch_ms=20000&timer_ms=100"); body != "timer" {
		t.Errorf("slow fetch against a 100 ms timer: %q, want timer", body)
	}
	if d := time.Since(start); d >= 15*time.Second {
		t.Errorf("the timer's answer took %v: the client waited for the 20 s origin", d)
	}
	start = time.Now()
	if _, body := h.get(t, "/race?fetch_ms=0&timer_ms=20000"); body != "fetch:i=race" {
		t.Errorf("fast fetch against a 20 s timer: %q, want fetch:i=race", body)
	}
	if d := time.Since(start); d >= 15*time.Second {
		t.Errorf("the fetch's answer took %v: the sandbox waited for the cleared timer", d)
	}
}

// TestTransformStream: a 3 MiB origin body piped through a TransformStream
// (upper-casing) to the client.
func TestTransformStream(t *testing.T) {
	h := app(t)
	const n = 3<<20 + 123
	resp, body := h.get(t, fmt.Sprintf("/transform?n=%d", n))
	want := bytes.ToUpper(letters(n))
	if resp.Header.Get("X-Transformed") != "upper" || body != string(want) {
		i := 0
		for i < len(body) && i < len(want) && body[i] == want[i] {
			i++
		}
		t.Fatalf("got %d bytes, want %d; first difference at byte %d", len(body), len(want), i)
	}
}

// TestLargeBodies: a 5 MiB request body read whole by the guest and sent
// back; the same body streamed through the guest to the origin and back.
func TestLargeBodies(t *testing.T) {
	h := app(t)
	payload := make([]byte, 5<<20+7)
	rand.Read(payload)
	sum := sha256.Sum256(payload)
	wantSum := hex.EncodeToString(sum[:])

	resp, body := h.do(t, http.MethodPost, "/echo", bytes.NewReader(payload))
	if resp.StatusCode != 200 || !bytes.Equal(body, payload) {
		t.Errorf("/echo: status %d, %d bytes back of %d, equal %v", resp.StatusCode, len(body), len(payload), bytes.Equal(body, payload))
	}
	if got := resp.Header.Get("X-Sha256"); got != wantSum || resp.Header.Get("X-Length") != fmt.Sprint(len(payload)) {
		t.Errorf("/echo: the guest read %s bytes with SHA-256 %s, want %d, %s", resp.Header.Get("X-Length"), got, len(payload), wantSum)
	}

	resp, body = h.do(t, http.MethodPost, "/proxy", bytes.NewReader(payload))
	if resp.StatusCode != 200 || !bytes.Equal(body, payload) {
		t.Errorf("/proxy: status %d, %d bytes back of %d", resp.StatusCode, len(body), len(payload))
	}
	if got := resp.Header.Get("X-Origin-Length"); got != fmt.Sprint(len(payload)) {
		t.Errorf("/proxy: the origin read %s bytes, want %d", got, len(payload))
	}
	seen := h.origin.requests("/sink")
	if len(seen) == 0 {
		t.Fatal("the origin saw no /sink request")
	}
}

func TestConfigStore(t *testing.T) {
	h := app(t)
	if _, body := h.get(t, "/config?key=greeting"); body != "hello from the config store" {
		t.Errorf("greeting = %q", body)
	}
	resp, body := h.do(t, http.MethodGet, "/config?key=absent", nil)
	if resp.StatusCode != 404 || string(body) != "missing" {
		t.Errorf("absent key: %d %q, want 404 missing", resp.StatusCode, body)
	}
}

// TestLogger: a line logged with fastly:logger is a host log line tagged
// with the endpoint name.
func TestLogger(t *testing.T) {
	h := app(t)
	msg := fmt.Sprintf("js-log-line-%d", time.Now().UnixNano())
	h.get(t, "/log?msg="+msg)
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, "msg="+msg) {
			if !strings.Contains(line, "log_endpoint=applog") {
				t.Errorf("log line %q is not tagged with the endpoint", line)
			}
			return
		}
	}
	t.Fatalf("no host log line holds %q", msg)
}

// TestEnv: fastly:env reads the FASTLY_* environment; the trace id is the
// request's own.
func TestEnv(t *testing.T) {
	h := app(t)
	var first map[string]string
	for i := range 2 {
		_, body := h.get(t, "/env")
		var got map[string]string
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("answer %q: %v", body, err)
		}
		for k, want := range map[string]string{"FASTLY_SERVICE_ID": "jssdk-test", "FASTLY_SERVICE_VERSION": h.version, "FASTLY_POP": "EDGEHOST", "FASTLY_REGION": "local"} {
			if got[k] != want {
				t.Errorf("%s = %q, want %q", k, got[k], want)
			}
		}
		if got["FASTLY_HOSTNAME"] == "" || got["FASTLY_TRACE_ID"] == "" {
			t.Errorf("FASTLY_HOSTNAME %q, FASTLY_TRACE_ID %q: want both set", got["FASTLY_HOSTNAME"], got["FASTLY_TRACE_ID"])
		}
		if i == 1 && got["FASTLY_TRACE_ID"] == first["FASTLY_TRACE_ID"] {
			t.Errorf("two requests share FASTLY_TRACE_ID %q", got["FASTLY_TRACE_ID"])
		}
		first = got
	}
}

// TestFreshSandboxesStartClean: every request to app.js runs in a fresh
// sandbox (on wazero most of them on an instance an earlier request ran
// on, reset to its state after instantiation: README.md, Engines), so
// module-level variables, globalThis and the heap hold nothing an earlier
// request left there: /state finds itself its sandbox's first request
// every time, in sequence (some requests growing the memory) and eight at
// once.
func TestFreshSandboxesStartClean(t *testing.T) {
	h := app(t)
	type state struct {
		Requests, Global int
		Before           *string
		Seen, Held       int
	}
	check := func(token string, growMB int) error {
		path := fmt.Sprintf("/state?token=%s&grow_mb=%d", token, growMB)
		resp, err := http.Get(h.url + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d, %q, %v", path, resp.StatusCode, b, err)
		}
		var got state
		if err := json.Unmarshal(b, &got); err != nil {
			return fmt.Errorf("GET %s: %q: %v", path, b, err)
		}
		if want := (state{Requests: 1, Global: 1, Seen: 1, Held: growMB << 20}); got != want {
			return fmt.Errorf("GET %s: the sandbox found %s; want a clean start %+v", path, b, want)
		}
		return nil
	}
	for i := range 24 {
		grow := 0
		if i%8 == 5 {
			grow = 16
		}
		if err := check(fmt.Sprintf("seq%d", i), grow); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 4 {
				if err := check(fmt.Sprintf("g%d-%d", g, i), 0); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
