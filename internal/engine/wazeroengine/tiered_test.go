package wazeroengine

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine"
)

// TestTiered: a module compiled for the first time with Config.Tiered
// starts on the interpreter, where the wall-clock limit holds as on
// optimized code; it switches to optimized code; a second engine on the
// same cache directory compiles it optimized at once; a closed module
// refuses to run and the engine closes.
func TestTiered(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	noImports := func(imp engine.Import) (engine.HostFunc, error) {
		return nil, errors.New("unexpected import " + imp.String())
	}
	stopped := func(t *testing.T, m engine.Module) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- m.Run(rctx, engine.RunConfig{}) }()
		select {
		case err := <-done:
			if !errors.Is(err, engine.ErrTimeout) {
				t.Fatalf("endless loop: %v, want ErrTimeout", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("endless loop not stopped 30 s after its deadline")
		}
	}

	e, err := New(engine.Config{CacheDir: dir, Tiered: true})
	if err != nil {
		t.Fatal(err)
	}
	// The test holds the background slot, so the first run is on the
	// interpreter for sure.
	e.slot <- struct{}{}
	m, err := e.Compile(ctx, loopModule(), noImports)
	if err != nil {
		t.Fatal(err)
	}
	tm, ok := m.(engine.Tiered)
	if !ok {
		t.Fatalf("first compile gave a %T, want a tiered module", m)
	}
	stopped(t, m)
	if st := tm.TierStatus(); st.Tier != engine.TierInterpreter || !st.Compiling || st.Runs[engine.TierInterpreter] != 1 {
		t.Fatalf("holding the background slot: %+v, want one run on the interpreter, compiling", st)
	}
	<-e.slot
	select {
	case <-tm.Optimized():
	case <-time.After(2 * time.Minute):
		t.Fatal("no optimized code after 2 minutes")
	}
	st := tm.TierStatus()
	if st.Tier != engine.TierOptimized || st.Err != nil || st.Compiling || st.SwitchedAfter <= 0 {
		t.Fatalf("after Optimized: %+v", st)
	}
	stopped(t, m)
	st = tm.TierStatus()
	if st.Runs[engine.TierInterpreter] != 1 || st.Runs[engine.TierOptimized] != 1 {
		t.Errorf("runs %v, want one on each tier", st.Runs)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx, engine.RunConfig{}); err == nil {
		t.Error("a closed module ran")
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The same code on a new engine with the same cache: compiled
	// optimized at once.
	e, err = New(engine.Config{CacheDir: dir, Tiered: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	m, err = e.Compile(ctx, loopModule(), noImports)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	if _, ok := m.(engine.Tiered); ok {
		t.Error("a module in the cache was tiered again")
	}
	stopped(t, m)

	// Closing a module and its engine while the optimizing compile may
	// still wait or run ends it.
	e2, err := New(engine.Config{Tiered: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err = e2.Compile(ctx, loopModule(), noImports)
	if err != nil {
		t.Fatal(err)
	}
	m.Close(ctx)
	closed := make(chan error, 1)
	go func() { closed <- e2.Close(ctx) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("engine Close did not return")
	}
}
