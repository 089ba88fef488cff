package admin_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/engine/wazeroengine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

const helloText = "hello from edgehost"

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDeployListActivate(t *testing.T) {
	h := startHost(t, t.TempDir(), hostOpts{})
	if resp, _ := h.get(t, "/"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("before any deploy: status %d, want 503", resp.StatusCode)
	}

	r := h.deploy(t, guests["hello"], "")
	if r.num("version") != 1 || r.body["sha256"] != sum(guests["hello"]) || r.num("size") != len(guests["hello"]) || r.body["active"] != true {
		t.Fatalf("first deploy answered %s", r.raw)
	}
	if _, body := h.get(t, "/x"); !strings.Contains(body, helloText) {
		t.Fatalf("after deploying hello: %q", body)
	}

	r = h.deploy(t, guests["fastlystyle"], "")
	if r.num("version") != 2 {
		t.Fatalf("second deploy: %s", r.raw)
	}
	if _, body := h.get(t, "/x"); !strings.HasPrefix(body, "fastlystyle GET /x") {
		t.Fatalf("after deploying fastlystyle: %q", body)
	}

	// Staged only: stored, listed, not serving.
	r = h.deploy(t, guests["hello"], "?activate=false")
	if r.num("version") != 3 || r.body["active"] != false {
		t.Fatalf("staged deploy: %s", r.raw)
	}
	if _, body := h.get(t, "/x"); !strings.HasPrefix(body, "fastlystyle") {
		t.Fatalf("a staged deploy changed what serves: %q", body)
	}

	list := h.call(t, http.MethodGet, "/v1/modules", nil, "", "")
	if list.status != 200 || list.num("active") != 2 {
		t.Fatalf("GET /v1/modules: %s", list.raw)
	}
	vs := list.body["versions"].([]any)
	var got []string
	for _, v := range vs {
		m := v.(map[string]any)
		got = append(got, fmt.Sprintf("%v:%v", m["version"], m["active"]))
	}
	if want := "3:false 2:true 1:false"; strings.Join(got, " ") != want {
		t.Fatalf("versions %v, want %s", got, want)
	}

	// Roll back to 1, forward to the staged 3; activating the active one is a no-op.
	if r := h.activate(t, 1); r.num("previous") != 2 {
		t.Fatalf("activate 1: %s", r.raw)
	}
	if _, body := h.get(t, "/x"); !strings.Contains(body, helloText) {
		t.Fatalf("after rolling back to 1: %q", body)
	}
	h.activate(t, 3)
	if r := h.activate(t, 3); r.num("previous") != 3 {
		t.Fatalf("re-activating 3: %s", r.raw)
	}
	if _, body := h.get(t, "/x"); !strings.Contains(body, helloText) {
		t.Fatalf("after activating 3: %q", body)
	}
	if hz := h.call(t, http.MethodGet, "/healthz", nil, "", ""); hz.status != 200 || hz.body["status"] != "ok" || hz.num("active") != 3 {
		t.Fatalf("healthz: %s", hz.raw)
	}
	// Identical modules share one blob.
	blobs, err := os.ReadDir(filepath.Join(h.dir, "blobs", "sha256"))
	if err != nil || len(blobs) != 2 {
		t.Fatalf("blobs: %v, %v; want 2 (hello stored once)", blobs, err)
	}
}

func TestPackage(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin saw "+r.URL.Path)
	})
	h := startHost(t, t.TempDir(), hostOpts{})
	manifest := append(originManifest(origin.URL), `
[local_server.config_stores.settings]
format = "json"
file = "stores/settings.json"
`...)
	tests := []struct {
		name    string
		entries []tarEntry
	}{
		{"flat", []tarEntry{
			{name: "fastly.toml", data: manifest},
			{name: "bin/", typ: tar.TypeDir},
			{name: "bin/main.wasm", data: guests["proxy"]},
			{name: "stores/settings.json", data: []byte(`{"greeting": "hi"}`)},
			{name: "src/main.go", data: []byte("package main")},
		}},
		{"Fastly CLI layout, under one folder", []tarEntry{
			{name: "proxy/", typ: tar.TypeDir},
			{name: "proxy/fastly.toml", data: manifest},
			{name: "proxy/bin/main.wasm", data: guests["proxy"]},
			{name: "proxy/stores/settings.json", data: []byte(`{"greeting": "hi"}`)},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.deploy(t, pack(t, tc.entries...), "")
			if r.body["sha256"] != sum(guests["proxy"]) || r.body["package"] != true {
				t.Fatalf("deploy: %s", r.raw)
			}
			resp, body := h.get(t, "/some/path")
			if resp.StatusCode != 200 || body != "origin saw /some/path" || resp.Header.Get("X-Edgehost-Proxy") != "1" {
				t.Fatalf("through the package's backend: %d %q %v", resp.StatusCode, body, resp.Header)
			}
			// Only what the version needs is kept.
			n := r.num("version")
			kept, _ := filepath.Glob(filepath.Join(h.dir, "versions", fmt.Sprint(n), "package", "*"))
			for i := range kept {
				kept[i] = filepath.Base(kept[i])
			}
			if strings.Join(kept, ",") != "fastly.toml,stores" {
				t.Errorf("version %d keeps %v, want fastly.toml and stores", n, kept)
			}
		})
	}

	pools := h.call(t, http.MethodGet, "/v1/pools", nil, "", "")
	ps, _ := pools.body["pools"].([]any)
	if pools.status != 200 || len(ps) != 1 {
		t.Fatalf("GET /v1/pools: one pool wanted (both versions share it): %s", pools.raw)
	}
	p := ps[0].(map[string]any)
	stats := p["stats"].(map[string]any)
	if p["addr"] != strings.TrimPrefix(origin.URL, "http://") || p["scheme"] != "http" || stats["requests"].(float64) != 2 ||
		p["keepalive"].(map[string]any)["http_keepalive_time_ms"].(float64) != float64(pool.DefaultHTTPKeepaliveTime.Milliseconds()) {
		t.Fatalf("pool: %s", pools.raw)
	}
	if origin.Conns() != 1 {
		t.Errorf("origin accepted %d connections for two versions' requests, want 1 (pool kept across versions)", origin.Conns())
	}
}

// TestBadInput: every bad request is refused with the right 4xx and a
// message naming the cause; the active version still serves and the data
// dir (compile cache aside) is exactly as before.
func TestBadInput(t *testing.T) {
	const token = "s3cret-token"
	const maxBytes = 8 << 20
	h := startHost(t, t.TempDir(), hostOpts{token: token, maxBytes: maxBytes})
	h.deploy(t, guests["hello"], "")
	hello := guests["hello"]
	goodManifest := []byte("manifest_version = 3\nname = \"x\"\n")
	tests := []struct {
		name   string
		method string
		path   string
		body   io.Reader
		token  string
		status int
		msg    string
	}{
		{"not wasm", "POST", "/v1/modules", strings.NewReader("<html>hello</html>"), token, 400, "not a WebAssembly module"},
		{"empty", "POST", "/v1/modules", strings.NewReader(""), token, 400, "neither a Wasm module nor a .tar.gz package"},
		{"truncated wasm", "POST", "/v1/modules", bytes.NewReader(hello[:len(hello)/2]), token, 400, "invalid wasm module"},
		{"unknown import module", "POST", "/v1/modules", bytes.NewReader(guests["badimport"]), token, 400, `unknown module "env"`},
		{"mistyped fastly_* import", "POST", "/v1/modules", bytes.NewReader(guests["badsig"]), token, 400, "fastly_http_req.new has signature"},
		{"package without bin/main.wasm", "POST", "/v1/modules", bytes.NewReader(pack(t, tarEntry{name: "fastly.toml", data: goodManifest}, tarEntry{name: "main.wasm", data: hello})), token, 400, "package has no bin/main.wasm"},
		{"package without fastly.toml", "POST", "/v1/modules", bytes.NewReader(pack(t, tarEntry{name: "bin/main.wasm", data: hello})), token, 400, "package has no fastly.toml"},
		{"package with a bad fastly.toml", "POST", "/v1/modules", bytes.NewReader(pack(t,
			tarEntry{name: "fastly.toml", data: []byte("name = \"x\"\n[local_server.backends.origin]\nurl = \"http://127.0.0.1:1\"\nkeepalive_tiem = 3\n")},
			tarEntry{name: "bin/main.wasm", data: hello})), token, 400, `fastly.toml:4: unknown key "local_server.backends.origin.keepalive_tiem"`},
		{"package with a TOML syntax error", "POST", "/v1/modules", bytes.NewReader(pack(t,
			tarEntry{name: "fastly.toml", data: []byte("name = \n")}, tarEntry{name: "bin/main.wasm", data: hello})), token, 400, "fastly.toml:1: invalid TOML"},
		{"package entry escaping with ..", "POST", "/v1/modules", bytes.NewReader(pack(t,
			tarEntry{name: "fastly.toml", data: goodManifest}, tarEntry{name: "bin/main.wasm", data: hello},
			tarEntry{name: "../../escape.txt", data: []byte("x")})), token, 400, `package entry "../../escape.txt": names must stay inside the package`},
		{"package entry with an absolute name", "POST", "/v1/modules", bytes.NewReader(pack(t,
			tarEntry{name: "/etc/cron.d/x", data: []byte("x")}, tarEntry{name: "fastly.toml", data: goodManifest}, tarEntry{name: "bin/main.wasm", data: hello})), token, 400, `package entry "/etc/cron.d/x"`},
		{"package with a symlink", "POST", "/v1/modules", bytes.NewReader(pack(t,
			tarEntry{name: "fastly.toml", data: goodManifest}, tarEntry{name: "bin/main.wasm", data: hello},
			tarEntry{name: "stores", typ: tar.TypeSymlink, link: "/etc"})), token, 400, "only regular files and folders"},
		{"store file outside the package", "POST", "/v1/modules", bytes.NewReader(pack(t,
			tarEntry{name: "fastly.toml", data: []byte("[local_server.config_stores.s]\nformat = \"json\"\nfile = \"../../../etc/passwd\"\n")},
			tarEntry{name: "bin/main.wasm", data: hello})), token, 400, `file "../../../etc/passwd" must name a file inside the package`},
		{"store file missing from the package", "POST", "/v1/modules", bytes.NewReader(pack(t,
			tarEntry{name: "fastly.toml", data: []byte("[local_server.config_stores.s]\nformat = \"json\"\nfile = \"s.json\"\n")},
			tarEntry{name: "bin/main.wasm", data: hello})), token, 400, `names the file "s.json", which the package does not hold`},
		{"corrupt gzip", "POST", "/v1/modules", bytes.NewReader(append([]byte{0x1f, 0x8b, 8, 0}, bytes.Repeat([]byte{0xff}, 64)...)), token, 400, "package:"},
		{"over the size cap, streamed without a length", "POST", "/v1/modules", io.MultiReader(bytes.NewReader(hello), &zeros{n: maxBytes}), token, 413, "over the size limit"},
		{"over the size cap, announced", "POST", "/v1/modules", bytes.NewReader(make([]byte, maxBytes+1)), token, 413, "over the 8388608-byte limit"},
		{"package unpacking over the cap", "POST", "/v1/modules", bytes.NewReader(pack(t,
			tarEntry{name: "fastly.toml", data: goodManifest}, tarEntry{name: "bin/main.wasm", data: hello},
			tarEntry{name: "big", data: make([]byte, maxBytes)})), token, 413, "unpacks to more than 8388608 bytes"},
		{"pre-initialized module whose init calls a hostcall", "POST", "/v1/modules", bytes.NewReader(guests["preinitbad"]), token, 400, "fastly_http_req.new"},
		{"bad activate flag", "POST", "/v1/modules?activate=maybe", bytes.NewReader(hello), token, 400, `?activate="maybe"`},
		{"no token", "POST", "/v1/modules", bytes.NewReader(guests["fastlystyle"]), "", 401, "Authorization: Bearer TOKEN"},
		{"wrong token", "POST", "/v1/modules", bytes.NewReader(guests["fastlystyle"]), "s3cret-tokeN", 403, "wrong admin token"},
		{"activate without a token", "POST", "/v1/modules/1/activate", nil, "", 401, "Authorization"},
		{"activate with a wrong token", "POST", "/v1/modules/1/activate", nil, "nope", 403, "wrong admin token"},
		{"activate a version that does not exist", "POST", "/v1/modules/42/activate", nil, token, 404, "version 42 does not exist"},
		{"activate a version that is not a number", "POST", "/v1/modules/latest/activate", nil, token, 400, `version "latest": want a version number`},
		{"unknown route", "GET", "/v1/nothing", nil, "", 404, "Not Found"},
	}
	before := dirState(t, h.dir)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.call(t, tc.method, tc.path, tc.body, "application/octet-stream", tc.token)
			if r.status != tc.status || !strings.Contains(r.errMsg(), tc.msg) {
				t.Fatalf("got %d %q, want %d with %q", r.status, r.raw, tc.status, tc.msg)
			}
			if _, got := h.get(t, "/after"); !strings.Contains(got, helloText) {
				t.Fatalf("the active version no longer serves: %q", got)
			}
			if after := dirState(t, h.dir); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Fatalf("data dir changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
			}
		})
	}
	if list := h.call(t, http.MethodGet, "/v1/modules", nil, "", ""); len(list.body["versions"].([]any)) != 1 || list.num("active") != 1 {
		t.Fatalf("versions after bad input: %s", list.raw)
	}
	// The right token works; GETs need none.
	if r := h.call(t, http.MethodPost, "/v1/modules", bytes.NewReader(guests["fastlystyle"]), "application/wasm", token); r.status != 201 {
		t.Fatalf("with the token: %d %s", r.status, r.raw)
	}
}

// zeros is a reader of n zero bytes with no known length; read counts
// what the client sent.
type zeros struct {
	n    int64
	read atomic.Int64
}

func (z *zeros) Read(p []byte) (int, error) {
	done := z.read.Load()
	if done >= z.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n-done)
	clear(p[:k])
	z.read.Add(k)
	return int(k), nil
}

func TestOversizeIsNotReadWhole(t *testing.T) {
	const maxBytes = 1 << 20
	h := startHost(t, t.TempDir(), hostOpts{maxBytes: maxBytes})
	z := &zeros{n: 256 << 20}
	req, _ := http.NewRequest(http.MethodPost, h.adminURL+"/v1/modules", io.MultiReader(strings.NewReader("\x00asm"), z))
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	} // else: the host closed the connection while the client still sent, which is also a refusal
	if n := z.read.Load(); n > 64<<20 {
		t.Fatalf("the client sent %d bytes before the host stopped it (limit %d)", n, maxBytes)
	}
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:7677", "", true},
		{"127.0.0.2:0", "", true},
		{"[::1]:7677", "", true},
		{"localhost:7677", "", true},
		{"0.0.0.0:7677", "", false},
		{":7677", "", false},
		{"[::]:7677", "", false},
		{"192.0.2.1:7677", "", false},
		{"0.0.0.0:7677", "tok", true},
		{"no-port", "tok", false},
	}
	for _, tc := range tests {
		err := admin.CheckAddr(tc.addr, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q, %q) = %v, want ok=%v", tc.addr, tc.token, err, tc.ok)
		}
		if err != nil && !tc.ok && tc.addr != "no-port" && !strings.Contains(err.Error(), admin.TokenEnv) {
			t.Errorf("CheckAddr(%q): %v does not say how to fix it", tc.addr, err)
		}
	}
}

// TestRestart: a stopped host restarted on the same data dir serves the
// last active version, without compiling anything again. On the way it
// measures upload-to-first-response for examples/hello: cold (nothing
// compiled), cached in memory (same process), cached on disk (after a
// restart).
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	measure := func(h *testHost) time.Duration {
		start := time.Now()
		h.deploy(t, guests["hello"], "")
		if resp, body := h.get(t, "/"); resp.StatusCode != 200 || !strings.Contains(body, helloText) {
			t.Fatalf("first response %d %q", resp.StatusCode, body)
		}
		return time.Since(start)
	}
	if raceEnabled && cacheFilesIn(t, sharedCache) > 0 {
		// Seed the data dir's cache with the shared one's compiled
		// code: "cold" below is then not cold, but the rest holds.
		if err := os.CopyFS(filepath.Join(dir, "cache"), os.DirFS(sharedCache)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := newHost(context.Background(), dir, hostOpts{ownCache: true}, &testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	cold := measure(h)                        // version 1
	h.deploy(t, admin.WelcomeModule("x"), "") // version 2
	memory := measure(h)                      // version 3
	h.activate(t, 1)
	h.stop()
	cached := cacheFiles(t, dir)
	if cached == 0 {
		t.Fatal("nothing in the compile cache")
	}

	h = startHost(t, dir, hostOpts{ownCache: true})
	if _, body := h.get(t, "/"); !strings.Contains(body, helloText) {
		t.Fatalf("after restart: %q, want version 1 (hello)", body)
	}
	if list := h.call(t, http.MethodGet, "/v1/modules", nil, "", ""); list.num("active") != 1 || len(list.body["versions"].([]any)) != 3 {
		t.Fatalf("after restart: %s", list.raw)
	}
	h.activate(t, 2)
	if _, body := h.get(t, "/"); !strings.Contains(body, "no guest is deployed yet") {
		t.Fatalf("activate 2 after restart: %q", body)
	}
	disk := measure(h) // version 4
	if n := cacheFiles(t, dir); n != cached {
		t.Errorf("compile cache went from %d to %d files on restart, re-activation and re-upload: something was recompiled", cached, n)
	}
	t.Logf("upload-to-first-response, examples/hello (%d bytes): cold %v, cached in memory %v, cached on disk after a restart %v",
		len(guests["hello"]), cold.Round(time.Millisecond), memory.Round(time.Millisecond), disk.Round(time.Millisecond))
	if !raceEnabled && (disk > cold || memory > cold) {
		t.Errorf("a cached deploy (%v, %v) took longer than a cold one (%v)", memory, disk, cold)
	}
}

func cacheFiles(t *testing.T, dir string) int { return cacheFilesIn(t, filepath.Join(dir, "cache")) }

func cacheFilesIn(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

func TestMetrics(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	h := startHost(t, t.TempDir(), hostOpts{})
	h.deploy(t, pack(t, tarEntry{name: "fastly.toml", data: originManifest(origin.URL)}, tarEntry{name: "bin/main.wasm", data: guests["fastlystyle"]}), "")
	h.call(t, http.MethodPost, "/v1/modules", strings.NewReader("junk"), "", "")
	for _, p := range []string{"/", "/proxy/a", "/proxy/b", "/exit"} {
		h.get(t, p)
	}
	h.deploy(t, guests["hello"], "")
	h.get(t, "/")

	m := h.call(t, http.MethodGet, "/metrics", nil, "", "")
	if m.status != 200 {
		t.Fatalf("GET /metrics: %d", m.status)
	}
	addr := strings.TrimPrefix(origin.URL, "http://")
	for _, want := range []string{
		`edgehost_requests_total{status="200"} 4`,
		`edgehost_requests_total{status="500"} 1`,
		`edgehost_sandbox_duration_seconds_count 5`,
		`edgehost_deploys_total{result="ok"} 2`,
		`edgehost_deploys_total{result="rejected"} 1`,
		`edgehost_activations_total 2`,
		`edgehost_active_version 2`,
		// fastlystyle reads the URI with an 8-byte buffer first: buflen,
		// once per request it served.
		`edgehost_hostcall_errors_total{module="fastly_http_req",name="uri_get",status="buflen"} 4`,
		fmt.Sprintf(`edgehost_pool_requests_total{addr=%q,pool="1",scheme="http"} 2`, addr),
		fmt.Sprintf(`edgehost_pool_connections_opened_total{addr=%q,pool="1",scheme="http"} 1`, addr),
		fmt.Sprintf(`edgehost_pool_connections_idle{addr=%q,pool="1",scheme="http"} 1`, addr),
		"go_goroutines",
	} {
		if !strings.Contains(m.raw, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(m.raw)
	}
}

// TestWelcomeModule serves the hand-assembled welcome guest.
func TestWelcomeModule(t *testing.T) {
	for _, adminURL := range []string{"http://127.0.0.1:7677", ""} {
		wasm := admin.WelcomeModule(adminURL)
		eng, err := wazeroengine.New(engine.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close(context.Background())
		pools := pool.NewManager(nil)
		defer pools.Close()
		l := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(nil), Pools: pools}
		v, err := l.Load(context.Background(), "welcome", wasm, config.Default())
		if err != nil {
			t.Fatalf("welcome module does not load: %v", err)
		}
		srv := server.New(server.Config{})
		srv.Activate(v)
		hs := httpServe(t, srv)
		resp, err := http.Get(hs + "/anything")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "edgehost deploy --admin " + adminURL
		if adminURL == "" {
			want = "The admin API is off"
		}
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("welcome: %d %v %q", resp.StatusCode, resp.Header, body)
		}
	}
}

func httpServe(t *testing.T, h http.Handler) string {
	s := guesttest.NewOrigin(t, h.ServeHTTP)
	return s.URL
}
