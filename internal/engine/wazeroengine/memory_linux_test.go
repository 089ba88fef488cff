package wazeroengine

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// TestResetWritten touches pages of a 4 MiB memory whose first 600 KiB
// are an image, in rounds each followed by a reset, then compares every
// byte with the image and zeros after it. Pages written (or read past
// the image, which maps the zero page) in all rounds since the memory was
// dropped count toward keepResident: within it resetWritten resets the
// pages one by one, past it it declines and reset drops the range.
func TestResetWritten(t *testing.T) {
	image := make([]byte, 600<<10+123)
	for i := range image {
		image[i] = byte(i*7 + 1)
	}
	a, err := imageMemory(image)
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if a.pagemap < 0 {
		t.Skip("no /proc/self/pagemap")
	}
	const used = 4 << 20
	want := append(bytes.Clone(image), make([]byte, used-len(image))...)
	lm := a.Allocate(used, 8<<20).(*linearMemory)
	defer lm.Free()
	mem := lm.Reallocate(used)
	ps := int(a.pageSize)
	imagePages := (len(image) + ps - 1) / ps
	type round struct {
		stride, start, end int  // pages start, start+stride, ... before end (0: all)
		read               bool // touch by reading instead of writing
		inPlace            bool // whether resetWritten resets it
	}
	for _, tc := range []struct {
		name   string
		rounds []round
	}{
		{"sparse", []round{{11, 0, 0, false, true}, {13, 5, 0, false, true}, {1, 0, 40, false, true}}},
		{"image", []round{{1, 0, imagePages, false, true}, {1, 0, imagePages, false, true}}},
		{"dense", []round{{1, 0, 0, false, false}}},
		{"sparse-then-dense", []round{{9, 2, 0, false, true}, {2, 0, 0, false, false}}},
		{"read-all", []round{{1, 0, 0, true, false}}},
		{"read-image", []round{{1, 0, imagePages, true, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each case starts from a dropped memory.
			if err := unix.Madvise(mem, unix.MADV_DONTNEED); err != nil {
				t.Fatal(err)
			}
			for i, r := range tc.rounds {
				end := r.end
				if end == 0 {
					end = used / ps
				}
				for p := r.start; p < end; p += r.stride {
					off := p*ps + (p*13)%ps
					if r.read {
						if mem[off] != want[off] {
							t.Fatalf("round %d: byte %d read %#x before the reset, want %#x", i, off, mem[off], want[off])
						}
					} else {
						mem[off] ^= 0xa5
					}
				}
				if got := a.resetWritten(mem, used); got != r.inPlace {
					t.Errorf("round %d: resetWritten %v, want %v", i, got, r.inPlace)
				}
				if !lm.reset() {
					t.Fatalf("round %d: reset refused", i)
				}
			}
			if !bytes.Equal(mem, want) {
				for i := range mem {
					if mem[i] != want[i] {
						t.Fatalf("after reset, byte %d (page %d) is %#x, want %#x", i, i/ps, mem[i], want[i])
					}
				}
			}
		})
	}
}

// BenchmarkMemoryReset is the reset of a memory shaped as a TinyGo
// hello's (host/bench/README.md): 128 KiB, an image of 96 KiB whose
// first 64 KiB (the stack) are zero, six pages written between resets.
// inplace is what reset does at this size; pagemap the page-by-page
// reset of memories over keepResident (resetWritten: one read of the
// kernel's page map, then the pages it shows written).
func BenchmarkMemoryReset(b *testing.B) {
	image := make([]byte, 96<<10+137)
	for i := 64 << 10; i < len(image); i++ {
		image[i] = byte(i*7 + 1)
	}
	a, err := imageMemory(image)
	if err != nil {
		b.Fatal(err)
	}
	defer a.close()
	const used = 128 << 10
	written := []int{60 << 10, 64<<10 - 8, 70 << 10, 90 << 10, 100 << 10, 127 << 10}
	for _, tc := range []struct {
		name  string
		reset func(buf []byte) bool
	}{
		{"inplace", func(buf []byte) bool { return a.reset(buf, used) }},
		{"pagemap", func(buf []byte) bool { return a.resetWritten(buf, used) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if tc.name == "pagemap" && a.pagemap < 0 {
				b.Skip("no /proc/self/pagemap")
			}
			lm := a.Allocate(used, 1<<30).(*linearMemory)
			defer lm.Free()
			mem := lm.Reallocate(used)
			for b.Loop() {
				for _, off := range written {
					mem[off]++
				}
				if !tc.reset(mem) {
					b.Fatal("reset refused")
				}
			}
			want := append(bytes.Clone(image), make([]byte, used-len(image))...)
			if !bytes.Equal(mem, want) {
				b.Fatal("memory after the reset is not the image and zeros")
			}
		})
	}
}
