//go:build linux

package wazeroengine

import (
	"context"
	"testing"

	"github.com/edgehost/edgehost/internal/engine"
)

// dataCountModule has a 1-page memory, a data count section and an
// active segment putting "AAAA" at 0; its _start reports the word at 0.
// With drop, _start first runs data.drop 0: an instruction that refers to
// the segment by index.
func dataCountModule(drop bool) []byte {
	sec := func(id byte, b ...byte) []byte { return append([]byte{id, byte(len(b))}, b...) }
	code := []byte{0x00} // no locals
	if drop {
		code = append(code, 0xfc, 0x09, 0x00) // data.drop 0
	}
	code = append(code, 0x41, 0x00, 0x28, 0x02, 0x00, 0x10, 0x00, 0x0b) // report(load(0))
	var m []byte
	m = append(m, 0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00)
	m = append(m, sec(1, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00)...)
	m = append(m, sec(2, 0x01, 0x01, 't', 0x06, 'r', 'e', 'p', 'o', 'r', 't', 0x00, 0x00)...)
	m = append(m, sec(3, 0x01, 0x01)...)
	m = append(m, sec(5, 0x01, 0x00, 0x01)...)
	m = append(m, sec(7, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01)...)
	m = append(m, sec(12, 0x01)...)
	m = append(m, sec(10, append([]byte{0x01, byte(len(code))}, code...)...)...)
	m = append(m, sec(11, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x04, 'A', 'A', 'A', 'A')...)
	return m
}

// TestDataCountModules: a module with a data count section gets the
// copy-on-write image when no instruction refers to a segment, and is
// compiled as it is when one does; both see their data.
func TestDataCountModules(t *testing.T) {
	ctx := context.Background()
	e, err := New(engine.Config{MemoryLimitBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	link := reportLink
	for _, tc := range []struct {
		name      string
		drop      bool
		wantImage bool
	}{{"no segment reference", false, true}, {"data.drop", true, false}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := e.Compile(ctx, dataCountModule(tc.drop), link)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			if got := m.(*module).mem.fd >= 0; got != tc.wantImage {
				t.Errorf("memory image used: %v, want %v", got, tc.wantImage)
			}
			for range 3 {
				var got []uint32
				if err := m.Run(context.WithValue(ctx, reportKey{}, &got), engine.RunConfig{}); err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 || got[0] != 0x41414141 {
					t.Fatalf("sandbox saw %#x, want [0x41414141]", got)
				}
			}
		})
	}
}
