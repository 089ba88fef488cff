package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// TestServeTLSAndJSONLogs runs `edgehost serve --tls-self-signed
// --log-format json` and sends it HTTPS requests over HTTP/1.1 and
// HTTP/2: the guest sees HTTPS and the HTTP version, and every request
// has one JSON log line whose request id also tags the guest's stdout.
func TestServeTLSAndJSONLogs(t *testing.T) {
	dir := t.TempDir()
	wasm, err := guesttest.Build("testdata/guests/tlsmeta", dir)
	if err != nil {
		t.Fatal(err)
	}
	wasmPath := filepath.Join(dir, "tlsmeta.wasm")
	if err := os.WriteFile(wasmPath, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &guesttest.LogBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, withEngine("serve", "--addr", "127.0.0.1:0", "--admin-addr", "", "--tls-self-signed", "--log-format", "json", wasmPath), strings.NewReader(""), pw, stderr)
		pw.Close()
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr)
		}
	}()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no serving line: %v; stderr:\n%s", err, stderr)
	}
	go io.Copy(io.Discard, br)
	base := regexp.MustCompile(`https://[0-9.:]+`).FindString(line)
	if base == "" {
		t.Fatalf("serving line %q has no https URL", line)
	}
	insecure := &tls.Config{InsecureSkipVerify: true} // the certificate is made at start
	clients := map[string]*http.Client{
		"2": {Transport: &http.Transport{TLSClientConfig: insecure}},
		"3": {Transport: &http2.Transport{TLSClientConfig: insecure}},
	}
	for version, c := range clients {
		resp, err := c.Get(base + "/v" + version)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"uri=" + base + "/v" + version + "\n", "version=" + version + "\n", "protocol=TLSv1.3\n"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("HTTP version %s: guest answered %q, lacking %q", version, b, want)
			}
		}
	}

	// The log lines come after the responses: wait for both.
	var requests []map[string]any
	stdout := map[string]string{} // request id -> the guest's stdout line
	deadline := time.Now().Add(10 * time.Second)
	for {
		requests, stdout = requests[:0], map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("log line is not JSON: %q: %v", l, err)
			}
			switch {
			case rec["msg"] == "request":
				requests = append(requests, rec)
			case rec["stream"] == "stdout":
				stdout[rec["request_id"].(string)] = rec["msg"].(string)
			}
		}
		if len(requests) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(requests) != 2 {
		t.Fatalf("%d request lines, want 2:\n%s", len(requests), stderr)
	}
	for _, rec := range requests {
		path, _ := rec["path"].(string)
		version := strings.TrimPrefix(path, "/v")
		proto := map[string]string{"2": "HTTP/1.1", "3": "HTTP/2.0"}[version]
		want := map[string]any{"method": "GET", "status": 200.0, "sandbox": "fresh", "backend_requests": 0.0, "proto": proto}
		for k, v := range want {
			if rec[k] != v {
				t.Errorf("%s: %s = %v, want %v", path, k, rec[k], v)
			}
		}
		bytes, _ := rec["bytes"].(float64)
		dur, _ := rec["duration_ms"].(float64)
		ttfb, _ := rec["ttfb_ms"].(float64)
		if bytes < 100 || dur <= 0 || ttfb <= 0 || ttfb > dur {
			t.Errorf("%s: bytes %v, duration_ms %v, ttfb_ms %v: want a body and 0 < ttfb <= duration", path, bytes, dur, ttfb)
		}
		id, _ := rec["request_id"].(string)
		if got := stdout[id]; got != "tlsmeta served version "+version {
			t.Errorf("%s: guest stdout tagged with its request id %q: %q", path, id, got)
		}
	}
}
