package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestServeServices: the platform services of the manifest appear in
// serve's start-up log line and on GET /v1/services (names and sizes,
// not the data).
func TestServeServices(t *testing.T) {
	dir := t.TempDir()
	hello, err := guesttest.Build("examples/hello", dir)
	if err != nil {
		t.Fatal(err)
	}
	wasm := filepath.Join(dir, "hello.wasm")
	os.WriteFile(wasm, hello, 0o644)
	os.WriteFile(filepath.Join(dir, "acl.json"), []byte(`{"entries": [{"op": "create", "prefix": "192.0.2.0/24", "action": "BLOCK"},
		{"op": "create", "prefix": "2001:db8::/32", "action": "ALLOW"}]}`), 0o644)
	manifest := filepath.Join(dir, "fastly.toml")
	os.WriteFile(manifest, []byte(`[local_server.acls]
blocklist = "acl.json"
[local_server.geolocation]
format = "inline-toml"
[local_server.geolocation.addresses."198.51.100.7"]
city = "Secretville"
[local_server.device_detection]
format = "inline-toml"
[local_server.device_detection.user_agents."UA/1"]
device = { name = "x" }
[local_server.shielding_sites]
"pdx-or-us" = "local"
"bfi-wa-us" = { unencrypted = "http://127.0.0.1:1", encrypted = "https://127.0.0.1:2" }
`), 0o644)
	var logs guesttest.LogBuffer
	s := startServeStderr(t, true, &logs, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "-C", manifest, wasm)
	want := `services="acls=blocklist(2) geolocation=addresses:1,loopback device_detection=1 shielding_sites=bfi-wa-us,pdx-or-us(local)"`
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("start-up log lacks %s:\n%s", want, &logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	code, body := httpGet(t, s.adminURL+"/v1/services")
	if code != 200 {
		t.Fatalf("GET /v1/services: %d %s", code, body)
	}
	var info struct {
		ACLs []struct {
			Name    string
			Entries int
		}
		Geolocation struct {
			Addresses       int  `json:"addresses"`
			LoopbackDefault bool `json:"loopback_default"`
		}
		DeviceDetection struct {
			UserAgents int `json:"user_agents"`
		} `json:"device_detection"`
		ShieldingSites []struct {
			Name  string
			Local bool
		} `json:"shielding_sites"`
	}
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(info.ACLs) != 1 || info.ACLs[0].Name != "blocklist" || info.ACLs[0].Entries != 2 || info.Geolocation.Addresses != 1 ||
		!info.Geolocation.LoopbackDefault || info.DeviceDetection.UserAgents != 1 || len(info.ShieldingSites) != 2 || !info.ShieldingSites[1].Local {
		t.Errorf("GET /v1/services = %s", body)
	}
	for _, secret := range []string{"192.0.2.0", "Secretville", "UA/1"} {
		if strings.Contains(body, secret) {
			t.Errorf("GET /v1/services shows the data %q: %s", secret, body)
		}
	}
}
