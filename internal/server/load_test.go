package server_test

import (
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/server"
)

// TestIgnoredPartsWarnOnce: a manifest as Fastly's tools write it loads,
// and the parts edgehost does not implement are named in one warning.
func TestIgnoredPartsWarnOnce(t *testing.T) {
	h := startHost(t, guests["hello"], `manifest_version = 3
name = "svc"
authors = ["me@example.com"]
cloned_from = "https://github.com/fastly/compute-starter-kit-go-default"
[local_server]
viceroy_version = "0.12.0"
[local_server.backends.api]
url = "http://127.0.0.1:9/api"
client_certificate = { certificate = "PEM", key = "PEM" }
[local_server.object_stores]
store = [{ key = "k", data = "v" }]
[local_server.backends.rpc]
url = "http://127.0.0.1:9"
grpc = true
`, hostOpts{})
	var warnings []string
	for _, l := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "edgehost does not implement") {
			warnings = append(warnings, l)
		}
	}
	if len(warnings) != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", len(warnings), h.logs)
	}
	for _, name := range []string{"local_server.backends.api.client_certificate", "local_server.object_stores", "local_server.backends.rpc.grpc"} {
		if !strings.Contains(warnings[0], name) {
			t.Errorf("the warning does not name %s: %s", name, warnings[0])
		}
	}
	if resp, body := get(t, h.url+"/hello"); resp.StatusCode != 200 {
		t.Errorf("serving: %d %q", resp.StatusCode, body)
	}
}

// TestGuestEnvFor: FASTLY_SERVICE_ID is [edgehost] service_id, else the
// manifest's service_id, else its name, else edgehost-local; the other
// variables come from [edgehost] or its defaults.
func TestGuestEnvFor(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"name = \"n\"\nservice_id = \"top\"\n[edgehost]\nservice_id = \"host\"\n", "host"},
		{"name = \"n\"\nservice_id = \"top\"\n", "top"},
		{"name = \"n\"\n", "n"},
		{"", "edgehost-local"},
	}
	for _, tc := range tests {
		m, err := config.Parse("fastly.toml", []byte(tc.doc), "")
		if err != nil {
			t.Fatal(err)
		}
		env := map[string]string{}
		for _, kv := range server.GuestEnvFor(m) {
			env[kv[0]] = kv[1]
		}
		if env["FASTLY_SERVICE_ID"] != tc.want || env["FASTLY_POP"] != "EDGEHOST" || env["FASTLY_REGION"] != "local" ||
			env["FASTLY_CUSTOMER_ID"] != config.DefaultCustomerID || env["FASTLY_CACHE_GENERATION"] != "0" || env["FASTLY_HOSTNAME"] == "" {
			t.Errorf("%q: %v", tc.doc, env)
		}
	}
}
