package wazeroengine

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/engine"
)

// TestTrim: after sandboxes ran at once, a module keeps reset instances and
// memory reservations; Trim releases both, and the next sandboxes start on
// new instances that see the state instantiation leaves, then are kept
// again.
func TestTrim(t *testing.T) {
	ctx := context.Background()
	for _, pages := range []byte{2, 20} {
		t.Run(fmt.Sprintf("pages=%d", pages), func(t *testing.T) {
			want := fmt.Sprintf("%#x", []uint32{7, 9, 0, 0x41414141, 0, uint32(pages), 1})
			e, err := New(engine.Config{MemoryLimitBytes: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(ctx)
			wasm := stateModule("plain", pages)
			code, mem, err := prepareMemory(wasm)
			if err != nil {
				t.Fatal(err)
			}
			m, err := e.compileCode(ctx, e.runtimeConfig(false), wasm, code, [32]byte{}, mem, reportLink, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			if m.reuse == nil || m.mem == nil {
				t.Fatal("the module's instances are not reused or its memory is wazero's: nothing to trim")
			}
			run := func() error {
				var got []uint32
				var out bytes.Buffer
				if err := m.Run(context.WithValue(ctx, reportKey{}, &got), engine.RunConfig{Stdout: &out, Stderr: &out}); err != nil {
					return err
				}
				if fmt.Sprintf("%#x", got) != want || out.String() != "hi\n" {
					return fmt.Errorf("sandbox saw %#x and wrote %q; want %s and \"hi\\n\"", got, out.String(), want)
				}
				return nil
			}
			kept := func() (instances, reservations int) {
				m.reuse.mu.Lock()
				instances = len(m.reuse.idle)
				m.reuse.mu.Unlock()
				m.mem.mu.Lock()
				for _, l := range m.mem.free {
					reservations += len(l)
				}
				m.mem.mu.Unlock()
				return instances, reservations
			}
			// Sandboxes at once, holding each other's instances: several
			// instances are made and kept.
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if err := run(); err != nil {
						t.Error(err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if n, _ := kept(); n == 0 {
				t.Fatal("no instance kept after 8 sandboxes")
			}
			m.Trim(ctx)
			if n, r := kept(); n != 0 || r != 0 {
				t.Fatalf("after Trim: %d instances and %d memory reservations kept, want none", n, r)
			}
			before := m.reuse.reusedRuns()
			if err := run(); err != nil {
				t.Fatalf("first sandbox after Trim: %v", err)
			}
			if got := m.reuse.reusedRuns(); got != before {
				t.Errorf("the first sandbox after Trim ran on a kept instance (%d runs on kept ones, %d before)", got, before)
			}
			if err := run(); err != nil {
				t.Fatalf("second sandbox after Trim: %v", err)
			}
			if got := m.reuse.reusedRuns(); got != before+1 {
				t.Errorf("the second sandbox after Trim did not run on the instance the first left (%d runs on kept ones, want %d)", got, before+1)
			}
		})
	}
}
