//go:build cgo

package wasmtimeengine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/engine/wasmtimeengine"
	"github.com/edgehost/edgehost/internal/guesttest"
)

func noImports(imp engine.Import) (engine.HostFunc, error) {
	panic("no imports expected: " + imp.String())
}

// TestCacheEntryReplaced: a cache entry that does not deserialize (here a
// truncated one) is recompiled and rewritten, not an error.
func TestCacheEntryReplaced(t *testing.T) {
	dir := t.TempDir()
	wasm := guesttest.NopModule()
	compile := func() {
		t.Helper()
		eng, err := wasmtimeengine.New(engine.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close(context.Background())
		m, err := eng.Compile(context.Background(), wasm, noImports)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(context.Background())
		if err := m.Run(context.Background(), engine.RunConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	compile()
	sum := sha256.Sum256(wasm)
	entries, _ := filepath.Glob(filepath.Join(dir, "wasmtime-"+wasmtimeengine.Version()+"-*", hex.EncodeToString(sum[:])))
	if len(entries) != 1 {
		t.Fatalf("cache entries for the module: %v", entries)
	}
	good, _ := os.ReadFile(entries[0])
	if err := os.WriteFile(entries[0], good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	compile()
	again, _ := os.ReadFile(entries[0])
	if !bytes.Equal(again, good) {
		t.Fatalf("truncated entry not rewritten: %d bytes, want %d", len(again), len(good))
	}
}
