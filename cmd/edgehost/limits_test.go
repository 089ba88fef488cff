package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestHostLimitsApplyToDeployedVersions: the per-sandbox limits of the
// host's own [edgehost] table bind a version deployed through the admin
// API whose package's fastly.toml says otherwise.
func TestHostLimitsApplyToDeployedVersions(t *testing.T) {
	tmp := t.TempDir()
	flood, err := guesttest.Build("testdata/guests/flood", tmp)
	if err != nil {
		t.Fatal(err)
	}
	hostManifest := filepath.Join(tmp, "host.toml")
	if err := os.WriteFile(hostManifest, []byte("[edgehost]\nmax_handles = 64\nmax_header_bytes = 4096\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the fastest deflate: the race detector makes the default level take seconds per module
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"pkg/fastly.toml", []byte("name = \"pkg\"\n[edgehost]\nmax_handles = 100000\nmax_header_bytes = 1000000\n")},
		{"pkg/bin/main.wasm", flood},
	} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write(f.data)
	}
	tw.Close()
	zw.Close()
	s := startServe(t, true, "-C", hostManifest, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", filepath.Join(tmp, "data"))
	resp, err := http.Post(s.adminURL+"/v1/modules", "application/gzip", &buf)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("deploy: %d", resp.StatusCode)
	}
	tests := []struct {
		path string
		max  int // calls that may pass under the host's limit
	}{
		{"/handles?n=100000", 64},
		{"/headers?n=100000", 4096 / (len("x-h") + len("v") + 4)},
	}
	for _, tc := range tests {
		code, body := httpGet(t, s.url+tc.path)
		var what string
		var n, st int
		if _, err := fmt.Sscanf(body, "%s n=%d status=%d", &what, &n, &st); code != 200 || err != nil {
			t.Fatalf("%s: %d %q", tc.path, code, body)
		}
		if n > tc.max || st == 0 {
			t.Errorf("%s: %d calls passed (status %d); the host's limit allows %d", tc.path, n, st, tc.max)
		}
	}
}
