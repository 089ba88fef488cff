package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/edgehost/edgehost/internal/guesttest"
)

// terminal opens a pseudo-terminal: the returned file is its terminal
// side (what a command writes to), and out collects what it shows.
func terminal(t *testing.T) (*os.File, *guesttest.LogBuffer) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("skipped: no pseudo-terminal: %v", err)
	}
	out := &guesttest.LogBuffer{}
	copied := make(chan struct{})
	go func() { io.Copy(out, ptmx); close(copied) }()
	t.Cleanup(func() {
		tty.Close()
		ptmx.Close()
		<-copied
	})
	return tty, out
}

// paddedModule is guesttest.NopModule with a custom section (which
// engines skip) that makes it size bytes or a little more: large enough
// for a progress line, yet quick to compile (under -race too).
func paddedModule(size int) []byte {
	uleb := func(n int) []byte {
		var b []byte
		for {
			c := byte(n & 0x7f)
			n >>= 7
			if n == 0 {
				return append(b, c)
			}
			b = append(b, c|0x80)
		}
	}
	name := "edgehost-test-padding"
	content := append(append(uleb(len(name)), name...), make([]byte, size)...)
	return append(append(guesttest.NopModule(), 0x00), append(uleb(len(content)), content...)...)
}

// TestProgressOnTerminal: on a terminal, edgehost deploy shows the upload
// of a large module (2 MiB) and then the host's compile, and
// serve shows the compile of the upload on its own terminal; with output
// that is not a terminal neither shows anything.
func TestProgressOnTerminal(t *testing.T) {
	tmp := t.TempDir()
	hello := paddedModule(2 << 20)
	mod := filepath.Join(tmp, "large.wasm")
	os.WriteFile(mod, hello, 0o644)

	hostTTY, hostOut := terminal(t)
	s := startServeStderr(t, true, hostTTY, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", filepath.Join(tmp, "data"))

	clientTTY, clientOut := terminal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout bytes.Buffer
	if code := cli(ctx, []string{"deploy", "--admin", s.adminURL, mod}, &stdout, clientTTY); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, clientOut)
	}
	if !strings.HasPrefix(stdout.String(), "version 1  sha256 ") {
		t.Errorf("deploy's stdout (not a terminal) got %q", &stdout)
	}
	size := regexp.QuoteMeta(byteSize(int64(len(hello))))
	waitFor(t, 10*time.Second, "the client's progress line", func() bool {
		return regexp.MustCompile(`edgehost: uploaded ` + size + ` in [0-9.]+s; the host answered [0-9.]+s later\r?\n`).MatchString(clientOut.String())
	})
	if !strings.Contains(clientOut.String(), "edgehost: uploading ") {
		t.Errorf("no upload progress on the client's terminal:\n%q", clientOut)
	}
	waitFor(t, 10*time.Second, "the host's compile line", func() bool {
		return regexp.MustCompile(`edgehost: compiled an upload \(` + size + `\) with ` + guesttest.EngineName() + ` in [0-9.]+s`).MatchString(hostOut.String())
	})
	if !strings.Contains(hostOut.String(), "edgehost: compiling an upload") {
		t.Errorf("no compiling line on the host's terminal:\n%q", hostOut)
	}

	// Not a terminal: no progress lines.
	var errb bytes.Buffer
	if code := cli(ctx, []string{"deploy", "--admin", s.adminURL, mod}, &stdout, &errb); code != 0 || strings.Contains(errb.String(), "upload") {
		t.Errorf("deploy to a non-terminal: exit %d, stderr %q", code, &errb)
	}
}

// TestProgressTiered: on wazero, serve's compile line for a module large
// enough for tiered compilation (tiered_compile_min_kib, 8 MiB by default)
// says the module starts on the interpreter, and a second line says when
// its optimized code serves; /metrics then reports the optimized tier.
func TestProgressTiered(t *testing.T) {
	if guesttest.EngineName() != "wazero" {
		t.Skip("only wazero compiles in tiers (README.md, Tiered compilation)")
	}
	tmp := t.TempDir()
	large := paddedModule(8<<20 + 4096)
	mod := filepath.Join(tmp, "large.wasm")
	os.WriteFile(mod, large, 0o644)

	hostTTY, hostOut := terminal(t)
	// A compiled-code cache of its own (the shared one has seen this
	// module, and a module the cache has seen compiles optimized at once).
	s := startServeStderr(t, true, hostTTY, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", filepath.Join(tmp, "data"), "--cache-dir", filepath.Join(tmp, "cache"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := cli(ctx, []string{"deploy", "--admin", s.adminURL, mod}, &stdout, &stderr); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, &stderr)
	}
	size := regexp.QuoteMeta(byteSize(int64(len(large))))
	defer func() {
		if t.Failed() {
			t.Logf("host terminal:\n%q", hostOut)
		}
	}()
	waitFor(t, 30*time.Second, "the host's compile line and its optimized line", func() bool {
		out := hostOut.String()
		return regexp.MustCompile(`edgehost: compiled an upload \(`+size+`\) with wazero for the interpreter in [0-9.]+s; the optimized code compiles in the background`).MatchString(out) &&
			regexp.MustCompile(`edgehost: optimized code of an upload serves new sandboxes \([0-9.]+s after the compile began\)`).MatchString(out)
	})
	// The switch is on /metrics too.
	code, metrics := httpGet(t, s.adminURL+"/metrics")
	for _, want := range []string{`edgehost_active_version_tier{tier="optimized"} 1`, `edgehost_active_version_tier{tier="interpreter"} 0`, "edgehost_active_version_compiling 0"} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics (%d) lacks %q", code, want)
		}
	}
}
