package host_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/host"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// guests builds examples/hello and examples/proxy once per test binary.
var guests map[string][]byte

func TestMain(m *testing.M) {
	os.Exit(guesttest.Main(m, func(_ string, g map[string][]byte) { guests = g }, "examples/hello", "examples/proxy"))
}

// config is a Config for wasm on the test's engine, with the compiled
// code cached across runs (a Go guest takes seconds to compile, minutes
// under -race).
func config(t *testing.T, wasm []byte) host.Config {
	t.Helper()
	dir, err := guesttest.CompileCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	return host.Config{Module: wasm, Engine: guesttest.EngineName(), CacheDir: dir}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// get fetches path from h and returns the status, one header and the body.
func get(t *testing.T, h *host.Host, path, header string) (int, string, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + h.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get(header), string(b)
}

func proxyManifest(origin string) string {
	return "manifest_version = 3\nname = \"proxy\"\n[local_server.backends.origin]\nurl = \"" + origin + "\"\n"
}

func origin(t *testing.T) *httptest.Server {
	o := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin saw "+r.URL.Path)
	}))
	t.Cleanup(o.Close)
	return o
}

// TestStartErrors: a Config Start cannot serve is an error naming the
// problem, and the listener is closed.
func TestStartErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  host.Config
		want string
	}{
		{"no module", host.Config{}, "no module"},
		{"not wasm", host.Config{Module: []byte("not wasm")}, "version 1"},
		{"two manifests", host.Config{Module: guests["hello"], Manifest: []byte(""), ManifestPath: "fastly.toml"}, "both set"},
		{"bad manifest", host.Config{Module: guests["hello"], Manifest: []byte("name = ")}, "fastly.toml"},
		{"missing manifest file", host.Config{Module: guests["hello"], ManifestPath: filepath.Join(t.TempDir(), "fastly.toml")}, "no such file"},
		{"unknown engine", host.Config{Module: guests["hello"], Engine: "v8"}, `engine "v8"`},
		{"KV stores without KVDir", host.Config{Module: guests["hello"], Manifest: []byte("[local_server.kv_stores]\nsessions = []\n")}, "KV"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listen(t)
			h, err := host.Start(context.Background(), ln, tc.cfg)
			if err == nil {
				h.Close()
				t.Fatalf("Start succeeded, want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: %v, want an error with %q", err, tc.want)
			}
			if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
				t.Errorf("listener %s still accepts after a failed Start", ln.Addr())
			}
		})
	}
}

// TestManifests: the manifest comes as text, from a file, or is the
// default; the guest sees its backends.
func TestManifests(t *testing.T) {
	o := origin(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "fastly.toml")
	if err := os.WriteFile(path, []byte(proxyManifest(o.URL)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cfg    host.Config
		status int
		body   string
	}{
		{"text", host.Config{Manifest: []byte(proxyManifest(o.URL))}, 200, "origin saw /a"},
		{"file", host.Config{ManifestPath: path}, 200, "origin saw /a"},
		{"default: no backend", host.Config{}, 500, "proxy: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t, guests["proxy"])
			cfg.Manifest, cfg.ManifestPath = tc.cfg.Manifest, tc.cfg.ManifestPath
			h, err := host.Start(context.Background(), listen(t), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			status, _, body := get(t, h, "/a", "")
			if status != tc.status || !strings.HasPrefix(body, tc.body) {
				t.Errorf("GET /a: %d %q, want %d %q...", status, body, tc.status, tc.body)
			}
		})
	}
}

// TestDeployAndPools: Deploy swaps the version (a new module and
// manifest, or a new module under the same manifest), a failed Deploy
// leaves the active version serving, and Pools shows the origin pool the
// proxy used.
func TestDeployAndPools(t *testing.T) {
	o := origin(t)
	h, err := host.Start(context.Background(), listen(t), config(t, guests["hello"]))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if len(h.Pools()) != 0 {
		t.Errorf("pools before any backend request: %+v", h.Pools())
	}
	steps := []struct {
		name     string
		wasm     []byte
		manifest []byte
		wantErr  bool
		version  string
		header   string // X-Edgehost-Proxy
		body     string
	}{
		{"started", nil, nil, false, "1", "", "hello from edgehost\n"},
		{"proxy", guests["proxy"], []byte(proxyManifest(o.URL)), false, "2", "1", "origin saw /p"},
		{"bad module", []byte("\x00asm"), nil, true, "2", "1", "origin saw /p"},
		{"bad manifest", guests["hello"], []byte("[local_server"), true, "2", "1", "origin saw /p"},
		{"hello, same manifest", guests["hello"], nil, false, "3", "", "hello from edgehost\n"},
	}
	for _, st := range steps {
		if st.wasm != nil {
			id, err := h.Deploy(context.Background(), st.wasm, st.manifest)
			if (err != nil) != st.wantErr {
				t.Fatalf("%s: Deploy: %v, want error %v", st.name, err, st.wantErr)
			}
			if err == nil && id != st.version {
				t.Errorf("%s: Deploy gave version %q, want %q", st.name, id, st.version)
			}
		}
		if v := h.Version(); v != st.version {
			t.Errorf("%s: Version %q, want %q", st.name, v, st.version)
		}
		status, hdr, body := get(t, h, "/p", "X-Edgehost-Proxy")
		if status != 200 || hdr != st.header || !strings.HasPrefix(body, st.body) {
			t.Errorf("%s: GET /p: %d (proxy header %q) %q, want 200 (%q) %q...", st.name, status, hdr, body, st.header, st.body)
		}
	}
	originAddr := strings.TrimPrefix(o.URL, "http://")
	pools := h.Pools()
	if len(pools) != 1 || pools[0].Addr != originAddr || pools[0].Scheme != "http" || pools[0].Requests != 3 || pools[0].Opened < 1 {
		t.Errorf("Pools: %+v, want one http pool to %s with 3 requests", pools, originAddr)
	}
}

// TestStop: Shutdown and Close stop serving and refuse what comes after.
func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*host.Host) error
	}{
		{"Shutdown", func(h *host.Host) error { return h.Shutdown(context.Background()) }},
		{"Close", (*host.Host).Close},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := host.Start(context.Background(), listen(t), config(t, guests["hello"]))
			if err != nil {
				t.Fatal(err)
			}
			if status, _, _ := get(t, h, "/", ""); status != 200 {
				t.Fatalf("GET before stopping: %d", status)
			}
			if err := tc.stop(h); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if _, err := net.DialTimeout("tcp", h.Addr().String(), time.Second); err == nil {
				t.Errorf("%s still accepts connections after %s", h.Addr(), tc.name)
			}
			if v := h.Version(); v != "" {
				t.Errorf("Version after %s: %q", tc.name, v)
			}
			if _, err := h.Deploy(context.Background(), guests["hello"], nil); !errors.Is(err, host.ErrClosed) {
				t.Errorf("Deploy after %s: %v, want ErrClosed", tc.name, err)
			}
			if err := h.Shutdown(context.Background()); !errors.Is(err, host.ErrClosed) {
				t.Errorf("Shutdown after %s: %v, want ErrClosed", tc.name, err)
			}
			if err := h.Close(); !errors.Is(err, host.ErrClosed) {
				t.Errorf("Close after %s: %v, want ErrClosed", tc.name, err)
			}
		})
	}
}
