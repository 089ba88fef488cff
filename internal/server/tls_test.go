package server_test

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestDynamicBackendTLS: a guest registers a TLS dynamic backend to a
// local TLS origin with its CA, SNI name, certificate name and versions.
func TestDynamicBackendTLS(t *testing.T) {
	var sni atomic.Value // string
	origin := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	origin.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		sni.Store(hello.ServerName)
		return nil, nil
	}}
	origin.StartTLS()
	defer origin.Close()
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: origin.Certificate().Raw}))
	base := map[string]string{
		"name": "tls-origin", "target": origin.Listener.Addr().String(), "ssl": "1",
		"ca_cert": ca, "sni": "example.com", "cert_hostname": "example.com",
	}
	tests := []struct {
		name    string
		change  map[string]string
		status  int
		body    string
		wantSNI string
	}{
		{"verified", nil, 200, "ok", "example.com"},
		{"tls 1.3 only", map[string]string{"ssl_min": "1.3", "ssl_max": "1.3"}, 200, "ok", "example.com"},
		{"wrong certificate name", map[string]string{"cert_hostname": "other.test"}, 503, "tls_certificate_error", ""},
		{"untrusted root", map[string]string{"ca_cert": ""}, 503, "tls_certificate_error", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kv := map[string]string{}
			for k, v := range base {
				kv[k] = v
			}
			for k, v := range tc.change {
				kv[k] = v
			}
			sni.Store("")
			h := startHost(t, guests["dynbackend"], dynManifest(kv), hostOpts{})
			resp, body := get(t, h.url+"/")
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("status %d body %q, want %d containing %q", resp.StatusCode, body, tc.status, tc.body)
			}
			if got := sni.Load().(string); tc.wantSNI != "" && got != tc.wantSNI {
				t.Errorf("origin saw SNI %q, want %q", got, tc.wantSNI)
			}
		})
	}
}
