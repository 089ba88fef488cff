package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/server"
)

// requestLines parses the JSON log lines and returns the request lines,
// waiting (bounded) until there are n: a line is written once its
// response completed.
func requestLines(t *testing.T, logs *guesttest.LogBuffer, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("log line is not JSON: %q: %v", l, err)
			}
			if rec["msg"] == "request" {
				out = append(out, rec)
			}
		}
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) != n {
				t.Fatalf("%d request lines, want %d:\n%s", len(out), n, logs)
			}
			return out
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRequestLog: one JSON line per downstream request, with what
// happened: status, body bytes, times, whether a parked sandbox served it
// and how many backend requests the guest made.
func TestRequestLog(t *testing.T) {
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from the origin") })
	tests := []struct {
		name     string
		guest    string
		manifest string
		requests int
		sandbox  []string
		backends float64
		bytes    float64 // -1: any non-zero
	}{
		{"proxy", "proxy", backendManifest(origin.URL), 1, []string{"fresh"}, 1, float64(len("from the origin"))},
		{"reused sandbox", "hellomany", "", 3, []string{"fresh", "reused", "reused"}, 0, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &guesttest.LogBuffer{}
			addr := listenHost(t, guests[tc.guest], tc.manifest, server.ListenConfig{}, slog.NewJSONHandler(logs, nil))
			for i := 0; i < tc.requests; i++ {
				resp, err := http.Get("http://" + addr + "/p?q=1")
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				requestLines(t, logs, i+1) // in order: the next one finds the parked sandbox
			}
			lines := requestLines(t, logs, tc.requests)
			ids := map[string]bool{}
			for i, rec := range lines {
				for k, v := range map[string]any{"method": "GET", "path": "/p", "status": 200.0, "proto": "HTTP/1.1",
					"sandbox": tc.sandbox[i], "backend_requests": tc.backends, "version": "1"} {
					if rec[k] != v {
						t.Errorf("line %d: %s = %v, want %v", i, k, rec[k], v)
					}
				}
				b, _ := rec["bytes"].(float64)
				if tc.bytes >= 0 && b != tc.bytes || tc.bytes < 0 && b <= 0 {
					t.Errorf("line %d: bytes = %v, want %v", i, b, tc.bytes)
				}
				d, _ := rec["duration_ms"].(float64)
				f, _ := rec["ttfb_ms"].(float64)
				if !(0 < f && f <= d) {
					t.Errorf("line %d: ttfb_ms %v, duration_ms %v", i, f, d)
				}
				id, _ := rec["request_id"].(string)
				if len(id) != 16 || ids[id] {
					t.Errorf("line %d: request_id %q is not a fresh 16-digit id", i, id)
				}
				ids[id] = true
			}
		})
	}
}
