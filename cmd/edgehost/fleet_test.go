package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// fleetGuests builds the kvsecret and cacheproxy guests (TinyGo when it
// is at hand: smaller modules, quicker to compile on every node).
func fleetGuests(t *testing.T) (kvsecret, cacheproxy []byte) {
	t.Helper()
	rels := []string{"testdata/guests/kvsecret", "testdata/guests/cacheproxy"}
	if c, ok := quickTinyGo(); ok {
		mods, err := guesttest.TinyGoFixtures(context.Background(), c, rels...)
		if err != nil {
			t.Fatal(err)
		}
		return mods["kvsecret"], mods["cacheproxy"]
	}
	mods, err := guesttest.Fixtures(t.TempDir(), rels...)
	if err != nil {
		t.Fatal(err)
	}
	return mods["kvsecret"], mods["cacheproxy"]
}

// fleetGet is one GET: status, X-Cache and X-KV-Error headers, body ("" and
// status 0 when the request fails).
func fleetGet(url string) (code int, h http.Header, body string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, http.Header{}, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// waitFleet polls ok every 5 ms until it holds or d has passed, and
// answers how long it took.
func waitFleet(t *testing.T, d time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > d {
			t.Fatalf("%s: not after %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestServeFleetGuests: three `edgehost serve --cluster` processes (A, B,
// C) on an embedded three-server JetStream cluster, C reaching it only
// through TCP proxies. A guest on C reads through fastly_kv_store what
// the admin API and a guest on A wrote; a purge on B empties the object
// a caching guest stored on A and on C (X-Cache HIT before, MISS after,
// the origin asked again); one NATS server killed, a deploy reaches all
// three; C's link cut, a deploy, C keeps serving its version, the link
// restored, C catches up; a rollback reaches all three.
func TestServeFleetGuests(t *testing.T) {
	kvsecret, cacheproxy := fleetGuests(t)
	var originHits atomic.Int64
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		n := originHits.Add(1)
		w.Header().Set("Surrogate-Key", "fleetobj")
		w.Header().Set("Cache-Control", "max-age=300")
		fmt.Fprintf(w, "origin answer %d for %s", n, r.URL.Path)
	})

	cl := fleettest.Start(t, 3)
	var proxied []string
	var proxies []*fleettest.Proxy
	for _, u := range cl.URLs {
		p := fleettest.NewProxy(t, u)
		proxies = append(proxies, p)
		proxied = append(proxied, p.URL)
	}
	start := func(name, cluster string) *serveProc {
		return startServeProc(t, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
			"--cluster", cluster, "--cluster-node", name, "--cluster-replicas", "3")
	}
	a := start("a", strings.Join(cl.URLs, ","))
	b := start("b", strings.Join(cl.URLs, ","))
	c := start("c", strings.Join(proxied, ","))
	all := []*serveProc{a, b, c}
	tmp := t.TempDir()
	deploy := func(on *serveProc, file string) {
		t.Helper()
		if out, errl, code := cliOut(t, "deploy", "--admin", on.adminURL, file); code != 0 {
			t.Fatalf("deploy %s: exit %d: %s %s", filepath.Base(file), code, out, errl)
		}
	}
	welcome := func(tag string) string {
		f := filepath.Join(tmp, tag+".wasm")
		if err := os.WriteFile(f, admin.WelcomeModule(tag), 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}

	// Version 1: the KV guest with the store "shared".
	kvPkg := filepath.Join(tmp, "kv.tar.gz")
	writePackage(t, kvPkg, "name = \"kv\"\n[local_server.kv_stores]\nshared = [{ key = \"seed\", data = \"seeded\" }]\n", kvsecret)
	t0 := time.Now()
	deploy(a, kvPkg)
	for _, p := range all {
		waitFleet(t, 20*time.Second, p.url+" serving the KV guest", func() bool {
			code, _, body := fleetGet(p.url + "/kv/get?store=shared&key=seed")
			return code == 200 && body == "seeded"
		})
	}
	t.Logf("KV guest deployed on A served by all three processes %v after the upload", time.Since(t0))

	// (1) Written on A (admin API, then a guest's insert), read by a
	// guest on C through fastly_kv_store.
	var lat []time.Duration
	for i := range 10 {
		val := fmt.Sprintf("value %d from A's admin API", i)
		req, _ := http.NewRequest(http.MethodPut, a.adminURL+"/v1/kv/shared/keys/k", strings.NewReader(val))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("KV put on A: %d", resp.StatusCode)
		}
		lat = append(lat, waitFleet(t, 5*time.Second, "C's guest reading "+val, func() bool {
			code, _, body := fleetGet(c.url + "/kv/get?store=shared&key=k")
			return code == 200 && body == val
		}))
	}
	slices.Sort(lat)
	t.Logf("KV write on A (admin API) read by a guest on C: p50 %v, max %v over %d writes", lat[len(lat)/2], lat[len(lat)-1], len(lat))
	resp, err := http.Post(a.url+"/kv/put?store=shared&key=fromguest", "text/plain", strings.NewReader("inserted by A's guest"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-KV-Error") != "1" { // "1": kv_error ok (abi/README.md)
		t.Fatalf("guest insert on A: %d, X-KV-Error %q", resp.StatusCode, resp.Header.Get("X-KV-Error"))
	}
	d := waitFleet(t, 5*time.Second, "C's guest reading A's guest's insert", func() bool {
		code, _, body := fleetGet(c.url + "/kv/get?store=shared&key=fromguest")
		return code == 200 && body == "inserted by A's guest"
	})
	t.Logf("KV insert by A's guest read by C's guest after %v", d)

	// Version 2: the caching proxy guest.
	cachePkg := filepath.Join(tmp, "cache.tar.gz")
	writePackage(t, cachePkg, fmt.Sprintf("name = \"cache\"\n[local_server.backends.origin]\nurl = %q\n", origin.URL), cacheproxy)
	deploy(b, cachePkg)
	for _, p := range all {
		waitFleet(t, 20*time.Second, p.url+" serving the caching guest", func() bool {
			code, _, body := fleetGet(p.url + "/warmup")
			return code == 200 && strings.HasPrefix(body, "origin answer")
		})
	}

	// (2) A and C each store /obj; a purge on B empties both.
	for _, p := range []*serveProc{a, c} {
		fleetGet(p.url + "/obj")
		if code, h, body := fleetGet(p.url + "/obj"); code != 200 || h.Get("X-Cache") != "HIT" {
			t.Fatalf("%s: second GET /obj: %d X-Cache %q %q, want a HIT", p.url, code, h.Get("X-Cache"), body)
		}
	}
	before := originHits.Load()
	pr, err := http.Post(b.adminURL+"/v1/purge/fleetobj", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(pr.Body)
	pr.Body.Close()
	if pr.StatusCode != 200 {
		t.Fatalf("purge on B: %d %s", pr.StatusCode, pb)
	}
	tp := time.Now()
	for _, p := range []*serveProc{a, c} {
		waitFleet(t, 5*time.Second, "the purge on B reaching "+p.url, func() bool {
			_, h, _ := fleetGet(p.url + "/obj")
			return h.Get("X-Cache") == "MISS"
		})
	}
	t.Logf("purge on B seen as a MISS on A and C %v after its answer", time.Since(tp))
	if got := originHits.Load() - before; got != 2 {
		t.Fatalf("origin asked %d times after the purge, want 2 (one miss on A, one on C)", got)
	}
	for _, p := range []*serveProc{a, c} {
		if _, h, _ := fleetGet(p.url + "/obj"); h.Get("X-Cache") != "HIT" {
			t.Fatalf("%s: /obj after the refill: X-Cache %q, want HIT", p.url, h.Get("X-Cache"))
		}
	}

	// (3) One NATS server down: a deploy still reaches every node.
	cl.Stop(0)
	t0 = time.Now()
	deploy(b, welcome("three"))
	waitTag(t, 20*time.Second, "three", all...)
	t.Logf("NATS server 0 down: deploy on B served by all three processes %v after the upload", time.Since(t0))

	// (4) C's link cut: C keeps serving version 3 while version 4 is
	// deployed; restored, it catches up.
	for _, p := range proxies {
		p.Cut()
	}
	for cut := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		code, _, body := fleetGet(c.adminURL + "/v1/fleet")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Since(cut) > 10*time.Second {
			t.Fatalf("C's link cut 10 s ago, GET /v1/fleet still %d %q; stderr:\n%s", code, body, c.log)
		}
	}
	if code, _, body := fleetGet(c.adminURL + "/healthz"); code != 200 || !strings.Contains(body, `"connected":false`) {
		t.Fatalf("cut-off C's /healthz: %d %q, want 200 naming the link down", code, body)
	}
	if code, _, body := fleetGet(a.adminURL + "/healthz"); code != 200 || !strings.Contains(body, `"connected":true`) {
		t.Fatalf("A's /healthz: %d %q, want 200 naming the link up", code, body)
	}
	if code, _, body := fleetGet(c.adminURL + "/v1/kv/shared/keys/k"); code != http.StatusInternalServerError {
		t.Fatalf("cut-off C's KV read: %d %q, want 500 (no stale answer)", code, body)
	}
	deploy(a, welcome("four"))
	waitTag(t, 20*time.Second, "four", a, b)
	time.Sleep(200 * time.Millisecond)
	if body := fleetBody(c.url + "/"); !strings.Contains(body, "--admin three ") {
		t.Fatalf("cut-off C does not serve its last version: %q", body)
	}
	for _, p := range proxies {
		if err := p.Restore(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("C's link restored: C serves the new version after %v", waitTag(t, 20*time.Second, "four", c))
	if code, _, body := fleetGet(c.adminURL + "/healthz"); code != 200 || !strings.Contains(body, `"connected":true`) {
		t.Fatalf("C's /healthz after the restore: %d %q, want the link up", code, body)
	}

	// (5) A rollback on C reaches all three.
	if out, errl, code := cliOut(t, "activate", "--admin", c.adminURL, "3"); code != 0 {
		t.Fatalf("activate 3 on C: exit %d: %s %s", code, out, errl)
	}
	t.Logf("rollback on C served by all three processes in %v", waitTag(t, 20*time.Second, "three", all...))
}

// TestServeFleetDeploysUnderLoad: three `edgehost serve --cluster`
// processes on a three-server JetStream cluster; 20 deploys, to each
// node in turn, while every node answers a steady stream of requests:
// every deploy is served by all three within 10 s, and no request fails.
func TestServeFleetDeploysUnderLoad(t *testing.T) {
	cl := fleettest.Start(t, 3)
	cluster := strings.Join(cl.URLs, ",")
	var procs []*serveProc
	for i := range 3 {
		procs = append(procs, startServeProc(t, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
			"--cluster", cluster, "--cluster-node", fmt.Sprintf("node%d", i), "--cluster-replicas", "3"))
	}
	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(p.url + "/")
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %v %v", p.url, err, resp))
					continue
				}
				ok.Add(1)
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	var lat []time.Duration
	for i := range 20 {
		tag := fmt.Sprintf("load%d", i)
		on := procs[i%3]
		t0 := time.Now()
		resp, err := http.Post(on.adminURL+"/v1/modules", "application/wasm", bytes.NewReader(admin.WelcomeModule(tag)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("deploy %d on %s: %d %s", i, on.adminURL, resp.StatusCode, b)
		}
		waitTag(t, 10*time.Second, tag, procs...)
		lat = append(lat, time.Since(t0))
	}
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	t.Logf("20 deploys, upload to served by all three processes: p50 %v, max %v; %d requests answered, %d failed", lat[len(lat)/2], lat[len(lat)-1], ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed (first: %v), %d answered", failed.Load(), firstFailure.Load(), ok.Load())
	}
}
