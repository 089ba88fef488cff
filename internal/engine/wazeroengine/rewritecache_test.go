package wazeroengine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
)

// loopModule's _start loops forever without calling the host.
func loopModule() []byte {
	sec := func(id byte, b ...byte) []byte { return append([]byte{id, byte(len(b))}, b...) }
	code := []byte{0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b} // loop { br 0 }
	var m []byte
	m = append(m, 0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00)
	m = append(m, sec(1, 0x01, 0x60, 0x00, 0x00)...)
	m = append(m, sec(3, 0x01, 0x00)...)
	m = append(m, sec(7, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x00)...)
	m = append(m, sec(10, append([]byte{0x01, byte(len(code))}, code...)...)...)
	return m
}

// TestRewriteCache: with a cache directory, the interrupt rewrite is kept
// there, and a guest compiled from the kept rewrite (a restart), or from a
// damaged entry, is still stopped at its deadline.
func TestRewriteCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	noImports := func(imp engine.Import) (engine.HostFunc, error) {
		return nil, errors.New("unexpected import " + imp.String())
	}
	run := func(t *testing.T) {
		t.Helper()
		e, err := New(engine.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
		m, err := e.Compile(ctx, loopModule(), noImports)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(ctx)
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := m.Run(rctx, engine.RunConfig{}); !errors.Is(err, engine.ErrTimeout) {
			t.Fatalf("Run = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("stopped after %v", d)
		}
	}
	run(t)
	entries, err := filepath.Glob(filepath.Join(dir, rewriteFolder, "*"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("cache entries %v, %v; want one", entries, err)
	}
	run(t) // from the entry
	b, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(entries[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t) // the damaged entry is rewritten
	fixed, err := os.ReadFile(entries[0])
	if err != nil || string(fixed) == string(b) {
		t.Fatalf("damaged entry not replaced (%v)", err)
	}
}
