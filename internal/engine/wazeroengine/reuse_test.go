package wazeroengine

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/engine"
)

// stateModule's _start reports (through t.report) what a sandbox can see
// of the state an earlier sandbox may have left: its two mutable globals
// (an i32 initially 7, an i64 initially 9), the words at 0, 4 (the data
// segment puts "AAAA" there) and 65544, the memory's size in pages
// (initially pages, at least 2), and what the function at table slot 0 reports (1; slot 1
// reports 2). It then writes "hi\n" to stdout (fd_write) and changes all
// of it: both globals, the three words, and per variant:
//   - "grow": grows the memory by a page;
//   - "table": puts slot 1's function into slot 0 (table.set);
//   - "exit": calls WASI proc_exit(0);
//   - "close", "renumber", "setflags": when the sandbox's environment is
//     not empty (WASI environ_sizes_get), closes stdout (fd_close(1)),
//     moves it to fd 7 (fd_renumber(1, 7)) or sets its append flag
//     (fd_fdstat_set_flags(1, 1)). The module imports all three WASI
//     functions whatever the variant.
func stateModule(variant string, pages byte) []byte {
	var imports [][]byte
	imp := func(mod, fn string, typ byte) uint32 {
		imports = append(imports, append(append(name(mod), name(fn)...), 0x00, typ))
		return uint32(len(imports) - 1)
	}
	// Types: 0 (i32)->(), 1 ()->(), 2 (i32 i32 i32 i32)->i32, 3 (i32)->i32,
	// 4 (i32 i32)->i32.
	types := []byte{0x05, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00,
		0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x01, 0x7f,
		0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f}
	report := imp("t", "report", 0x00)
	fdWrite := imp("wasi_snapshot_preview1", "fd_write", 0x02)
	environSizes := imp("wasi_snapshot_preview1", "environ_sizes_get", 0x04)
	fdClose := imp("wasi_snapshot_preview1", "fd_close", 0x03)
	fdRenumber := imp("wasi_snapshot_preview1", "fd_renumber", 0x04)
	fdSetFlags := imp("wasi_snapshot_preview1", "fd_fdstat_set_flags", 0x04)
	var procExit uint32
	if variant == "exit" {
		procExit = imp("wasi_snapshot_preview1", "proc_exit", 0x00)
	}
	n := uint32(len(imports))
	start, fa, fb := n, n+1, n+2
	call := func(f uint32) []byte { return append([]byte{0x10}, uleb(f)...) }
	i32 := func(v int32) []byte { return append([]byte{0x41}, sleb(v)...) }
	load := func(off uint32) []byte { return append(append(i32(0), 0x28, 0x02), uleb(off)...) }
	store := func(off uint32, v int32) []byte {
		return append(append(append(i32(0), i32(v)...), 0x36, 0x02), uleb(off)...)
	}
	var c []byte
	add := func(parts ...[]byte) {
		for _, p := range parts {
			c = append(c, p...)
		}
	}
	add([]byte{0x00}, []byte{0x23, 0x00}, call(report))
	add([]byte{0x23, 0x01, 0xa7}, call(report)) // i32.wrap_i64
	add(load(0), call(report), load(4), call(report), load(65544), call(report))
	add([]byte{0x3f, 0x00}, call(report))                     // memory.size
	add(i32(0), []byte{0x11, 0x01, 0x00})                     // call_indirect (type 1) slot 0
	add(store(100, 200), store(104, 3), store(200, 0x0a6968)) // iovec {200, 3}, "hi\n"
	add(i32(1), i32(100), i32(1), i32(300), call(fdWrite), []byte{0x1a})
	add(i32(1234), []byte{0x24, 0x00}, []byte{0x42}, sleb(5678), []byte{0x24, 0x01})
	add(store(0, 1234), store(4, 1234), store(65544, 1234))
	switch variant {
	case "grow":
		add(i32(1), []byte{0x40, 0x00, 0x1a})
	case "table":
		add(i32(0), []byte{0xd2}, uleb(fb), []byte{0x26, 0x00})
	case "close", "renumber", "setflags":
		// environ_sizes_get(400, 404); if (load(400) != 0) { ... }
		add(i32(400), i32(404), call(environSizes), []byte{0x1a}, load(400), []byte{0x04, 0x40})
		switch variant {
		case "close":
			add(i32(1), call(fdClose))
		case "renumber":
			add(i32(1), i32(7), call(fdRenumber))
		case "setflags":
			add(i32(1), i32(1), call(fdSetFlags))
		}
		add([]byte{0x1a, 0x0b})
	case "exit":
		add(i32(0), call(procExit))
	}
	add([]byte{0x0b})
	body := func(b []byte) []byte { return append(uleb(uint32(len(b))), b...) }
	code := append([]byte{0x03}, body(c)...)
	code = append(code, body(append(append([]byte{0x00}, i32(1)...), append(call(report), 0x0b)...))...)
	code = append(code, body(append(append([]byte{0x00}, i32(2)...), append(call(report), 0x0b)...))...)

	m := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	m = append(m, section(1, types)...)
	m = append(m, section(2, append(uleb(uint32(len(imports))), bytes.Join(imports, nil)...))...)
	m = append(m, section(3, []byte{0x03, 0x01, 0x01, 0x01})...)
	m = append(m, section(4, []byte{0x01, 0x70, 0x00, 0x02})...)
	m = append(m, section(5, []byte{0x01, 0x00, pages})...)
	// Globals: mut i32 7, mut i64 9, i32 5.
	m = append(m, section(6, []byte{0x03, 0x7f, 0x01, 0x41, 0x07, 0x0b, 0x7e, 0x01, 0x42, 0x09, 0x0b, 0x7f, 0x00, 0x41, 0x05, 0x0b})...)
	exports := append([]byte{0x02}, append(name("_start"), append([]byte{0x00}, uleb(start)...)...)...)
	exports = append(exports, append(name("memory"), 0x02, 0x00)...)
	m = append(m, section(7, exports)...)
	m = append(m, section(9, append([]byte{0x01, 0x00, 0x41, 0x00, 0x0b, 0x02}, append(uleb(fa), uleb(fb)...)...))...)
	m = append(m, section(10, code)...)
	m = append(m, section(11, []byte{0x01, 0x00, 0x41, 0x04, 0x0b, 0x04, 'A', 'A', 'A', 'A'})...)
	return m
}

// TestResetInstances runs stateModule's variants many times, in sequence
// and at once: every sandbox must see the state instantiation gives, never
// an earlier sandbox's writes to memory, globals, table or WASI state.
// The plain variant's instances are reused (the test counts the runs that
// took one), the grown and exited ones closed, and the table variant is
// never reused. The close, renumber and setflags variants change their
// WASI state on the runs given an environment (every taint-th run): those
// runs' instances are closed, the others' reused, and a run after one that
// closed stdout still writes to its own.
func TestResetInstances(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		variant     string
		pages       byte // initial memory; over keepResident (16 pages) it is reset with madvise
		interpreter bool
		reusable    bool // whether a run's instance is kept when it changed no WASI state
		taint       int  // runs i with i%taint == 0 get an environment; 0: none
	}{
		{"plain", 2, false, true, 0},
		{"plain", 2, true, true, 0},
		{"plain", 20, false, true, 0},
		{"grow", 2, false, false, 0},
		{"exit", 2, false, false, 0},
		{"table", 2, false, false, 0},
		{"close", 2, false, true, 0},
		{"close", 2, false, true, 1},
		{"close", 2, false, true, 3},
		{"close", 20, true, true, 3},
		{"renumber", 2, false, true, 3},
		{"setflags", 2, false, true, 3},
		{"setflags", 2, true, true, 1},
	} {
		t.Run(fmt.Sprintf("%s/pages=%d/interpreter=%v/taint=%d", tc.variant, tc.pages, tc.interpreter, tc.taint), func(t *testing.T) {
			want := fmt.Sprintf("%#x", []uint32{7, 9, 0, 0x41414141, 0, uint32(tc.pages), 1})
			e, err := New(engine.Config{MemoryLimitBytes: 4 << 20})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close(ctx)
			link := reportLink
			wasm := stateModule(tc.variant, tc.pages)
			code, mem, err := prepareMemory(wasm)
			if err != nil {
				t.Fatal(err)
			}
			m, err := e.compileCode(ctx, e.runtimeConfig(tc.interpreter), wasm, code, [32]byte{}, mem, link, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			tainted := func(i int) bool { return tc.taint > 0 && i%tc.taint == 0 }
			run := func(i int) error {
				var got []uint32
				var out, errOut bytes.Buffer
				rc := engine.RunConfig{Stdout: &out, Stderr: &errOut}
				if tainted(i) {
					rc.Env = [][2]string{{"TAINT", "1"}}
				}
				if err := m.Run(context.WithValue(ctx, reportKey{}, &got), rc); err != nil {
					return err
				}
				if fmt.Sprintf("%#x", got) != want || out.String() != "hi\n" {
					return fmt.Errorf("sandbox saw %#x and wrote %q; want %s and \"hi\\n\"", got, out.String(), want)
				}
				return nil
			}
			reusedRuns := func() uint64 {
				if m.reuse == nil {
					return 0
				}
				return m.reuse.reusedRuns()
			}
			// In sequence, a run takes a kept instance exactly when the
			// run before it left one.
			var wantReused uint64
			for i := 0; i < 20; i++ {
				if err := run(i); err != nil {
					t.Fatalf("run %d: %v", i, err)
				}
				if i > 0 && tc.reusable && !tainted(i-1) {
					wantReused++
				}
			}
			if got := reusedRuns(); got != wantReused {
				t.Errorf("%d of 20 runs in sequence on a kept instance; want %d", got, wantReused)
			}
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 50; i++ {
						if err := run(i); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if got := reusedRuns() > wantReused; got != (wantReused > 0) {
				t.Errorf("%d runs on a kept instance after %d in sequence; want more: %v", reusedRuns(), wantReused, wantReused > 0)
			}
		})
	}
}
