package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/admin"
	"github.com/edgehost/edgehost/internal/fleet/fleettest"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// serveProc is an `edgehost serve` process (this test binary run as the
// edgehost command, see edgehostShim).
type serveProc struct {
	cmd           *exec.Cmd
	url, adminURL string
	done          chan struct{}
	log           *guesttest.LogBuffer
}

// startServeProc starts edgehost serve with args in its own process and
// waits (at most 30 s) for its serving and admin lines; cleanup stops it.
func startServeProc(t *testing.T, args ...string) *serveProc {
	t.Helper()
	return startServeProcUnder(t, nil, args...)
}

// startServeProcUnder is startServeProc with the process started through
// the command wrapper (such as prlimit's, which then execs edgehost: the
// process keeps its pid); nil starts it directly.
func startServeProcUnder(t *testing.T, wrapper []string, args ...string) *serveProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append(append(append([]string{}, wrapper...), self), withEngine("serve", args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), cliUnderTestEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &serveProc{cmd: cmd, done: make(chan struct{}), log: &guesttest.LogBuffer{}}
	cmd.Stderr = p.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(p.stop)
	lines := make(chan string)
	go func() {
		r := bufio.NewReader(out)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				close(lines)
				io.Copy(io.Discard, r)
				return
			}
			lines <- l
		}
	}()
	urlRE := regexp.MustCompile(`http://[0-9.:]+`)
	timeout := time.After(30 * time.Second)
	for p.url == "" || p.adminURL == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended before its banner; stderr:\n%s", p.log)
			}
			switch {
			case strings.HasPrefix(l, "edgehost: serving"):
				p.url = urlRE.FindString(l)
			case strings.HasPrefix(l, "edgehost: admin API on"):
				p.adminURL = urlRE.FindString(l)
			}
		case <-timeout:
			t.Fatalf("no banner after 30s; stderr:\n%s", p.log)
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

// stop ends the process with SIGTERM (SIGKILL after 10 s).
func (p *serveProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func fleetBody(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitTag waits until every process answers with tag.
func waitTag(t *testing.T, d time.Duration, tag string, procs ...*serveProc) time.Duration {
	t.Helper()
	start := time.Now()
	for _, p := range procs {
		for !strings.Contains(fleetBody(p.url+"/"), "--admin "+tag+" ") {
			if time.Since(start) > d {
				t.Fatalf("%s does not serve %q after %v; stderr:\n%s", p.url, tag, d, p.log)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// TestServeFleetProcesses: three `edgehost serve --cluster` processes on
// a three-server JetStream cluster; `edgehost deploy` against one node
// reaches all three, a rollback with `edgehost activate` against another
// too; a node restarted while every NATS server is down serves the last
// version it had.
func TestServeFleetProcesses(t *testing.T) {
	cl := fleettest.Start(t, 3)
	cluster := strings.Join(cl.URLs, ",")
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	var procs []*serveProc
	for i, d := range dirs {
		procs = append(procs, startServeProc(t, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", d,
			"--cluster", cluster, "--cluster-node", fmt.Sprintf("node%d", i), "--cluster-replicas", "3"))
	}
	mod := func(tag string) string {
		f := filepath.Join(t.TempDir(), tag+".wasm")
		if err := os.WriteFile(f, admin.WelcomeModule(tag), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	if out, errl, code := cliOut(t, "deploy", "--admin", procs[0].adminURL, mod("one")); code != 0 {
		t.Fatalf("deploy: exit %d: %s %s", code, out, errl)
	}
	t.Logf("deploy on node0 served by all three processes in %v", waitTag(t, 10*time.Second, "one", procs...))
	if out, errl, code := cliOut(t, "deploy", "--admin", procs[1].adminURL, mod("two")); code != 0 {
		t.Fatalf("deploy: exit %d: %s %s", code, out, errl)
	}
	waitTag(t, 10*time.Second, "two", procs...)
	if out, errl, code := cliOut(t, "activate", "--admin", procs[2].adminURL, "1"); code != 0 {
		t.Fatalf("activate 1: exit %d: %s %s", code, out, errl)
	}
	t.Logf("rollback on node2 served by all three processes in %v", waitTag(t, 10*time.Second, "one", procs...))

	// GET /v1/fleet lists the three nodes.
	deadline := time.Now().Add(10 * time.Second)
	for b := fleetBody(procs[0].adminURL + "/v1/fleet"); strings.Count(b, `"version":1,`) < 4; b = fleetBody(procs[0].adminURL + "/v1/fleet") {
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/fleet does not show every node on version 1: %s", b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Every NATS server down, node2 restarted: it serves version 1 from
	// its data dir.
	procs[2].stop()
	for i := range cl.Servers {
		cl.Stop(i)
	}
	p := startServeProc(t, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", dirs[2],
		"--cluster", cluster, "--cluster-node", "node2", "--cluster-replicas", "3")
	waitTag(t, 5*time.Second, "one", p)
}

// TestServeClusterEmbedded: `serve --cluster embedded` runs NATS in the
// process; a second node joins it with --cluster nats://ADDR, and a
// deploy to the second reaches the first.
func TestServeClusterEmbedded(t *testing.T) {
	ln, err := netListenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	first := startServeProc(t, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--cluster", "embedded", "--cluster-embedded-addr", addr, "--cluster-node", "first")
	second := startServeProc(t, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--cluster", "nats://"+addr, "--cluster-node", "second")
	f := filepath.Join(t.TempDir(), "m.wasm")
	os.WriteFile(f, admin.WelcomeModule("embedded"), 0o644)
	if out, errl, code := cliOut(t, "deploy", "--admin", second.adminURL, f); code != 0 {
		t.Fatalf("deploy: exit %d: %s %s", code, out, errl)
	}
	waitTag(t, 10*time.Second, "embedded", first, second)
}

func netListenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
