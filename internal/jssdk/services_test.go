package jssdk_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

const jsUA = "Mozilla/5.0 (Linux; Android 14; Pixel 8)"

// servicesManifest is the part of app.js's manifest for services.js: ACL
// "blocklist" (its file written to the shared directory), one address of
// geolocation, one user agent, shielding sites (the remote one reaches
// shield).
func servicesManifest(shield string) string {
	acl := `{"entries": [{"op": "create", "prefix": "192.0.2.0/24", "action": "BLOCK"},
		{"op": "create", "prefix": "2001:db8::/32", "action": "ALLOW"}]}`
	if err := os.WriteFile(filepath.Join(shared.dir, "blocklist.json"), []byte(acl), 0o644); err != nil {
		panic(err)
	}
	return fmt.Sprintf(`[local_server.acls]
blocklist = "blocklist.json"
[local_server.geolocation]
format = "inline-toml"
[local_server.geolocation.addresses."198.51.100.7"]
city = "Testville"
as_number = 64500
country_code = "NZ"
country_code3 = "NZL"
utc_offset = 1300
latitude = -41.29
[local_server.device_detection]
format = "inline-toml"
[local_server.device_detection.user_agents.%q]
device = { name = "Pixel 8", brand = "Google", is_mobile = true, is_tablet = false }
[local_server.shielding_sites]
"pdx-or-us" = "local"
"bfi-wa-us" = { unencrypted = %q, encrypted = "https://127.0.0.1:1" }
`, jsUA, shield)
}

func jsonBody(t *testing.T, h *jsHost, path string) any {
	t.Helper()
	_, body := h.get(t, path)
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("%s: %v: %s", path, err, body)
	}
	return v
}

func wantJSON(t *testing.T, h *jsHost, path, want string) {
	t.Helper()
	got := jsonBody(t, h, path)
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("%s = %s, want %s", path, g, want)
	}
}

// TestServicesACL: fastly:acl's Acl.lookup, IPv4 and IPv6, longest prefix
// and no match.
func TestServicesACL(t *testing.T) {
	h := app(t)
	wantJSON(t, h, "/svc/acl?ip=192.0.2.9", `{"prefix":"192.0.2.0/24","action":"BLOCK"}`)
	wantJSON(t, h, "/svc/acl?ip=2001:db8::1", `{"prefix":"2001:db8::/32","action":"ALLOW"}`)
	wantJSON(t, h, "/svc/acl?ip=10.0.0.1", `null`)
}

// TestServicesGeoDevice: fastly:geolocation and fastly:device.
func TestServicesGeoDevice(t *testing.T) {
	h := app(t)
	wantJSON(t, h, "/svc/geo?ip=198.51.100.7", `{"city":"Testville","as_number":64500,"country_code":"NZ","country_code3":"NZL","utc_offset":1300,"latitude":-41.29}`)
	wantJSON(t, h, "/svc/geo?ip=127.0.0.1", `{"city":"San Francisco","as_number":54113,"country_code":"US","country_code3":"USA","utc_offset":-700,"latitude":37.77869}`)
	wantJSON(t, h, "/svc/geo?ip=203.0.113.1", `null`)
	wantJSON(t, h, "/svc/device?ua="+url.QueryEscape(jsUA), `{"name":"Pixel 8","brand":"Google","isMobile":true,"isTablet":false}`)
	wantJSON(t, h, "/svc/device?ua=curl", `null`)
}

// TestServicesRateLimit: fastly:edge-rate-limiter's checkRate over its
// limit of 10 per second blocks and penalty-boxes the entry. (Getting out
// of the box takes a minute of real time here; the conformance suite
// drives that part on a test clock.)
func TestServicesRateLimit(t *testing.T) {
	h := app(t)
	entry := "js-" + t.Name()
	blocked := false
	for i := 0; i < 40 && !blocked; i++ {
		v := jsonBody(t, h, "/svc/erl?entry="+entry).(map[string]any)
		blocked = v["blocked"] == true
		if blocked && (v["boxed"] != true || v["rate"].(float64) <= 10) {
			t.Errorf("blocked answer %v: want boxed and a rate over 10", v)
		}
	}
	if !blocked {
		t.Fatal("40 requests in a row never went over 10 per second")
	}
	if v := jsonBody(t, h, "/svc/erl?entry=other-"+entry).(map[string]any); v["blocked"] != false || v["count"].(float64) != 1 {
		t.Errorf("another entry: %v", v)
	}
}

// TestServicesShielding: fastly:shielding's Shield, running on the local
// site, and a fetch through a remote shield's backend.
func TestServicesShielding(t *testing.T) {
	h := app(t)
	wantJSON(t, h, "/svc/shield?name=pdx-or-us", `{"runningOn":true}`)
	v := jsonBody(t, h, "/svc/shield?name=bfi-wa-us").(map[string]any)
	if v["runningOn"] != false || v["status"].(float64) != 200 || v["body"] != "echo /echo?via=shield x-from-js=" || v["backend"] != "shield:bfi-wa-us:unencrypted" {
		t.Errorf("remote shield: %v", v)
	}
}
