package jssdk_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/kvstore"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// storesShared is the host serving testdata/jsguests/stores.js, started
// on first use.
var storesShared struct {
	once sync.Once
	h    *jsHost
	err  error
}

const storesManifest = `
[local_server.kv_stores]
kvs = [{ key = "seeded", data = "seed value", metadata = "seed-meta" }]

[local_server.secret_stores]
secrets = [{ key = "api-key", data = "fake-js-secret" }]
`

func storesApp(t *testing.T) *jsHost {
	t.Helper()
	wasm := jsGuest(t, "stores")
	storesShared.once.Do(func() { storesShared.h, storesShared.err = startStores(wasm) })
	if storesShared.err != nil {
		t.Fatal(storesShared.err)
	}
	t.Cleanup(func() { storesShared.h.checkNoStubs(t) })
	return storesShared.h
}

func startStores(wasm []byte) (*jsHost, error) {
	h := &jsHost{logs: &guesttest.LogBuffer{}, version: "1"}
	m, err := config.Parse("fastly.toml", []byte(storesManifest), shared.dir)
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	eng, err := guesttest.Engine(engine.Config{CacheDir: shared.cache})
	if err != nil {
		return nil, err
	}
	shared.closers = append(shared.closers, func() { eng.Close(context.Background()) })
	db, err := kvstore.Open(filepath.Join(shared.dir, "stores-kv"), 0)
	if err != nil {
		return nil, err
	}
	shared.closers = append(shared.closers, func() { db.Close() })
	h.pools = pool.NewManager(log)
	shared.closers = append(shared.closers, h.pools.Close)
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: h.pools, Logger: log, Env: server.GuestEnvFor(m), KV: db}
	v, err := loader.Load(context.Background(), h.version, wasm, m)
	if err != nil {
		return nil, fmt.Errorf("load stores.js: %w", err)
	}
	srv := server.New(server.Config{Logger: log})
	srv.Activate(v)
	hs := httptest.NewServer(srv)
	shared.closers = append(shared.closers, func() { server.Retire(context.Background(), v) }, hs.Close)
	h.url = hs.URL
	return h, nil
}

// TestJSKVStore: fastly:kv-store's get, put (modes, metadata), delete and
// list (prefix, limit, cursor pages) against the host's KV database.
func TestJSKVStore(t *testing.T) {
	h := storesApp(t)
	resp, body := h.get(t, "/kv/get?key=seeded")
	if body != "seed value" || resp.Header.Get("X-Metadata") != "seed-meta" {
		t.Fatalf("seeded = %q, metadata %q", body, resp.Header.Get("X-Metadata"))
	}
	if resp, b := h.do(t, http.MethodGet, "/kv/get?key=absent", nil); resp.StatusCode != 404 {
		t.Fatalf("absent key: %d %s", resp.StatusCode, b)
	}
	post := func(path, body string) {
		t.Helper()
		resp, b := h.do(t, http.MethodPost, path, strings.NewReader(body))
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	post("/kv/put?key=js&metadata=m1", "one")
	post("/kv/put?key=js&mode=append", "-two")
	post("/kv/put?key=js&mode=prepend&metadata=m2", "zero-")
	resp, body = h.get(t, "/kv/get?key=js")
	if body != "zero-one-two" || resp.Header.Get("X-Metadata") != "m2" {
		t.Fatalf("after put, append, prepend: %q, metadata %q", body, resp.Header.Get("X-Metadata"))
	}
	if resp, b := h.do(t, http.MethodPost, "/kv/put?key=js&mode=add", strings.NewReader("x")); resp.StatusCode == 200 {
		t.Fatalf("add of an existing key succeeded: %s", b)
	}
	for i := range 5 {
		post(fmt.Sprintf("/kv/put?key=list/%d", i), "v")
	}
	_, body = h.get(t, "/kv/list?prefix=list/&limit=2")
	var page struct {
		Pages int
		Keys  []string
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if page.Pages != 3 || strings.Join(page.Keys, ",") != "list/0,list/1,list/2,list/3,list/4" {
		t.Fatalf("list = %+v", page)
	}
	post("/kv/delete?key=js", "")
	if resp, _ := h.do(t, http.MethodGet, "/kv/get?key=js", nil); resp.StatusCode != 404 {
		t.Fatalf("after delete: %d", resp.StatusCode)
	}
	if _, body := h.get(t, "/kv/parallel"); body != `["seed value",null,"seed value"]` {
		t.Fatalf("parallel lookups = %s", body)
	}
	if _, body := h.get(t, "/kv/nostore"); !strings.Contains(body, "Error") {
		t.Fatalf("opening an unknown store: %s", body)
	}
}

// TestJSSecretStore: fastly:secret-store get and plaintext, and
// SecretStore.fromBytes; the value never reaches the host's log.
func TestJSSecretStore(t *testing.T) {
	h := storesApp(t)
	if _, body := h.get(t, "/secret?key=api-key"); body != "fake-js-secret" {
		t.Fatalf("secret = %q", body)
	}
	if resp, b := h.do(t, http.MethodGet, "/secret?key=nope", nil); resp.StatusCode != 404 {
		t.Fatalf("unknown secret: %d %s", resp.StatusCode, b)
	}
	if _, body := h.get(t, "/secret/frombytes"); body != "made from bytes" {
		t.Fatalf("fromBytes = %q", body)
	}
	if strings.Contains(h.logs.String(), "fake-js-secret") {
		t.Error("the secret value reached the host log")
	}
}
