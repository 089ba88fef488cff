package wazeroengine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgehost/edgehost/internal/cachefile"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/engine/wasmopt"
)

// TestSplitCache: with a cache directory, the split of a module into code
// and memory image is kept there; the kept split is the computed one byte
// for byte, a load reads it (a planted entry changes what the guest
// sees), and a damaged entry is computed again and replaced.
func TestSplitCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	wasm := isolationModule(0)
	wantCode, wantImage, ok, err := wasmopt.DataImageUnverified(wasm)
	if err != nil || !ok {
		t.Fatalf("DataImageUnverified: ok %v, %v", ok, err)
	}
	e, err := New(engine.Config{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	check := func(t *testing.T, sp splitModule) {
		t.Helper()
		if !sp.ok || !bytes.Equal(sp.code, wantCode) || !bytes.Equal(sp.image, wantImage) {
			t.Fatalf("split: ok %v, code %x, image %x; want code %x, image %x", sp.ok, sp.code, sp.image, wantCode, wantImage)
		}
		if sp.codeSum != sha256.Sum256(wantCode) || sp.wasmSum != sha256.Sum256(wasm) {
			t.Fatalf("split sums %x %x, want those of code and wasm", sp.codeSum, sp.wasmSum)
		}
	}
	// run loads the module in a new engine (a restart) and reports the
	// words its sandbox saw at 0, 4 and 65544.
	run := func(t *testing.T) string {
		t.Helper()
		e, err := New(engine.Config{CacheDir: dir, MemoryLimitBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(ctx)
		m, err := e.Compile(ctx, wasm, reportLink)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close(ctx)
		var got []uint32
		if err := m.Run(context.WithValue(ctx, reportKey{}, &got), engine.RunConfig{}); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%#x", got)
	}
	image := fmt.Sprintf("%#x", []uint32{0x41414141, 0, 0})

	check(t, e.split(wasm)) // computed, and written
	entries, err := filepath.Glob(filepath.Join(dir, splitVersion, "*"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("cache entries %v, %v; want one", entries, err)
	}
	sum := sha256.Sum256(wasm)
	if filepath.Base(entries[0]) != fmt.Sprintf("%x", sum) {
		t.Fatalf("entry %s, want it named for the module's SHA-256", entries[0])
	}
	good, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	check(t, e.split(wasm)) // read back
	if got := run(t); got != image {
		t.Fatalf("from the entry: sandbox saw %s, want %s", got, image)
	}

	// A well-formed entry with another image is what a load uses.
	planted := bytes.Clone(good)
	off := splitHead + bytes.Index(wantImage, []byte("AAAA"))
	copy(planted[off:], "BBBB")
	binary.LittleEndian.PutUint32(planted, cachefile.Checksum(planted[4:]))
	if err := os.WriteFile(entries[0], planted, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := run(t), fmt.Sprintf("%#x", []uint32{0x42424242, 0, 0}); got != want {
		t.Fatalf("planted entry: sandbox saw %s, want %s (the entry not read?)", got, want)
	}

	for name, damage := range map[string]func([]byte) []byte{
		"flipped image byte": func(b []byte) []byte { b[off] ^= 0xff; return b },
		"flipped code byte":  func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b },
		"truncated":          func(b []byte) []byte { return b[:len(b)/2] },
		"image length past the end": func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[4+sha256.Size:], 1<<40)
			binary.LittleEndian.PutUint32(b, cachefile.Checksum(b[4:]))
			return b
		},
		"empty": func([]byte) []byte { return nil },
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(entries[0], damage(bytes.Clone(good)), 0o600); err != nil {
				t.Fatal(err)
			}
			if got := run(t); got != image {
				t.Fatalf("sandbox saw %s, want %s", got, image)
			}
			fixed, err := os.ReadFile(entries[0])
			if err != nil || !bytes.Equal(fixed, good) {
				t.Fatalf("damaged entry not replaced by the computed one (%v)", err)
			}
			check(t, e.split(wasm))
		})
	}
}
