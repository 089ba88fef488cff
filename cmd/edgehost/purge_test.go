package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestPurgeCommand purges the cache of a running edgehost serve and reads
// its counters from GET /v1/cache.
func TestPurgeCommand(t *testing.T) {
	const token = "purge-token"
	s := startServe(t, true, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--admin-token", token)
	for _, tc := range []struct {
		args    []string
		want    string
		wantErr string
	}{
		{args: []string{"purge", "k1"}, wantErr: "HTTP 401"},
		{args: []string{"purge", "k1", "--token", token}, want: "purged 0 objects"},
		{args: []string{"purge", "k/with spaces", "--soft", "--token", token}, want: "marked stale 0 objects"},
		{args: []string{"purge", "--all", "--token", token}, want: "purged 0 objects"},
		{args: []string{"purge", "--token", token}, wantErr: "give one surrogate key, or --all"},
	} {
		out, errLine, code := cliOut(t, append(tc.args, "--admin", s.adminURL)...)
		if tc.wantErr != "" {
			if code == 0 || !strings.Contains(errLine, tc.wantErr) {
				t.Errorf("%v: exit %d, stderr %q, want an error with %q", tc.args, code, errLine, tc.wantErr)
			}
			continue
		}
		if code != 0 || strings.TrimSpace(out) != tc.want {
			t.Errorf("%v: exit %d, out %q (stderr %q), want %q", tc.args, code, out, errLine, tc.want)
		}
	}
	resp, err := http.Get(s.adminURL + "/v1/cache")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stats struct {
		MaxBytes uint64 `json:"max_bytes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil || stats.MaxBytes != 256<<20 {
		t.Errorf("GET /v1/cache: %v, max_bytes %d, want 256 MiB (cache_memory_mib's default)", err, stats.MaxBytes)
	}
}
