package conformance_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/kvstore"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

const kvManifest = `
[local_server.kv_stores]
kvs = [{ key = "seeded", data = "seed value", metadata = "seed-meta" }]

[local_server.secret_stores]
secrets = [{ key = "api-key", data = "fake-secret-value" }]
`

// kvHost serves the kvsecret guest on eng with kvManifest and the KV
// database in dir, as version id.
type kvHost struct {
	url  string
	logs *guesttest.LogBuffer
	db   *kvstore.DB
	hs   *httptest.Server
}

func serveKV(t testing.TB, eng engine.Engine, dir, id string) *kvHost {
	t.Helper()
	return serveKVWasm(t, eng, guests["kvsecret"], dir, id)
}

// serveKVWasm is serveKV with another build of the guest.
func serveKVWasm(t testing.TB, eng engine.Engine, wasm []byte, dir, id string) *kvHost {
	t.Helper()
	m, err := config.Parse("fastly.toml", []byte(kvManifest), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db, err := kvstore.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	logs := &guesttest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pools := pool.NewManager(log)
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pools, Logger: log, Env: server.GuestEnvFor(m), KV: db}
	v, err := loader.Load(context.Background(), id, wasm, m)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	srv := server.New(server.Config{Logger: log, SandboxTimeout: 20 * time.Second})
	srv.Activate(v)
	h := &kvHost{logs: logs, db: db, hs: httptest.NewServer(srv)}
	h.url = h.hs.URL
	t.Cleanup(func() { h.close(); pools.Close() })
	return h
}

func (h *kvHost) close() {
	if h.hs != nil {
		h.hs.Close()
		h.db.Close()
		h.hs = nil
	}
}

// call sends method path with body and returns "status kv_error
// generation metadata | body" for the transcript.
func (h *kvHost) call(t *testing.T, method, path, body string) (string, *http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, b := do(t, req)
	line := fmt.Sprintf("%s %s -> %d kv_error=%s gen=%s meta=%s | %s", method, path, resp.StatusCode,
		resp.Header.Get("X-Kv-Error"), resp.Header.Get("X-Generation"), resp.Header.Get("X-Metadata"), b)
	return line, resp, b
}

// TestKVStoreConformance drives the kvsecret guest through every KV and
// secret store operation on each engine: the outcomes asserted are the
// ABI's (abi/README.md, "fastly_kv_store", "fastly_secret_store"), and
// the transcripts must be identical on every engine.
func TestKVStoreConformance(t *testing.T) {
	transcripts := map[string]string{}
	var mu sync.Mutex
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serveKV(t, eng, t.TempDir(), "1")
		var tr strings.Builder
		step := func(method, path, body string, want ...string) *http.Response {
			t.Helper()
			line, resp, _ := h.call(t, method, path, body)
			tr.WriteString(line + "\n")
			for _, w := range want {
				if !strings.Contains(line, w) {
					t.Errorf("%s %s: %q, want it to contain %q", method, path, line, w)
				}
			}
			return resp
		}
		step("GET", "/kv/get?store=kvs&key=seeded", "", "-> 200 kv_error=1", "meta=seed-meta | seed value")
		step("GET", "/kv/get?store=kvs&key=absent", "", "-> 404 kv_error=3")
		step("POST", "/kv/put?store=kvs&key=a&meta=m1", "one", "-> 200 kv_error=1")
		r := step("GET", "/kv/get?store=kvs&key=a", "", "kv_error=1", "meta=m1 | one")
		gen1 := r.Header.Get("X-Generation")
		step("POST", "/kv/put?store=kvs&key=a&mode=append", "-two", "kv_error=1")
		step("POST", "/kv/put?store=kvs&key=a&mode=prepend&bg=1", "zero-", "kv_error=1")
		step("POST", "/kv/put?store=kvs&key=a&mode=add", "x", "kv_error=4")
		step("POST", "/kv/put?store=kvs&key=a&gen="+gen1, "stale", "kv_error=4")
		r = step("GET", "/kv/select?store=kvs&key=a", "", "-> 200 kv_error=1", "| zero-one-two")
		gen2 := r.Header.Get("X-Generation")
		if gen2 <= gen1 && len(gen2) <= len(gen1) {
			t.Errorf("generation %s after writes, %s before: not increasing", gen2, gen1)
		}
		step("POST", "/kv/put?store=kvs&key=a&gen="+gen2, "swapped", "kv_error=1")
		step("GET", "/kv/get?store=kvs&key=a", "", "| swapped")
		step("POST", "/kv/put?store=kvs&key=fresh&mode=add", "new", "kv_error=1")
		step("POST", "/kv/delete?store=kvs&key=a", "", "kv_error=1")
		step("POST", "/kv/delete?store=kvs&key=a", "", "kv_error=3")
		step("GET", "/kv/get?store=kvs&key=a", "", "-> 404 kv_error=3")
		for _, k := range []string{"p/1", "p/2", "p/3"} {
			step("POST", "/kv/put?store=kvs&key="+url.QueryEscape(k), k, "kv_error=1")
		}
		step("GET", "/kv/list?store=kvs", "", `{"data":["fresh","p/1","p/2","p/3","seeded"],"meta":{"limit":1000,"mode":"strong"}}`)
		step("GET", "/kv/list?store=kvs&prefix=p/&limit=2", "", `"data":["p/1","p/2"]`, `"next_cursor":`)
		_, _, page := h.call(t, "GET", "/kv/list?store=kvs&prefix=p/&limit=2", "")
		cursor := page[strings.Index(page, `"next_cursor":"`)+len(`"next_cursor":"`):]
		cursor = cursor[:strings.IndexByte(cursor, '"')]
		step("GET", "/kv/list?store=kvs&prefix=p/&limit=2&cursor="+url.QueryEscape(cursor), "", `{"data":["p/3"],"meta":{"limit":2,"prefix":"p/","mode":"strong"}}`)

		// TTL expiry is observable: a 1 s entry is there, then gone.
		step("POST", "/kv/put?store=kvs&key=short&ttl=1", "brief", "kv_error=1")
		step("GET", "/kv/get?store=kvs&key=short", "", "-> 200", "| brief")
		time.Sleep(1100 * time.Millisecond)
		step("GET", "/kv/get?store=kvs&key=short", "", "-> 404 kv_error=3")

		step("GET", "/kv/bad", "",
			"open=0\n", "open unknown=2\n", "lookup bad handle=3\n", "lookup no handle=3\n",
			"lookup key 1025 bytes=2\n", "lookup key 1024 bytes=0\n", "lookup bad utf-8=2\n", "lookup empty key=2\n",
			"lookup key with newline=2\n", "lookup out of bounds=2\n", "lookup misaligned out=6\n", "lookup mask bit=2\n",
			"lookup_wait v1=0,3,0\n", "lookup_wait consumed=3\n", "insert_wait on a lookup handle=3\n",
			"insert reserved bit=2\n", "insert reserved_2 bit=2\n", "insert unknown bit=2\n", "insert bad mode=2\n",
			"insert empty metadata=2\n", "insert bad body=3\n", "insert big key=2\n", "insert metadata 2001 bytes=0,5\n",
			"list reserved bit=2\n", "list bad mode=2\n", "list limit 1001=2\n", "list bad cursor=0,2\n", "delete bad handle=3\n")

		step("GET", "/secret?store=secrets&key=api-key", "", "-> 200", "| fake-secret-value")
		step("GET", "/secret?store=nope&key=api-key", "", "-> 404")
		step("GET", "/secret/bad", "", "open=0\n", "open unknown=10\n", "open bad name=2\n", "get unknown=10\n",
			"get bad store handle=3\n", "plaintext bad handle=3\n", "get=0\n", "plaintext small buffer=4,17\n",
			"plaintext store handle=3\n", "from_bytes=0\n", "from_bytes plaintext=0,15\n", "from_bytes too large=2\n")
		if strings.Contains(h.logs.String(), "fake-secret-value") {
			t.Errorf("a secret value reached the host log")
		}
		mu.Lock()
		transcripts[eng.Name()] = tr.String()
		mu.Unlock()
	})
	var names []string
	for n := range transcripts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names[1:] {
		if transcripts[n] != transcripts[names[0]] {
			t.Errorf("%s and %s differ:\n%s\n---\n%s", names[0], n, transcripts[names[0]], transcripts[n])
		}
	}
}

// TestKVParallelAppends: 32 sandboxes append to one key at once; every
// append is there exactly once.
func TestKVParallelAppends(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serveKV(t, eng, t.TempDir(), "1")
		const n = 32
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", h.url+"/kv/put?store=kvs&key=log&mode=append", strings.NewReader(fmt.Sprintf("<%d>", i)))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("X-Kv-Error") != "1" {
					t.Errorf("append %d: %d kv_error=%s", i, resp.StatusCode, resp.Header.Get("X-Kv-Error"))
				}
			})
		}
		wg.Wait()
		_, _, body := h.call(t, "GET", "/kv/get?store=kvs&key=log", "")
		for i := range n {
			if c := strings.Count(body, fmt.Sprintf("<%d>", i)); c != 1 {
				t.Errorf("append %d is there %d times in %q", i, c, body)
			}
		}
	})
}

// TestKVSurvivesRestart: what a guest writes is there after the host
// restarts (the database closed and opened again) and a redeploy (a new
// version of the same manifest, whose seed does not overwrite it).
func TestKVSurvivesRestart(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		dir := t.TempDir()
		h := serveKV(t, eng, dir, "1")
		h.call(t, "POST", "/kv/put?store=kvs&key=kept&meta=m", "written before the restart")
		h.call(t, "POST", "/kv/put?store=kvs&key=seeded", "guest overwrote the seed")
		h.close()

		h = serveKV(t, eng, dir, "2")
		for _, c := range []struct{ key, want string }{
			{"kept", "meta=m | written before the restart"},
			{"seeded", "| guest overwrote the seed"},
		} {
			line, _, _ := h.call(t, "GET", "/kv/get?store=kvs&key="+c.key, "")
			if !strings.Contains(line, "-> 200 kv_error=1") || !strings.Contains(line, c.want) {
				t.Errorf("after restart: %q, want %q", line, c.want)
			}
		}
	})
}

// TestKVTinyGoGuest: the kvsecret guest built with TinyGo gives the same
// answers as its Go build, on each engine.
func TestKVTinyGoGuest(t *testing.T) {
	tiny := guesttest.RequireTinyGoFixtures(t, "testdata/guests/kvsecret")["kvsecret"]
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		var reports [2]string
		for i, wasm := range [][]byte{guests["kvsecret"], tiny} {
			h := serveKVWasm(t, eng, wasm, t.TempDir(), "1")
			var tr strings.Builder
			for _, c := range []struct{ method, path, body string }{
				{"POST", "/kv/put?store=kvs&key=a&meta=m", "one"},
				{"POST", "/kv/put?store=kvs&key=a&mode=append", "-two"},
				{"GET", "/kv/get?store=kvs&key=a", ""},
				{"GET", "/kv/select?store=kvs&key=seeded", ""},
				{"GET", "/kv/list?store=kvs&limit=1", ""},
				{"GET", "/kv/bad", ""},
				{"GET", "/secret?store=secrets&key=api-key", ""},
				{"GET", "/secret/bad", ""},
			} {
				line, _, _ := h.call(t, c.method, c.path, c.body)
				tr.WriteString(line + "\n")
			}
			h.close()
			reports[i] = tr.String()
		}
		if reports[0] != reports[1] {
			t.Errorf("Go and TinyGo builds differ:\n%s\n---\n%s", reports[0], reports[1])
		}
		if !strings.Contains(reports[1], "| one-two") || !strings.Contains(reports[1], "| fake-secret-value") {
			t.Errorf("TinyGo build:\n%s", reports[1])
		}
	})
}
