package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// chromium returns Debian's chromium (or another Chromium-family browser
// on PATH). Without one it skips t, except with CI=true, when it fails t.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH (apt-get install chromium); CI=true requires the browser test")
	}
	t.Skip("skipped: no chromium on PATH (apt-get install chromium)")
	return ""
}

// artifactDir is where the browser test leaves its screenshots:
// $EDGEHOST_TEST_ARTIFACTS when set, else the test's artifact directory
// (kept under the output directory with go test -artifacts).
func artifactDir(t *testing.T) string {
	if d := os.Getenv("EDGEHOST_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.ArtifactDir()
}

// writePackage writes a package .tar.gz (fastly.toml and bin/main.wasm).
func writePackage(t *testing.T, path string, manifest string, wasm []byte) {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // the fastest deflate: the race detector makes the default level take seconds per module
	tw := tar.NewWriter(zw)
	for _, f := range []struct {
		name string
		data []byte
	}{{"fastly.toml", []byte(manifest)}, {"bin/main.wasm", wasm}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write(f.data)
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStatusPageInBrowser loads the admin listener's status page in
// headless chromium after two deploys (a module that traps, then the proxy
// example with a backend), a failed request and a proxied one; checks
// what it shows, with and without JavaScript; watches it update itself;
// rolls back with its button; and saves screenshots.
func TestStatusPageInBrowser(t *testing.T) {
	browser := chromium(t)
	tmp := t.TempDir()
	var proxy []byte
	if c, ok := quickTinyGo(); ok {
		mods, err := guesttest.TinyGoFixtures(context.Background(), c, "examples/proxy")
		if err != nil {
			t.Fatal(err)
		}
		proxy = mods["proxy"]
	} else {
		var err error
		if proxy, err = guesttest.Build("examples/proxy", tmp); err != nil {
			t.Fatal(err)
		}
	}
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin saw "+r.URL.Path)
	})
	trap := filepath.Join(tmp, "trap.wasm")
	os.WriteFile(trap, guesttest.TrapModule(), 0o644)
	pkg := filepath.Join(tmp, "proxy.tar.gz")
	writePackage(t, pkg, fmt.Sprintf("name = \"proxy\"\n[local_server.backends.origin]\nurl = %q\n", origin.URL), proxy)

	const token = "status-page-token"
	s := startServe(t, true, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", filepath.Join(tmp, "data"), "--admin-token", token)
	for _, m := range []string{trap, pkg} {
		if out, errLine, code := cliOut(t, "deploy", "--admin", s.adminURL, "--token", token, m); code != 0 {
			t.Fatalf("deploy %s: exit %d %q %q", m, code, out, errLine)
		}
	}
	// Version 2 (proxy) is active; one proxied request.
	if code, body := httpGet(t, s.url+"/via-proxy"); code != 200 || body != "origin saw /via-proxy" {
		t.Fatalf("proxied request: %d %q", code, body)
	}
	// Version 1 (trap) for one failing request, then 2 again.
	cliOut(t, "activate", "--admin", s.adminURL, "--token", token, "1")
	code, body := httpGet(t, s.url+"/boom")
	reqID := regexp.MustCompile(`[0-9a-f]{16,}`).FindString(body)
	if code != 500 || reqID == "" {
		t.Fatalf("trap: %d %q, want 500 with a request id", code, body)
	}
	cliOut(t, "activate", "--admin", s.adminURL, "--token", token, "2")

	// Without JavaScript: the server-rendered page says it all.
	code, page := httpGet(t, s.adminURL+"/")
	originAddr := strings.TrimPrefix(origin.URL, "http://")
	for _, want := range []string{"Version <span class=\"active\">2</span>", "Roll back to version 1", originAddr, reqID, "sandbox failed: guest trapped", "500</td>", "200</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page (no JS) lacks %q", want)
		}
	}
	if code != 200 || t.Failed() {
		t.Fatalf("status page %d:\n%s", code, page)
	}

	// A form posted from another site's page is refused, token or not.
	req, _ := http.NewRequest(http.MethodPost, s.adminURL+"/ui/activate", strings.NewReader("version=1&token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://attacker.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site form post: %s, want 403", resp.Status)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1200, 1000),
		// Loopback only: every name but localhost fails to resolve.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	var active, pools, errs, total string
	var shot []byte
	if err := chromedp.Run(ctx,
		chromedp.Navigate(s.adminURL+"/"),
		chromedp.Text("#active-version", &active, chromedp.ByQuery),
		chromedp.Text("#pools", &pools, chromedp.ByQuery),
		chromedp.Text("#errors", &errs, chromedp.ByQuery),
		chromedp.Text("#total", &total, chromedp.ByQuery),
		chromedp.FullScreenshot(&shot, 100),
	); err != nil {
		t.Fatal(err)
	}
	save := func(name string, b []byte) {
		p := filepath.Join(artifactDir(t), name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	save("status-after-deploy.png", shot)
	if !strings.Contains(active, "Version 2") {
		t.Errorf("active version shows %q", active)
	}
	// The pool row: its address, one request, one connection opened.
	if !regexp.MustCompile(regexp.QuoteMeta(originAddr) + `\s+1\s+1\s+0\s`).MatchString(pools) {
		t.Errorf("pools show %q, want %s with 1 request and 1 connection opened", pools, originAddr)
	}
	if !strings.Contains(errs, reqID) {
		t.Errorf("recent guest errors %q lack the failed request's id %s", errs, reqID)
	}

	// It updates itself: another request shows up without a reload.
	httpGet(t, s.url+"/again")
	var after string
	if err := chromedp.Run(ctx, chromedp.Poll(fmt.Sprintf(`document.getElementById("total").textContent !== %q`, total), nil, chromedp.WithPollingTimeout(20*time.Second)),
		chromedp.Text("#total", &after, chromedp.ByQuery)); err != nil {
		t.Fatalf("the page did not update itself (total %s): %v", total, err)
	}

	// Roll back: a wrong token changes nothing, the right one rolls back.
	var msg string
	if err := chromedp.Run(ctx,
		chromedp.SendKeys("#token", "wrong", chromedp.ByQuery),
		chromedp.Click("#rollback", chromedp.ByQuery),
		chromedp.WaitVisible("#error", chromedp.ByQuery),
		chromedp.Text("#error", &msg, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "wrong or missing admin token") {
		t.Errorf("after a wrong token the page says %q", msg)
	}
	if code, body := httpGet(t, s.url+"/x"); code != 200 || !strings.HasPrefix(body, "origin saw") {
		t.Fatalf("a wrong token changed the active version: %d %q", code, body)
	}
	if err := chromedp.Run(ctx,
		chromedp.SetValue("#token", token, chromedp.ByQuery),
		chromedp.Click("#rollback", chromedp.ByQuery),
		chromedp.WaitVisible("#message", chromedp.ByQuery),
		chromedp.Text("#message", &msg, chromedp.ByQuery),
		chromedp.Text("#active-version", &active, chromedp.ByQuery),
		chromedp.FullScreenshot(&shot, 100),
	); err != nil {
		t.Fatal(err)
	}
	save("status-after-rollback.png", shot)
	if msg != "activated version 1" || !strings.Contains(active, "Version 1") {
		t.Errorf("after roll-back the page says %q and %q", msg, active)
	}
	if code, _ := httpGet(t, s.url+"/x"); code != 500 {
		t.Errorf("after roll-back to the trap module a request got %d, want 500", code)
	}
}
