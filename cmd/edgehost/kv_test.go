package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/guesttest"
)

func guestDo(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestKVCommands: a guest and `edgehost kv` read and write the same
// stores through a running host; the stores are in serve's start-up line
// and on the admin API (secrets by name only); a restart keeps the data.
func TestKVCommands(t *testing.T) {
	tmp := t.TempDir()
	if _, err := guesttest.Build("testdata/guests/kvsecret", tmp); err != nil {
		t.Fatal(err)
	}
	wasm := filepath.Join(tmp, "kvsecret.wasm")
	manifest := filepath.Join(tmp, "fastly.toml")
	os.WriteFile(manifest, []byte(`
[local_server.kv_stores]
kvs = [{ key = "seeded", data = "seed value" }]

[local_server.secret_stores]
secrets = [{ key = "api-key", env = "EDGEHOST_TEST_KV_SECRET" }]
`), 0o644)
	t.Setenv("EDGEHOST_TEST_KV_SECRET", "cmd-fake-secret")
	dataDir := filepath.Join(tmp, "data")
	const token = "kv-test-token"
	args := []string{"-C", manifest, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", dataDir, "--admin-token", token, wasm}
	logs := &guesttest.LogBuffer{}
	s := startServeStderr(t, true, logs, args...)

	if !regexp.MustCompile(`kv_stores="kvs \(1 keys, 10 bytes\)"`).MatchString(logs.String()) ||
		!strings.Contains(logs.String(), `secret_stores="secrets (1 secrets)"`) {
		t.Errorf("start-up log does not name the stores:\n%s", logs.String())
	}
	if code, _, body := guestDo(t, "POST", s.url+"/kv/put?store=kvs&key=fromguest", "written by the guest"); code != 200 {
		t.Fatalf("guest put: %d %s", code, body)
	}

	out, errLine, code := cliOut(t, "kv", "list", "--admin", s.adminURL)
	if code != 0 || !regexp.MustCompile(`(?m)^kvs\s+2\s+30$`).MatchString(out) {
		t.Fatalf("kv list: exit %d, %q, %q", code, out, errLine)
	}
	if out, _, code = cliOut(t, "kv", "list", "--admin", s.adminURL, "kvs"); code != 0 || out != "fromguest\nseeded\n" {
		t.Fatalf("kv list kvs: exit %d, %q", code, out)
	}
	if out, _, code = cliOut(t, "kv", "get", "--admin", s.adminURL, "kvs", "fromguest"); code != 0 || out != "written by the guest" {
		t.Fatalf("kv get: exit %d, %q", code, out)
	}
	if _, errLine, code = cliOut(t, "kv", "put", "--admin", s.adminURL, "kvs", "cli", "x"); code == 0 || !strings.Contains(errLine, "HTTP 401") {
		t.Fatalf("kv put without a token: exit %d, %q", code, errLine)
	}
	if out, errLine, code = cliOut(t, "kv", "put", "--admin", s.adminURL, "--token", token, "--metadata", "from-cli", "kvs", "cli", "put by the CLI"); code != 0 || !strings.HasPrefix(out, "stored kvs/cli (14 bytes), generation ") {
		t.Fatalf("kv put: exit %d, %q, %q", code, out, errLine)
	}
	if code, h, body := guestDo(t, "GET", s.url+"/kv/get?store=kvs&key=cli", ""); code != 200 || body != "put by the CLI" || h.Get("X-Metadata") != "from-cli" {
		t.Fatalf("the guest reads the CLI's put: %d %q %q", code, body, h.Get("X-Metadata"))
	}
	if _, _, code = cliOut(t, "kv", "put", "--admin", s.adminURL, "--token", token, "--mode", "append", "kvs", "cli", "+more"); code != 0 {
		t.Fatalf("kv put --mode append: exit %d", code)
	}
	if out, _, _ = cliOut(t, "kv", "get", "--admin", s.adminURL, "kvs", "cli"); out != "put by the CLI+more" {
		t.Fatalf("after append: %q", out)
	}
	// The admin API's preconditions, as Fastly's KV API: add of an existing
	// key and a stale If-Generation-Match are 412.
	for _, tc := range []struct {
		path string
		hdr  [2]string
	}{
		{"/v1/kv/kvs/keys/cli?mode=add", [2]string{}},
		{"/v1/kv/kvs/keys/cli", [2]string{"If-Generation-Match", "1"}},
	} {
		req, _ := http.NewRequest("PUT", s.adminURL+tc.path, strings.NewReader("x"))
		req.Header.Set("Authorization", "Bearer "+token)
		if tc.hdr[0] != "" {
			req.Header.Set(tc.hdr[0], tc.hdr[1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusPreconditionFailed {
			t.Errorf("PUT %s %v: %d, want 412", tc.path, tc.hdr, resp.StatusCode)
		}
	}
	if _, errLine, code = cliOut(t, "kv", "get", "--admin", s.adminURL, "kvs", "nope"); code == 0 || !strings.Contains(errLine, "HTTP 404") {
		t.Fatalf("kv get of a missing key: exit %d, %q", code, errLine)
	}
	if _, errLine, code = cliOut(t, "kv", "get", "--admin", s.adminURL, "nostore", "k"); code == 0 || !strings.Contains(errLine, "HTTP 404") {
		t.Fatalf("kv get in a missing store: exit %d, %q", code, errLine)
	}
	if out, _, code = cliOut(t, "kv", "delete", "--admin", s.adminURL, "--token", token, "kvs", "cli"); code != 0 || out != "deleted kvs/cli\n" {
		t.Fatalf("kv delete: exit %d, %q", code, out)
	}
	if code, _, _ := guestDo(t, "GET", s.url+"/kv/get?store=kvs&key=cli", ""); code != 404 {
		t.Fatalf("after kv delete the guest gets %d", code)
	}

	// Secrets: the guest reads the value; the admin API and metrics name
	// the store and the secret only.
	if code, _, body := guestDo(t, "GET", s.url+"/secret?store=secrets&key=api-key", ""); code != 200 || body != "cmd-fake-secret" {
		t.Fatalf("guest secret: %d %q", code, body)
	}
	code, body := httpGet(t, s.adminURL+"/v1/secret-stores")
	if code != 200 || body != `{"stores":[{"name":"secrets","secrets":1,"names":["api-key"]}]}`+"\n" {
		t.Fatalf("GET /v1/secret-stores: %d %s", code, body)
	}
	_, metrics := httpGet(t, s.adminURL+"/metrics")
	for what, text := range map[string]string{"the log": logs.String(), "/metrics": metrics, "/v1/secret-stores": body} {
		if strings.Contains(text, "cmd-fake-secret") {
			t.Errorf("the secret value appears in %s", what)
		}
	}

	// A restart keeps what was written.
	s.stop()
	s = startServeStderr(t, true, io.Discard, args...)
	if code, _, body := guestDo(t, "GET", s.url+"/kv/get?store=kvs&key=fromguest", ""); code != 200 || body != "written by the guest" {
		t.Fatalf("after a restart: %d %q", code, body)
	}
}
