package guesttest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/preinit"
)

// PrecompileEnv, set to 1, makes TestPrecompileFixtures run (.ci/run sets
// it for one run without the race detector, before the suite).
const PrecompileEnv = "EDGEHOST_TEST_PRECOMPILE"

// TestPrecompileFixtures builds every Go-built guest fixture (examples,
// testdata/guests) and every JS SDK guest of testdata/jsguests, and
// compiles each with wazero into the compiled-code cache the test
// packages share (SharedCompileCache, and internal/admin's folder of it
// for the guests admin's tests deploy). Under the race detector wazero's
// compiler takes several times as long (a 2.3 MB Go-built guest: 79 s
// against 10 s on a busy 2-core machine), and on a fresh machine every
// package compiled its guests that way; run without -race first, this
// leaves the suite only cache hits for them. The compiled code does not
// depend on the compiler's build (the cache is keyed by module, engine
// version and CPU; a test binary's wazero is always "dev"); a
// pre-initialized guest's snapshot is made and kept there first, as the
// loader does (package preinit). A guest that
// does not compile (the fixtures of bad imports) is skipped; one that
// does not build fails the test. Without PrecompileEnv it skips.
func TestPrecompileFixtures(t *testing.T) {
	if os.Getenv(PrecompileEnv) != "1" {
		t.Skipf("%s=1 runs it (.ci/run)", PrecompileEnv)
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	shared := SharedCompileCache("")
	if shared == "" {
		t.Skip("no shared compile cache (no user cache directory)")
	}
	rels := guestDirs(t, root)
	mods, err := Fixtures(t.TempDir(), rels...)
	if err != nil {
		t.Fatal(err)
	}
	// internal/admin's tests keep their guests in a folder of their own
	// (its TestMain): hello, proxy and fastlystyle are deployed there.
	adminDir := filepath.Join(shared, "admin")
	byDir := map[string]map[string][]byte{shared: mods, adminDir: {}}
	for _, name := range []string{"hello", "proxy", "fastlystyle"} {
		byDir[adminDir][name] = mods[name]
	}
	js, err := filepath.Glob(filepath.Join(root, JSGuestsDir, "*.js"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range js {
		name := strings.TrimSuffix(filepath.Base(p), ".js")
		var flags []string
		if name == "httpcache" { // internal/jssdk builds it for the HTTP cache API
			flags = []string{"--enable-http-cache"}
		}
		wasm, _, err := BuildJS(name, flags...)
		if err != nil {
			t.Fatalf("%s.js: %v", name, err)
		}
		mods[name+".js"] = wasm
	}
	link := hostcall.NewLinker(slog.New(slog.DiscardHandler)).Link()
	ctx := context.Background()
	for dir, mods := range byDir {
		eng, err := NewEngine("wazero", engine.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		for name, wasm := range mods {
			start := time.Now()
			// A pre-initialized guest is compiled as the loader compiles
			// it: its snapshot, kept beside the compiled code.
			wasm, _, err := preinit.Prepare(ctx, wasm, preinit.Options{CacheDir: dir})
			if err != nil {
				t.Logf("%s: not pre-initialized: %v", name, err)
				continue
			}
			m, err := eng.Compile(ctx, wasm, link)
			if err != nil {
				t.Logf("%s: not compiled: %v", name, err)
				continue
			}
			m.Close(ctx)
			t.Logf("%s (%d bytes) into %s: %v", name, len(wasm), dir, time.Since(start).Round(time.Millisecond))
		}
		eng.Close(ctx)
	}
}
