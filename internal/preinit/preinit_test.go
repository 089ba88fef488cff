package preinit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/engine/wasmopt"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/preinit"
)

var guests map[string][]byte

func TestMain(m *testing.M) {
	os.Exit(guesttest.Main(m, func(_ string, g map[string][]byte) { guests = g },
		"testdata/guests/hellopreinit", "examples/hello"))
}

// TestPrepareKeepsSnapshot makes the snapshot of a Go guest built with
// guestsdk/preinit into a cache directory: the next Prepare reads it
// back (the same bytes; a new snapshot would hold other random seeds),
// and an entry that does not match its checksum is made again.
func TestPrepareKeepsSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	first, made, err := preinit.Prepare(ctx, guests["hellopreinit"], preinit.Options{CacheDir: dir})
	if err != nil || !made {
		t.Fatalf("Prepare: made %v, %v", made, err)
	}
	if wasmopt.IsPreinit(first) {
		t.Fatal("the snapshot is still a reactor")
	}
	again, _, err := preinit.Prepare(ctx, guests["hellopreinit"], preinit.Options{CacheDir: dir})
	if err != nil || !bytes.Equal(first, again) {
		t.Fatalf("second Prepare: %v, same bytes %v: want the kept snapshot", err, bytes.Equal(first, again))
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "edgehost-"+wasmopt.PreinitVersion, "*"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %q, want one", entries)
	}
	b, _ := os.ReadFile(entries[0])
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(entries[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	remade, made, err := preinit.Prepare(ctx, guests["hellopreinit"], preinit.Options{CacheDir: dir})
	if err != nil || !made || bytes.Equal(remade, b[4:]) {
		t.Fatalf("Prepare over a damaged entry: made %v, %v, damaged bytes returned %v", made, err, bytes.Equal(remade, b[4:]))
	}
}

// TestPrepareLeavesCommandsAlone: a guest built as a command (a _start
// export) comes back as it is.
func TestPrepareLeavesCommandsAlone(t *testing.T) {
	out, made, err := preinit.Prepare(context.Background(), guests["hello"], preinit.Options{CacheDir: t.TempDir()})
	if err != nil || made || !bytes.Equal(out, guests["hello"]) {
		t.Fatalf("Prepare(hello): made %v, %v, unchanged %v", made, err, bytes.Equal(out, guests["hello"]))
	}
}

// TestPrepareBoundsInitialize: an _initialize that never returns is
// stopped at Options.Timeout, and one that traps is reported as such,
// both as ErrInit.
func TestPrepareBoundsInitialize(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		code       []byte
	}{
		{"loop", "did not return in time", []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b}},
		{"trap", "trapped", []byte{0x00, 0x0b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, _, err := preinit.Prepare(context.Background(), reactor(tc.code), preinit.Options{Timeout: 200 * time.Millisecond})
			if !errors.Is(err, preinit.ErrInit) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want ErrInit saying %q", err, tc.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("Prepare took %v", d)
			}
		})
	}
}

// reactor is a module exporting _initialize (body init: instructions
// and the final end) and an empty edgehost_serve, with one memory page.
func reactor(init []byte) []byte {
	body := func(code []byte) []byte {
		b := append([]byte{0x00}, code...)
		return append(binary.AppendUvarint(nil, uint64(len(b))), b...)
	}
	name := func(s string) []byte { return append([]byte{byte(len(s))}, s...) }
	sec := func(id byte, b []byte) []byte {
		return append(append([]byte{id}, binary.AppendUvarint(nil, uint64(len(b)))...), b...)
	}
	exports := append([]byte{2}, name("_initialize")...)
	exports = append(exports, 0, 0)
	exports = append(exports, name("edgehost_serve")...)
	exports = append(exports, 0, 1)
	code := append([]byte{2}, body(init)...)
	code = append(code, body([]byte{0x0b})...)
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, sec(1, []byte{1, 0x60, 0, 0})...)
	m = append(m, sec(3, []byte{2, 0, 0})...)
	m = append(m, sec(5, []byte{1, 0, 1})...)
	m = append(m, sec(7, exports)...)
	return append(m, sec(10, code)...)
}
