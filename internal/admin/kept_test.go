package admin_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/guesttest"
)

// countingEngine is the test host's engine: it counts compiles (a load
// from the compiled-code cache is one too) and, per module, the sandboxes
// running and whether the module was closed.
type countingEngine struct {
	engine.Engine
	mu      sync.Mutex
	modules []*countedModule // in compile order
}

func (e *countingEngine) Compile(ctx context.Context, wasm []byte, link engine.Linker) (engine.Module, error) {
	m, err := e.Engine.Compile(ctx, wasm, link)
	if err != nil {
		return nil, err
	}
	c := &countedModule{Module: m}
	e.mu.Lock()
	e.modules = append(e.modules, c)
	e.mu.Unlock()
	if t, ok := m.(engine.Tiered); ok {
		return &countedTiered{countedModule: c, tiered: t}, nil
	}
	return c, nil
}

// compiles is the number of successful Compile calls.
func (e *countingEngine) compiles() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.modules)
}

// module returns the i-th module compiled.
func (e *countingEngine) module(i int) *countedModule {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.modules[i]
}

// open lists the indexes of the modules not closed.
func (e *countingEngine) open() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []int
	for i, m := range e.modules {
		if m.closes.Load() == 0 {
			out = append(out, i)
		}
	}
	return out
}

// closedTwice lists the indexes of the modules closed more than once.
func (e *countingEngine) closedTwice() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []int
	for i, m := range e.modules {
		if m.closes.Load() > 1 {
			out = append(out, i)
		}
	}
	return out
}

// countedModule forwards to a module and counts its sandboxes and closes.
type countedModule struct {
	engine.Module
	running atomic.Int64
	closes  atomic.Int64
}

func (m *countedModule) Run(ctx context.Context, rc engine.RunConfig) error {
	m.running.Add(1)
	defer m.running.Add(-1)
	return m.Module.Run(ctx, rc)
}

// Close closes the module and drops it, so that the engine's list of
// modules holds no closed module's memory (BenchmarkActivateJS reports
// the process's resident memory). A call after Close is a host bug: it
// panics, and the race detector reports it.
func (m *countedModule) Close(ctx context.Context) error {
	m.closes.Add(1)
	err := m.Module.Close(ctx)
	m.Module = nil
	return err
}

// Trim forwards to an engine.Trimmer, so that the host trims as with the
// engine's own module.
func (m *countedModule) Trim(ctx context.Context) {
	if t, ok := m.Module.(engine.Trimmer); ok {
		t.Trim(ctx)
	}
}

// countedTiered keeps an engine.Tiered module tiered.
type countedTiered struct {
	*countedModule
	tiered engine.Tiered
}

func (m *countedTiered) TierStatus() engine.TierStatus { return m.tiered.TierStatus() }
func (m *countedTiered) Optimized() <-chan struct{}    { return m.tiered.Optimized() }

// listed is GET /v1/modules as version number -> its entry.
func listed(t *testing.T, h *testHost) map[int]map[string]any {
	t.Helper()
	r := h.call(t, http.MethodGet, "/v1/modules", nil, "", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/modules: %d %s", r.status, r.raw)
	}
	out := map[int]map[string]any{}
	for _, v := range r.body["versions"].([]any) {
		m := v.(map[string]any)
		out[int(m["version"].(float64))] = m
	}
	return out
}

// keptListed is the versions GET /v1/modules marks kept, ascending.
func keptListed(t *testing.T, h *testHost) []int {
	t.Helper()
	var out []int
	for n, m := range listed(t, h) {
		if m["kept"] == true {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// requireNoLeak stops h and requires every module it compiled closed,
// once each.
func requireNoLeak(t *testing.T, h *testHost) {
	t.Helper()
	h.stop()
	if open := h.eng.open(); len(open) > 0 {
		t.Errorf("modules %v (in compile order) still open after the host stopped", open)
	}
	if twice := h.eng.closedTwice(); len(twice) > 0 {
		t.Errorf("modules %v (in compile order) closed more than once", twice)
	}
}

// TestReactivateKept: with kept_versions 1, a rollback to the version
// just replaced switches to its kept module (the answer, GET /v1/modules
// and no compile say so) and serves that version's answer with its own
// backends; rolling forward again is instant too; the module beyond the
// bound is closed on deploy; at the end every module is closed.
func TestReactivateKept(t *testing.T) {
	originA := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A "+r.URL.Path) })
	originB := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B "+r.URL.Path) })
	h := startHost(t, t.TempDir(), hostOpts{keep: 1 + 1})
	// Two packages of one module, each with its own origin: a rebound
	// version must send to its own stored backend.
	pkgA := pack(t, tarEntry{name: "fastly.toml", data: originManifest(originA.URL)}, tarEntry{name: "bin/main.wasm", data: guests["proxy"]})
	pkgB := pack(t, tarEntry{name: "fastly.toml", data: originManifest(originB.URL)}, tarEntry{name: "bin/main.wasm", data: guests["proxy"]})
	serves := func(want string) {
		t.Helper()
		if resp, body := h.get(t, "/p"); resp.StatusCode != http.StatusOK || body != want {
			t.Fatalf("downstream answers %d %q, want %q", resp.StatusCode, body, want)
		}
	}
	h.deploy(t, pkgA, "") // 1
	serves("A /p")
	h.deploy(t, pkgB, "") // 2
	serves("B /p")
	h.deploy(t, guests["hello"], "?activate=false") // 3, staged
	waitFor(t, 5*time.Second, "version 1 to be listed kept", func() bool { return slices.Equal(keptListed(t, h), []int{1}) })
	if open := h.eng.open(); len(open) != 2 {
		t.Fatalf("modules open after two deploys and a staged one: %v, want two (the active and the kept one)", open)
	}
	statusKept(t, h, []int{1}, 1)

	compiles := h.eng.compiles()
	r := h.activate(t, 1)
	if r.body["from_kept"] != true || r.num("previous") != 2 {
		t.Fatalf("rollback to 1: %s, want from_kept true, previous 2", r.raw)
	}
	serves("A /p")
	if got := h.eng.compiles(); got != compiles {
		t.Fatalf("the rollback to a kept version compiled or loaded %d modules, want none", got-compiles)
	}
	l := listed(t, h)
	if l[1]["active"] != true || l[1]["from_kept"] != true || l[1]["kept"] != nil {
		t.Errorf("GET /v1/modules says of version 1: %v, want active, from_kept", l[1])
	}
	waitFor(t, 5*time.Second, "version 2 to be listed kept", func() bool { return slices.Equal(keptListed(t, h), []int{2}) })
	statusKept(t, h, []int{2}, 2)

	r = h.activate(t, 2)
	if r.body["from_kept"] != true {
		t.Fatalf("forward to 2: %s, want from_kept true", r.raw)
	}
	serves("B /p")
	if got := h.eng.compiles(); got != compiles {
		t.Fatalf("two activations of kept versions compiled or loaded %d modules, want none", got-compiles)
	}
	if r := h.activate(t, 2); r.body["from_kept"] != nil || r.num("previous") != 2 {
		t.Errorf("activating the active version: %s, want a no-op without from_kept", r.raw)
	}

	// A deploy replaces 2: 2 is kept, 1's module (beyond the bound) closed.
	first := h.eng.module(0) // version 1's, kept and rebound twice since
	h.deploy(t, guests["fastlystyle"], "")
	waitFor(t, 5*time.Second, "version 1's module to be closed", func() bool { return first.closes.Load() == 1 })
	waitFor(t, 5*time.Second, "version 2 to be listed kept", func() bool { return slices.Equal(keptListed(t, h), []int{2}) })

	// 1 is no longer kept: it loads again, as without kept versions.
	compiles = h.eng.compiles()
	if r := h.activate(t, 1); r.body["from_kept"] != nil {
		t.Fatalf("activating an evicted version: %s, want no from_kept", r.raw)
	}
	serves("A /p")
	if got := h.eng.compiles(); got != compiles+1 {
		t.Errorf("activating an evicted version made %d compiles, want 1", got-compiles)
	}
	requireNoLeak(t, h)
}

// TestKeptCacheGeneration: a version re-activated from its kept module
// applies its own cache generation as a loaded one does: activating a
// version whose generation differs from the one in force empties the
// service's cached objects, so the next request goes to the origin.
func TestKeptCacheGeneration(t *testing.T) {
	var fetched atomic.Int64
	origin := guesttest.NewOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		n := fetched.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "fetch %d", n)
	})
	h := startHost(t, t.TempDir(), hostOpts{keep: 1 + 1, cache: true})
	withGen := func(gen int) []byte {
		m := string(originManifest(origin.URL)) + fmt.Sprintf("\n[edgehost]\ncache_generation = %d\n", gen)
		return pack(t, tarEntry{name: "fastly.toml", data: []byte(m)}, tarEntry{name: "bin/main.wasm", data: guests["proxy"]})
	}
	serves := func(when, want string) {
		t.Helper()
		if resp, body := h.get(t, "/c"); resp.StatusCode != http.StatusOK || body != want {
			t.Fatalf("%s: downstream answers %d %q, want %q", when, resp.StatusCode, body, want)
		}
	}
	h.deploy(t, withGen(1), "") // 1
	serves("version 1", "fetch 1")
	serves("version 1 again", "fetch 1") // a hit
	h.deploy(t, withGen(2), "")          // 2: generation 2 empties the service's objects
	serves("version 2", "fetch 2")
	serves("version 2 again", "fetch 2")
	waitFor(t, 5*time.Second, "version 1 to be listed kept", func() bool { return slices.Equal(keptListed(t, h), []int{1}) })
	if r := h.activate(t, 1); r.body["from_kept"] != true {
		t.Fatalf("rollback to 1: %s, want from_kept true", r.raw)
	}
	serves("version 1 from its kept module (generation 1 again)", "fetch 3")
	serves("version 1 from its kept module, again", "fetch 3")
	waitFor(t, 5*time.Second, "version 2 to be listed kept", func() bool { return slices.Equal(keptListed(t, h), []int{2}) })
	if r := h.activate(t, 2); r.body["from_kept"] != true {
		t.Fatalf("forward to 2: %s, want from_kept true", r.raw)
	}
	serves("version 2 from its kept module (generation 2 again)", "fetch 4")
	requireNoLeak(t, h)
}

// statusKept fails t unless the status page (GET /) marks exactly the
// versions want as kept in its versions table, and its roll-back button,
// to version rollback, says that one is kept.
func statusKept(t *testing.T, h *testHost, want []int, rollback int) {
	t.Helper()
	r := h.call(t, "GET", "/", nil, "", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /: %d", r.status)
	}
	table, _, _ := strings.Cut(r.raw[strings.Index(r.raw, `<table id="versions">`)+1:], "</table>")
	var got []int
	for _, row := range strings.Split(table, "<tr")[1:] {
		var n int
		if _, err := fmt.Sscanf(row[strings.Index(row, "<td>")+4:], "%d", &n); err != nil {
			continue // the heading
		}
		if strings.Contains(row, `class="kept">kept: activates without compiling`) {
			got = append(got, n)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("status page marks versions %v kept, want %v", got, want)
	}
	button := fmt.Sprintf(`id="rollback">Roll back to version %d (active before this one; kept, so it switches at once)`, rollback)
	if !strings.Contains(r.raw, button) {
		t.Errorf("status page has no roll-back button to kept version %d:\n%s", rollback, r.raw)
	}
}

// TestKeptBound: after four deploys, the versions listed kept are the
// most recently replaced ones within kept_versions, every other replaced
// module is closed, and re-activating each stored version uses its kept
// module exactly when it was kept (no compile then, one otherwise).
func TestKeptBound(t *testing.T) {
	tests := []struct {
		kept int
		want []int // kept after deploying 1 to 4
	}{
		{0, nil},
		{1, []int{3}},
		{2, []int{2, 3}},
		{4, []int{1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("kept_versions=%d", tc.kept), func(t *testing.T) {
			h := startHost(t, t.TempDir(), hostOpts{keep: tc.kept + 1})
			mods := []string{"hello", "fastlystyle", "hello", "fastlystyle"}
			for _, g := range mods {
				h.deploy(t, guests[g], "")
			}
			waitFor(t, 5*time.Second, fmt.Sprintf("versions %v to be listed kept", tc.want), func() bool {
				return slices.Equal(keptListed(t, h), tc.want)
			})
			wantOpen := append(slices.Clone(tc.want), 4)
			waitFor(t, 5*time.Second, "the modules not kept to be closed", func() bool {
				var open []int
				for _, i := range h.eng.open() {
					open = append(open, i+1) // module i is version i+1's
				}
				return slices.Equal(open, wantOpen)
			})
			// Activate 1: kept or loaded.
			compiles := h.eng.compiles()
			kept := slices.Contains(tc.want, 1)
			r := h.activate(t, 1)
			if (r.body["from_kept"] == true) != kept {
				t.Fatalf("activate 1: %s, want from_kept %v", r.raw, kept)
			}
			if _, body := h.get(t, "/x"); !strings.Contains(body, helloText) {
				t.Fatalf("after activating 1: %q", body)
			}
			if want := compiles + map[bool]int{true: 0, false: 1}[kept]; h.eng.compiles() != want {
				t.Errorf("activate 1 made %d compiles, want %d", h.eng.compiles()-compiles, want-compiles)
			}
			requireNoLeak(t, h)
		})
	}
}

// TestKeptParkedSandboxesEnd: the replaced version's parked ServeMany
// sandbox is told to end when the version is retired, though its module
// is kept (it ends well before its 2 s next-request wait would run out),
// and re-activating the kept version starts new sandboxes: the first
// request after it is a new sandbox's first.
func TestKeptParkedSandboxesEnd(t *testing.T) {
	many := guests["hellomany"]
	h := startHost(t, t.TempDir(), hostOpts{keep: 1 + 1})
	h.deploy(t, guests["hello"], "?activate=false") // 1, staged: compiled before the clock starts
	h.deploy(t, many, "")                           // 2
	mod := h.eng.module(1)
	for i, want := range []string{"served 1", "served 2"} {
		if _, body := h.get(t, "/"); body != want {
			t.Fatalf("request %d on hellomany: %q, want %q (one sandbox, reused)", i, body, want)
		}
	}
	if n := mod.running.Load(); n != 1 {
		t.Fatalf("%d sandboxes of hellomany running, want 1 parked", n)
	}
	start := time.Now()
	h.activate(t, 1)
	waitFor(t, time.Second, "the parked sandbox of the replaced version to end", func() bool { return mod.running.Load() == 0 })
	t.Logf("the parked sandbox ended %v after the activation began", time.Since(start))
	waitFor(t, 5*time.Second, "version 2 to be listed kept", func() bool { return slices.Equal(keptListed(t, h), []int{2}) })
	if mod.closes.Load() != 0 {
		t.Fatal("the kept module was closed")
	}

	compiles := h.eng.compiles()
	if r := h.activate(t, 2); r.body["from_kept"] != true {
		t.Fatalf("re-activating 2: %s, want from_kept true", r.raw)
	}
	if h.eng.compiles() != compiles {
		t.Fatal("re-activating a kept version compiled")
	}
	for i, want := range []string{"served 1", "served 2"} {
		if _, body := h.get(t, "/"); body != want {
			t.Fatalf("request %d after re-activating hellomany: %q, want %q (a new sandbox, then reused)", i, body, want)
		}
	}
	requireNoLeak(t, h)
}
