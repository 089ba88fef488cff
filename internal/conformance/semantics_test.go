package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/server"
)

// The Compute semantics Fastly's SDKs rely on (abi/README.md): each case
// runs testdata/guests/abiconf, which makes the calls raw and the way an
// SDK makes them, on every engine, and the reports must be identical.

// semanticsManifest is the manifest of the semantics cases: backends to
// origin (one with a path prefix, two with a health setting), a config
// store and a dictionary, a valid Fastly-Key, and the guest environment.
func semanticsManifest(origin string) string {
	return fmt.Sprintf(`name = "semantics"
service_id = "from-the-top-level"
[local_server]
fake_valid_fastly_keys = ["purge-key"]
[local_server.backends.origin]
url = %[1]q
[local_server.backends.prefixed]
url = "%[1]s/api/v1"
[local_server.backends.healthy]
url = %[1]q
health = "healthy"
[local_server.backends.sick]
url = %[1]q
health = "unhealthy"
[local_server.backends.plain]
url = %[1]q
[local_server.config_stores.settings]
format = "inline-toml"
contents = { greeting = "hello from the config store" }
[local_server.dictionaries.legacy]
format = "inline-toml"
contents = { color = "blue" }
[edgehost]
hostname = "edge-1"
pop = "TST"
region = "Test-Region"
service_id = "svc-conformance"
customer_id = "cust-conformance"
cache_generation = 3
`, origin)
}

// framingOrigin answers with how the request arrived: its Content-Length
// and Transfer-Encoding as read off the wire, and its body; other paths
// with the path and query it saw.
func framingOrigin(t *testing.T) *httptest.Server {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/framing" {
			io.WriteString(w, "path "+r.URL.RequestURI())
			return
		}
		b, err := io.ReadAll(r.Body)
		fmt.Fprintf(w, "cl=%d te=%v body=%q err=%v", r.ContentLength, r.TransferEncoding, b, err)
	}))
	t.Cleanup(o.Close)
	return o
}

func TestSemantics(t *testing.T) {
	origin := framingOrigin(t)
	checks := []serviceCheck{
		{"metadata", "/meta", []string{"Fastly-Key", "purge-key", "X-Conf", "1"}, []string{
			"dn client ip=0,127.0.0.1", "dn server ip=0,127.0.0.1", "dn request id length=16", "request id forms agree=true",
			"dn h2 fingerprint=10", "dn oh fingerprint=10", "dn ddos detected=0,0", "dn fastly key valid=0,1",
			"dn compliance region=0,none", "dn ja4=10", "dn sni=10",
			"dn original header count=0,5", "dn original header names=accept-encoding|fastly-key|user-agent|x-conf|host",
			"dn bot analyzed=0,0", "dn bot detected=0,0", "dn bot name=10", "dn bot category kind=10", "dn bot verified=10",
			"dn resvpnproxy anonymous=10", "dn resvpnproxy service=10",
			"req h2 fingerprint=10", "req ddos detected=0,0", "req fastly key valid=0,1", "req compliance region=0,none",
			"req ja4=10", "req original header count=0,5", "dn other request=3",
		}},
		{"metadata, no key", "/meta", []string{"Fastly-Key", "not-the-key"}, []string{"dn fastly key valid=0,0", "req fastly key valid=0,0"}},
		{"stores", "/stores", nil, []string{
			"config_store open dictionary=blue", "dictionary open config store=hello from the config store", "config_store open missing=open 3",
		}},
		{"health", "/health", nil, []string{"is_healthy healthy=0,1", "is_healthy sick=0,2", "is_healthy plain=0,0", "is_healthy nope=2"}},
		{"path prefix", "/prefix?x/y?q=1", nil, []string{"send=0", "origin saw=path /api/v1/x/y?q=1"}},
		{"path prefix, root", "/prefix?", nil, []string{"send=0", "origin saw=path /api/v1/"}},
		{"runtime", "/runtime", nil, []string{
			"vcpu advanced 20ms=true,true", "vcpu during a 300ms sleep under 150ms=true",
			"heap grew by 16 MiB=true,true", "heap under the sandbox cap=true", "vcpu misaligned=6",
		}},
		{"env", "/env", nil, []string{
			"FASTLY_CACHE_GENERATION=3", "FASTLY_CUSTOMER_ID=cust-conformance", "FASTLY_HOSTNAME=edge-1", "FASTLY_IS_STAGING=0",
			"FASTLY_POP=TST", "FASTLY_REGION=Test-Region", "FASTLY_SERVICE_ID=svc-conformance", "FASTLY_SERVICE_VERSION=1",
			"FASTLY_TRACE_ID=set:true",
		}},
		{"framing modes", "/framing?mode-bad", nil, []string{"resp mode 2=2", "req mode 2=2"}},
		{"request framing: Content-Length kept on a streamed body", "/framing?req-cl-stream", nil, []string{
			"send=0", "wait=0", `origin saw=cl=5 te=[] body="hello" err=<nil>`}},
		{"request framing: chunked kept on a known length", "/framing?req-chunked", nil, []string{
			"send=0", `origin saw=cl=-1 te=[chunked] body="hello" err=<nil>`}},
		{"request framing: chunked kept on no body", "/framing?req-chunked-empty", nil, []string{
			"send=0", `origin saw=cl=-1 te=[chunked] body="" err=<nil>`}},
		{"request framing: a bad Content-Length falls back", "/framing?req-bad-cl", nil, []string{
			"send=0", `origin saw=cl=5 te=[] body="hello" err=<nil>`}},
		{"request framing: both headers fall back", "/framing?req-both", nil, []string{
			"send=0", "wait=0", `origin saw=cl=-1 te=[chunked] body="hello" err=<nil>`}},
		{"request framing: automatic drops the guest's headers", "/framing?req-auto", nil, []string{
			"send=0", `origin saw=cl=5 te=[] body="hello" err=<nil>`}},
	}
	reports := map[string]string{}
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serve(t, eng, guests["abiconf"], semanticsManifest(origin.URL), 20*time.Second)
		runChecks(t, h, checks, reports)
		if got := strings.Count(h.logs.String(), "manual framing headers are invalid"); got != 2 {
			t.Errorf("%d framing fallbacks logged, want 2 (req-bad-cl and req-both; req-auto is not manual):\n%s", got, h.logs)
		}
	})
}

// rawExchange sends text on a new connection to the server at url and
// returns everything the server sent until it closed the connection.
func rawExchange(t *testing.T, url, text string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the response: %v (got %q)", err, b)
	}
	return string(b)
}

// TestDownstreamFraming: framing_headers_mode_set(manual) on the
// downstream response keeps the guest's valid Content-Length or
// Transfer-Encoding, as the bytes on the wire show, and falls back to
// automatic framing for invalid ones.
func TestDownstreamFraming(t *testing.T) {
	tests := []struct {
		query      string
		head, body string // a header line the head must have; the raw body
		not        string // a header the head must not have
	}{
		{"resp-cl-stream", "Content-Length: 5", "hello", "Transfer-Encoding"},
		{"resp-chunked", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n", "Content-Length"},
		{"resp-bad-te", "Content-Length: 5", "hello", "Transfer-Encoding"},
		{"resp-bad-cl", "Transfer-Encoding: chunked", "5\r\nhello\r\n0\r\n\r\n", "Content-Length"},
		{"resp-auto", "Content-Length: 5", "hello", "Transfer-Encoding"},
	}
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serve(t, eng, guests["abiconf"], "", 10*time.Second)
		for _, tc := range tests {
			raw := rawExchange(t, h.url, "GET /framing?"+tc.query+" HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n")
			head, body, ok := strings.Cut(raw, "\r\n\r\n")
			if !ok || !strings.HasPrefix(head, "HTTP/1.1 200 ") {
				t.Fatalf("%s: response %q", tc.query, raw)
			}
			lines := strings.Split(head, "\r\n")
			if !contains(lines, tc.head) || strings.Contains(head, tc.not+":") || body != tc.body {
				t.Errorf("%s: head %q body %q; want %q, no %s, body %q", tc.query, head, body, tc.head, tc.not, tc.body)
			}
		}
	})
}

// TestEarlyHints: send_downstream with status 103 sends an informational
// response (twice here) and the same handles then carry the final
// response; every other 1xx is inval. An HTTP/1.0 client gets no 1xx.
func TestEarlyHints(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serve(t, eng, guests["abiconf"], "", 10*time.Second)
		var hints []textproto.MIMEHeader
		trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, hdr textproto.MIMEHeader) error {
			if code == 103 {
				hints = append(hints, hdr)
			}
			return nil
		}}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, h.url+"/earlyhints", nil)
		resp, body := do(t, req)
		if resp.StatusCode != 200 || resp.Header.Get("X-Final") != "yes" || resp.Header.Get("Link") != "" {
			t.Fatalf("final response %d %v", resp.StatusCode, resp.Header)
		}
		for _, w := range []string{"103 send=0", "103 again=0", "100 send=2", "101 send=2", "102 send=2", "199 send=2"} {
			if !contains(strings.Split(body, "\n"), w) {
				t.Errorf("report lacks %q:\n%s", w, body)
			}
		}
		if len(hints) != 2 || hints[0].Get("Link") != "</style.css>; rel=preload; as=style" || hints[1].Get("Link") == "" {
			t.Errorf("early hints received: %v, want 2 with the Link header", hints)
		}
		raw := rawExchange(t, h.url, "GET /earlyhints HTTP/1.0\r\nHost: edge.test\r\n\r\n")
		if first, _, _ := strings.Cut(raw, "\r\n"); !strings.Contains(first, " 200 ") || strings.Contains(raw, " 103 ") {
			t.Errorf("HTTP/1.0 client got %q", raw)
		}
	})
}

// TestFullDuplex: the downstream request body stays readable after the
// response started streaming. The guest (/echo) sends its response head,
// then echoes the request body as it reads it; the client sends each
// chunk only after the previous one came back.
func TestFullDuplex(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serve(t, eng, guests["abiconf"], "", 10*time.Second)
		c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		// A keep-alive request: net/http reads (and drops) such a request's
		// body when the response starts, unless full duplex is on.
		io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: edge.test\r\nTransfer-Encoding: chunked\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("no response head before the request body was sent: %v", err)
		}
		defer resp.Body.Close()
		var got bytes.Buffer
		for i := range 3 {
			msg := fmt.Sprintf("ping-%d;", i)
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(msg), msg)
			for !strings.Contains(got.String(), msg) {
				b := make([]byte, 64)
				n, err := resp.Body.Read(b)
				got.Write(b[:n])
				if err != nil {
					t.Fatalf("after sending %q: %v (echoed so far %q)", msg, err, &got)
				}
			}
		}
		io.WriteString(c, "0\r\n\r\n")
		rest, err := io.ReadAll(resp.Body)
		if err != nil || got.String()+string(rest) != "ping-0;ping-1;ping-2;" {
			t.Errorf("echo %q + %q, %v", &got, rest, err)
		}

		// A small body (net/http used to swallow one of up to 256 KiB
		// once the response head was out) comes back whole.
		payload := strings.Repeat("0123456789", 1000)
		req, _ := http.NewRequest(http.MethodPost, h.url+"/echo", strings.NewReader(payload))
		resp2, body := do(t, req)
		if resp2.StatusCode != 200 || body != payload {
			t.Errorf("small body: status %d, %d of %d bytes back", resp2.StatusCode, len(body), len(payload))
		}
	})
}

// TestCommandRun: a guest run as a command (edgehost run) has a
// downstream request, as under Fastly's local server, and the same
// environment as when it is served.
func TestCommandRun(t *testing.T) {
	origin := framingOrigin(t)
	manifest := semanticsManifest(origin.URL)
	outs := map[string]string{}
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		v, logs := load(t, eng, guests["abiconf"], manifest)
		run := func(arg string) string {
			id := server.NewRequestID()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sess := v.Env.NewSession(ctx, id, hostcall.CommandDownstream())
			defer sess.Close()
			var out bytes.Buffer
			rc := engine.RunConfig{Args: []string{"abiconf", arg}, Env: server.SandboxEnv(v, id, nil), Stdout: &out, Stderr: &out}
			if err := sess.RunGuest(func() error { return v.Module.Run(hostcall.WithSession(ctx, sess), rc) }); err != nil {
				t.Fatalf("run %s: %v\n%s\nlogs:\n%s", arg, err, &out, logs)
			}
			return out.String()
		}
		report := run("runreq")
		for _, w := range []string{"body_downstream_get=0", "method=GET", "uri=http://example.com/", "client ip=0,127.0.0.1",
			"server ip=0,127.0.0.1", "body=", "request id is the trace id=true", "ddos detected=0,0", "send_downstream=0"} {
			if !contains(strings.Split(report, "\n"), w) {
				t.Errorf("run report lacks %q:\n%s", w, report)
			}
		}
		env := run("env")
		h := serve(t, eng, guests["abiconf"], manifest, 10*time.Second)
		// A served report starts with abiconf's abi.init line.
		if _, served := get(t, h.url+"/env"); served != "abi.init=0\n"+env {
			t.Errorf("environment served:\n%s\nrun:\n%s", served, env)
		}
		for name, out := range map[string]string{"runreq": report, "env": env} {
			if prev, ok := outs[name]; ok && prev != out {
				t.Errorf("%s differs from the first engine's:\n%s\nfirst engine:\n%s", name, out, prev)
			}
			outs[name] = out
		}
	})
}

// TestSDKShapedServeMany: a guest shaped like a Fastly Go SDK guest
// (testdata/guests/sdkmeta) reads its request metadata on every request,
// failing on any status the SDK treats as an error, while it serves many
// requests in one sandbox.
func TestSDKShapedServeMany(t *testing.T) {
	const n = 25
	var first []string // the first engine's reports without the varying lines
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serve(t, eng, guests["sdkmeta"], "[local_server]\nfake_valid_fastly_keys = [\"k1\"]\n", 20*time.Second)
		sandbox := ""
		ids := map[string]bool{}
		var stable []string
		for i := 1; i <= n; i++ {
			key := "nope"
			if i%2 == 0 {
				key = "k1"
			}
			resp, body := get(t, h.url+"/item/"+strconv.Itoa(i), "Fastly-Key", key)
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: %d %q\nlogs:\n%s", i, resp.StatusCode, body, h.logs)
			}
			kv := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
				k, v, _ := strings.Cut(l, "=")
				kv[k] = v
			}
			if kv["served"] != strconv.Itoa(i) {
				t.Fatalf("request %d was the sandbox's request %s: not one sandbox\n%s", i, kv["served"], body)
			}
			if sandbox == "" {
				sandbox = kv["sandbox"]
			}
			if kv["sandbox"] != sandbox || sandbox == "" {
				t.Errorf("request %d: sandbox id %q, first %q", i, kv["sandbox"], sandbox)
			}
			if id := kv["request id"]; len(id) != 16 || ids[id] {
				t.Errorf("request %d: request id %q, want a new 16-digit id", i, id)
			} else {
				ids[id] = true
			}
			want := map[string]string{
				"request": "GET /item/" + strconv.Itoa(i) + " version 2", "headers": "4 values, 4 original",
				"client": "127.0.0.1", "server": "127.0.0.1", "h2": "", "oh": "", "ddos": "false",
				"fastly key valid": strconv.FormatBool(key == "k1"), "compliance region": "none",
				"bot analyzed": "false", "vpn data": "false", "client certificate": "0 bytes",
			}
			for k, w := range want {
				if kv[k] != w {
					t.Errorf("request %d: %s = %q, want %q", i, k, kv[k], w)
				}
			}
			delete(kv, "sandbox")
			delete(kv, "request id")
			stable = append(stable, fmt.Sprint(kv))
		}
		if first == nil {
			first = stable
		} else if strings.Join(first, "\n") != strings.Join(stable, "\n") {
			t.Errorf("reports differ from the first engine's")
		}
	})
}
