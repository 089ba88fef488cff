package admin_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/store"
)

// hostProc is this test binary running as a host (runHost) on a data dir.
type hostProc struct {
	cmd               *exec.Cmd
	adminURL, baseURL string
	stderr            *bytes.Buffer
}

func startHostProc(t *testing.T, dir string) *hostProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), hostEnv+"="+dir, hostCacheEnv+"="+sharedCache)
	p := &hostProc{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill() })
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- l
		io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		m := regexp.MustCompile(`admin=(\S+) downstream=(\S+)`).FindStringSubmatch(l)
		if m == nil {
			p.kill()
			t.Fatalf("host process did not start: %q; stderr:\n%s", l, p.stderr)
		}
		p.adminURL, p.baseURL = m[1], m[2]
	case <-time.After(30 * time.Second):
		t.Fatalf("host process did not start in 30 s; stderr:\n%s", p.stderr)
	}
	return p
}

// kill sends SIGKILL and reaps the process.
func (p *hostProc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Wait()
}

func (p *hostProc) host() *testHost { return &testHost{url: p.baseURL, adminURL: p.adminURL} }

// checkConsistent opens dir as the next host would and checks it: tmp/
// emptied, every version's module matches its sha256 and its manifest
// parses, the active pointer names a stored version. It returns the
// versions and the active one.
func checkConsistent(t *testing.T, dir string) ([]store.Version, int) {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatalf("data dir unusable after the kill: %v", err)
	}
	defer st.Close()
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("tmp/ not emptied: %v", left)
	}
	versions, err := st.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range versions {
		if _, _, _, err := st.Load(v.Number); err != nil {
			t.Fatalf("version %d: %v", v.Number, err)
		}
	}
	blobs, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	shas := map[string]bool{}
	for _, v := range versions {
		shas[v.SHA256] = true
	}
	if len(blobs) != len(shas) {
		t.Fatalf("%d blobs for %d distinct modules", len(blobs), len(shas))
	}
	active, err := st.Active()
	if err != nil {
		t.Fatal(err)
	}
	return versions, active
}

// TestKillDuringUpload kills the host (SIGKILL) in the middle of an
// upload, then at random moments of back-to-back deploys; each time the
// data dir must be consistent and a restarted host must serve the last
// version it reported active.
func TestKillDuringUpload(t *testing.T) {
	dir := t.TempDir()
	p := startHostProc(t, dir)
	p.host().deploy(t, guests["hello"], "")

	// Mid-upload: half the body sent, the rest never comes.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		req, _ := http.NewRequest(http.MethodPost, p.adminURL+"/v1/modules", pr)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	body := guests["fastlystyle"]
	half := len(body) / 2
	go pw.Write(body[:half])
	waitFor(t, 20*time.Second, "the host to receive half the upload", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "tmp", "upload-*"))
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && fi.Size() >= int64(half) {
				return true
			}
		}
		return false
	})
	p.kill()
	pw.CloseWithError(errors.New("host killed"))
	versions, active := checkConsistent(t, dir)
	if len(versions) != 1 || active != 1 {
		t.Fatalf("after a kill mid-upload: versions %v, active %d; want only 1, active", versions, active)
	}
	p = startHostProc(t, dir)
	if _, body := p.host().get(t, "/"); !strings.Contains(body, helloText) {
		t.Fatalf("restarted host serves %q, want version 1", body)
	}

	// Kills at random moments while deploys and activations run.
	rng := rand.New(rand.NewPCG(1, 2))
	pkg := pack(t, tarEntry{name: "fastly.toml", data: []byte("name = \"k\"\n")}, tarEntry{name: "bin/main.wasm", data: guests["fastlystyle"]})
	// Compiled once, so that the deploys below are quick and the kills
	// land anywhere in them: receiving, staging, committing, activating.
	p.host().deploy(t, pkg, "")
	p.host().deploy(t, guests["hello"], "")
	for round := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			h := p.host()
			for i := 0; ctx.Err() == nil; i++ {
				b := pkg
				if i%2 == 1 {
					b = guests["hello"]
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.adminURL+"/v1/modules", bytes.NewReader(b))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					return
				}
			}
		}()
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond) // a random kill moment, not an assertion
		p.kill()
		cancel()
		versions, active := checkConsistent(t, dir)
		if active == 0 || len(versions) == 0 {
			t.Fatalf("round %d: no active version after the kill", round)
		}
		p = startHostProc(t, dir)
		want := "fastlystyle"
		for _, v := range versions {
			if v.Number == active && v.SHA256 == sum(guests["hello"]) {
				want = helloText
			}
		}
		resp, body := p.host().get(t, "/")
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Fatalf("round %d: restarted host answers %d %q; active version %d should say %q", round, resp.StatusCode, body, active, want)
		}
		t.Logf("round %d: killed with %d versions stored, %d active; restarted host serves it", round, len(versions), active)
	}
}
