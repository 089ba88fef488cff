package server_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBackendTimeouts: first-byte and between-bytes timeouts of a dynamic
// backend reach the client as a 503 with a short body naming the cause,
// and the same backend (same pool) serves the next request.
func TestBackendTimeouts(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow-head":
			time.Sleep(time.Second)
		case "/slow-body":
			w.Header().Set("Content-Length", "10")
			w.Write([]byte("12345"))
			w.(http.Flusher).Flush()
			time.Sleep(time.Second)
			w.Write([]byte("67890"))
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer origin.Close()
	h := startHost(t, guests["dynbackend"], dynManifest(map[string]string{
		"name": "timed", "target": origin.Listener.Addr().String(),
		"first_byte_timeout_ms": "200", "between_bytes_timeout_ms": "200",
	}), hostOpts{})
	resp, body := get(t, h.url+"/slow-head")
	if resp.StatusCode != 503 || !strings.Contains(body, "http_response_timeout") || len(body) > 300 {
		t.Fatalf("first-byte timeout: %d %q, want a short 503 naming http_response_timeout", resp.StatusCode, body)
	}
	if resp, body := get(t, h.url+"/fast"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the timeout: %d %q", resp.StatusCode, body)
	}
	// Between bytes: the head was sent, so the client must see the body
	// cut short, not a complete short body.
	res, err := http.Get(h.url + "/slow-body")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil {
		t.Fatalf("between-bytes timeout: body %q arrived as complete", b)
	}
	if resp, body := get(t, h.url+"/fast"); resp.StatusCode != 200 || body != "ok" {
		t.Fatalf("after the between-bytes timeout: %d %q", resp.StatusCode, body)
	}
}
