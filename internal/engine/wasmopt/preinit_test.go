package wasmopt_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/edgehost/edgehost/internal/engine/wasmopt"
)

// wasmModule assembles a module from (id, body) sections.
func wasmModule(secs ...[]byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range secs {
		b = append(b, s[0])
		b = binary.AppendUvarint(b, uint64(len(s)-1))
		b = append(b, s[1:]...)
	}
	return b
}

func sec(id byte, body ...byte) []byte { return append([]byte{id}, body...) }

func name(s string) []byte { return append([]byte{byte(len(s))}, s...) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// funcBody is one code entry with no locals.
func funcBody(code ...byte) []byte {
	body := append([]byte{0x00}, code...)
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// reactor is a pre-initialized guest by hand: _initialize stores 42 at
// 1024 and sets its mutable globals (an i32 to 5, an i64 to -3, an f64
// to 2.5); edgehost_serve copies the three to 2048, 2056 and 2064. Its
// data segment puts "hi" at 0; an immutable i32 global holds 7.
// extra sections replace those of the same id (a start section is
// inserted before the element section's place).
func reactor(extra ...[]byte) []byte {
	secs := [][]byte{
		sec(1, 1, 0x60, 0, 0), // type 0: () -> ()
		sec(3, 2, 0, 0),       // two functions of type 0
		sec(5, 1, 0x00, 1),    // memory: min 1 page
		sec(6, 4, // globals
			0x7f, 1, 0x41, 0, 0x0b, // 0: mut i32 = 0
			0x7e, 1, 0x42, 0, 0x0b, // 1: mut i64 = 0
			0x7f, 0, 0x41, 7, 0x0b, // 2: i32 = 7
			0x7c, 1, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0x0b), // 3: mut f64 = 0
		sec(7, cat([]byte{2}, name("_initialize"), []byte{0, 0}, name("edgehost_serve"), []byte{0, 1})...),
		sec(10, cat([]byte{2},
			funcBody(
				0x41, 0x80, 0x08, 0x41, 42, 0x36, 2, 0, // i32.store [1024] = 42
				0x41, 5, 0x24, 0, // global 0 = 5
				0x42, 0x7d, 0x24, 1, // global 1 = -3
				0x44, 0, 0, 0, 0, 0, 0, 0x04, 0x40, 0x24, 3, // global 3 = 2.5
				0x0b),
			funcBody(
				0x41, 0x80, 0x10, 0x23, 0, 0x36, 2, 0, // [2048] = global 0
				0x41, 0x88, 0x10, 0x23, 1, 0x37, 3, 0, // [2056] = global 1
				0x41, 0x90, 0x10, 0x23, 3, 0x39, 3, 0, // [2064] = global 3
				0x0b))...),
		sec(11, 1, 0x00, 0x41, 0, 0x0b, 2, 'h', 'i'),
	}
	for _, e := range extra {
		replaced := false
		for i, s := range secs {
			if s[0] == e[0] {
				secs[i], replaced = e, true
			}
		}
		if !replaced {
			// Insert in section order (ids 8 and 9 go before 10; 12 too).
			at := len(secs)
			for i, s := range secs {
				if s[0] == 10 || s[0] == 11 {
					at = i
					break
				}
			}
			secs = append(secs[:at], append([][]byte{e}, secs[at:]...)...)
		}
	}
	return wasmModule(secs...)
}

// TestSnapshotRestoresMemoryAndGlobals runs the reactor's _initialize on
// wazero, makes the snapshot from what it left and checks that an
// instance of the snapshot, run through _start, starts there.
func TestSnapshotRestoresMemoryAndGlobals(t *testing.T) {
	ctx := context.Background()
	wasm := reactor()
	if !wasmopt.IsPreinit(wasm) {
		t.Fatal("IsPreinit(reactor) = false")
	}
	exported, names, err := wasmopt.ExportForSnapshot(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 {
		t.Fatalf("names %q: want the 3 mutable globals", names)
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	mod, err := rt.InstantiateWithConfig(ctx, exported, wazero.NewModuleConfig().WithName("a").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mod.ExportedFunction(wasmopt.PreinitInit).Call(ctx); err != nil {
		t.Fatal(err)
	}
	// The memory grows after _initialize too: the snapshot keeps the size.
	if _, ok := mod.Memory().Grow(1); !ok {
		t.Fatal("grow")
	}
	var values []uint64
	for _, n := range names {
		values = append(values, mod.ExportedGlobal(n).Get())
	}
	mem, _ := mod.Memory().Read(0, mod.Memory().Size())
	snap, err := wasmopt.Snapshot(wasm, mem, values)
	if err != nil {
		t.Fatal(err)
	}
	if wasmopt.IsPreinit(snap) {
		t.Error("IsPreinit(snapshot) = true: it should be a command")
	}
	inst, err := rt.InstantiateWithConfig(ctx, snap, wazero.NewModuleConfig().WithName("b").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	if inst.ExportedFunction(wasmopt.PreinitInit) != nil {
		t.Error("the snapshot still exports _initialize")
	}
	if _, err := inst.ExportedFunction("_start").Call(ctx); err != nil {
		t.Fatal(err)
	}
	m := inst.Memory()
	if m.Size() != 2<<16 {
		t.Errorf("memory %d bytes, want 2 pages", m.Size())
	}
	hi, _ := m.Read(0, 2)
	v1024, _ := m.ReadUint32Le(1024)
	g0, _ := m.ReadUint32Le(2048)
	g1, _ := m.ReadUint64Le(2056)
	g3, _ := m.ReadFloat64Le(2064)
	if string(hi) != "hi" || v1024 != 42 || g0 != 5 || int64(g1) != -3 || g3 != 2.5 {
		t.Errorf("snapshot instance: data %q, [1024] %d, globals %d %d %v; want \"hi\" 42 5 -3 2.5", hi, v1024, g0, int64(g1), g3)
	}
}

// TestExportForSnapshotRefuses lists modules whose state is more than
// their memory and globals, or that this rewrite cannot rebuild.
func TestExportForSnapshotRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"start function", reactor(sec(8, 0))},
		{"data count section", reactor(sec(12, 1))},
		{"imported global", reactor(sec(2, cat([]byte{1}, name("env"), name("g"), []byte{0x03, 0x7f, 0x00})...))},
		{"shared memory", reactor(sec(5, 1, 0x03, 1, 1))},
		{"no memory", reactor(sec(5, 0))},
		{"table.set", reactor(sec(10, cat([]byte{2}, funcBody(0x41, 0, 0xd0, 0x70, 0x26, 0, 0x0b), funcBody(0x0b))...))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := wasmopt.ExportForSnapshot(tc.wasm)
			if !errors.Is(err, wasmopt.ErrNotSnapshottable) {
				t.Fatalf("err %v, want ErrNotSnapshottable", err)
			}
		})
	}
}

func TestIsPreinit(t *testing.T) {
	command := reactor(sec(7, cat([]byte{3}, name("_initialize"), []byte{0, 0}, name("edgehost_serve"), []byte{0, 1}, name("_start"), []byte{0, 1})...))
	onlyInit := reactor(sec(7, cat([]byte{1}, name("_initialize"), []byte{0, 0})...))
	for _, tc := range []struct {
		name string
		wasm []byte
		want bool
	}{
		{"reactor", reactor(), true},
		{"with _start", command, false},
		{"no edgehost_serve", onlyInit, false},
		{"not wasm", []byte("nope"), false},
	} {
		if got := wasmopt.IsPreinit(tc.wasm); got != tc.want {
			t.Errorf("%s: IsPreinit = %v, want %v", tc.name, got, tc.want)
		}
	}
}
