package wazeroengine

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"

	"github.com/edgehost/edgehost/internal/engine/wasmopt"
)

// prepareMemory splits wasm into code and its initial memory image
// (wasmopt.DataImageUnverified: code that does not compile must be
// replaced by wasm and plainMemory) and returns the allocator that gives
// each sandbox a copy-on-write view of that image: instantiation copies no
// data segment, and a sandbox's memory costs only the pages it writes. When
// the module does not allow it, wasm comes back unchanged with an
// allocator of plain zeroed reservations.
func prepareMemory(wasm []byte) ([]byte, *memAllocator, error) {
	code, image, ok, err := wasmopt.DataImageUnverified(wasm)
	out, _, mem, err := memoryFor(wasm, code, image, ok && err == nil)
	return out, mem, err
}

// prepare is prepareMemory with the split kept in the cache directory
// (Engine.split). sum is the SHA-256 of the module returned, the key of
// the rewrite cache and of the compiled marks (zero without a cache
// directory, where nothing is keyed).
func (e *Engine) prepare(wasm []byte) (out []byte, sum [sha256.Size]byte, mem *memAllocator, err error) {
	sp := e.split(wasm)
	out, split, mem, err := memoryFor(wasm, sp.code, sp.image, sp.ok)
	if split {
		return out, sp.codeSum, mem, err
	}
	return out, sp.wasmSum, mem, err
}

// memoryFor is prepareMemory given wasm's split (ok: code and image are
// wasmopt.DataImageUnverified's). split reports that out is code.
func memoryFor(wasm, code, image []byte, ok bool) (out []byte, split bool, mem *memAllocator, err error) {
	if !ok {
		return wasm, false, plainMemory(), nil
	}
	if len(image) == 0 {
		return code, true, plainMemory(), nil
	}
	a, err := imageMemory(image)
	if err != nil {
		if errors.Is(err, errNoMemfd) {
			return wasm, false, plainMemory(), nil
		}
		return nil, false, nil, err
	}
	return code, true, a, nil
}

var errNoMemfd = errors.New("memory image: no memfd")

// imageMemory is the allocator of memories that start with image (not
// empty). Errors: errNoMemfd, or the kernel refusing to size or write the
// memfd.
func imageMemory(image []byte) (*memAllocator, error) {
	fd, err := unix.MemfdCreate("edgehost-memory-image", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoMemfd, err)
	}
	size := roundUp(uint64(len(image)), uint64(unix.Getpagesize()))
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("memory image: %w", err)
	}
	if _, err := unix.Pwrite(fd, image, 0); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("memory image: %w", err)
	}
	a := plainMemory()
	a.fd, a.imageSize, a.image = fd, size, image
	for a.zeros < len(image) && image[a.zeros] == 0 {
		a.zeros++
	}
	return a, nil
}

// plainMemory is the allocator for a module compiled as it is: no image.
func plainMemory() *memAllocator {
	a := &memAllocator{fd: -1, pagemap: -1, pageSize: uint64(unix.Getpagesize()), free: map[uint64][][]byte{}}
	if fd, err := unix.Open("/proc/self/pagemap", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		a.pagemap = fd
	}
	return a
}

// memAllocator backs one module's linear memories. Each memory is a
// reservation of the memory's maximum (growing never moves or copies it)
// whose first imageSize bytes map the module's memory image privately:
// pages are shared until a sandbox writes them. A freed memory is reset
// and kept for the next sandbox (memAllocator.reset):
//   - one of at most keepResident bytes in place: the image copied back,
//     zeros after it;
//   - a larger one page by page when the pages a sandbox wrote, as the
//     kernel's page map tells, hold at most keepResident bytes: those
//     pages get the image's bytes or zeros back, and the others still
//     hold the image's pages or none;
//   - else with madvise(MADV_DONTNEED), which brings back the image's
//     pages and zero pages elsewhere, at a page fault each.
//
// The first two leave the pages resident, so that the next sandbox takes
// no page faults on them. No sandbox ever sees another's writes.
type memAllocator struct {
	fd        int    // memfd holding the image, or -1
	imageSize uint64 // page-rounded image size
	image     []byte // the image itself, for resets in place
	zeros     int    // how many bytes the image starts with that are 0 (TinyGo's stack)
	pageSize  uint64 // the kernel's page size, bytes
	// pagemap is /proc/self/pagemap open, or -1 (resetWritten is then
	// not made); pmMu keeps close from closing it under a reader.
	pmMu    sync.RWMutex
	pagemap int
	mu      sync.Mutex
	free    map[uint64][][]byte // by reserved size
	closed  bool
}

// keepPerSize bounds the reservations kept for reuse.
const keepPerSize = 64

// keepResident is the largest memory reset in place rather than handed
// back to the kernel: zeroing 1 MiB costs about as much as the 16 page
// faults of a TinyGo guest's 256 KiB. A kept reservation holds at most
// this much resident memory.
const keepResident = 1 << 20

// Allocate returns a memory reserving max bytes; nil (a failed allocation
// to wazero) when the kernel refuses the mapping.
func (a *memAllocator) Allocate(_, max uint64) experimental.LinearMemory {
	a.mu.Lock()
	if l := a.free[max]; len(l) > 0 {
		buf := l[len(l)-1]
		a.free[max] = l[:len(l)-1]
		a.mu.Unlock()
		return &linearMemory{a: a, buf: buf}
	}
	a.mu.Unlock()
	if max < a.imageSize {
		return nil
	}
	buf, err := unix.Mmap(-1, 0, int(max), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	if a.fd >= 0 {
		if err := mapFixed(buf[:a.imageSize], a.fd); err != nil {
			unix.Munmap(buf)
			return nil
		}
	}
	return &linearMemory{a: a, buf: buf}
}

// reset puts the memory buf, of which the sandbox could write the first
// used bytes (its memory's largest size), back to the module's image and
// zeros; false when the kernel refused. A memory of at most keepResident
// bytes is reset in place, a larger one page by page (resetWritten) or
// handed back to the kernel.
func (a *memAllocator) reset(buf []byte, used uint64) bool {
	switch {
	case used == 0:
	case used <= keepResident && uint64(len(a.image)) <= used:
		// Zeros are cleared rather than copied: half the memory traffic.
		clear(buf[:a.zeros])
		n := a.zeros + copy(buf[a.zeros:], a.image[a.zeros:])
		clear(buf[n:used])
	case a.resetWritten(buf, used):
	default:
		return unix.Madvise(buf[:roundUp(used, 65536)], unix.MADV_DONTNEED) == nil
	}
	return true
}

// Bits of a /proc/self/pagemap entry (Linux's
// Documentation/admin-guide/mm/pagemap.rst): the page is present, it is
// swapped out, it is a file page (or shared anonymous memory).
const (
	pmPresent = 1 << 63
	pmSwapped = 1 << 62
	pmFile    = 1 << 61
)

// pmChunk is how many pagemap entries resetWritten reads at a time.
const pmChunk = 512

// resetWritten resets buf[:used] page by page: each page the kernel's
// page map does not show unwritten since it was mapped or last dropped
// gets the module's image bytes (zeros past the image) back. A page is
// unwritten when it has no entry at all (not present, not swapped: the
// next access maps the image's page or a zero page) or, inside the
// image, when it is present as a file page (the memfd's page, which
// nothing writes); any other entry (a private copy, present or swapped,
// the zero page, a migration entry) counts as written. False, with some
// pages perhaps reset, when the page map cannot be read or the written
// pages hold more than keepResident bytes: the caller then drops the
// whole range.
func (a *memAllocator) resetWritten(buf []byte, used uint64) bool {
	a.pmMu.RLock()
	defer a.pmMu.RUnlock()
	if a.pagemap < 0 || len(buf) == 0 {
		return false
	}
	ps := a.pageSize
	pages := roundUp(used, ps) / ps
	first := uint64(uintptr(unsafe.Pointer(&buf[0]))) / ps
	var raw [pmChunk * 8]byte
	written := uint64(0)
	for at := uint64(0); at < pages; at += pmChunk {
		n := min(pmChunk, pages-at)
		b := raw[:n*8]
		if got, err := unix.Pread(a.pagemap, b, int64((first+at)*8)); err != nil || got != len(b) {
			return false
		}
		for i := range n {
			e := binary.NativeEndian.Uint64(b[i*8:])
			off := (at + i) * ps
			if e&(pmPresent|pmSwapped) == 0 ||
				(off < a.imageSize && e&(pmPresent|pmSwapped|pmFile) == pmPresent|pmFile) {
				continue
			}
			if written += ps; written > keepResident {
				return false
			}
			page := buf[off:min(off+ps, used)]
			if off < uint64(len(a.image)) {
				clear(page[copy(page, a.image[off:]):])
			} else {
				clear(page)
			}
		}
	}
	return true
}

func (a *memAllocator) release(buf []byte, used uint64) {
	if !a.reset(buf, used) {
		unix.Munmap(buf)
		return
	}
	max := uint64(len(buf))
	a.mu.Lock()
	if !a.closed && len(a.free[max]) < keepPerSize {
		a.free[max] = append(a.free[max], buf)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	unix.Munmap(buf)
}

// trim unmaps the kept reservations; later ones are kept again.
func (a *memAllocator) trim() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, l := range a.free {
		for _, b := range l {
			unix.Munmap(b)
		}
		delete(a.free, k)
	}
}

// close unmaps the kept reservations and closes the image. Memories still
// in use are unmapped when freed.
func (a *memAllocator) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = true
	for k, l := range a.free {
		for _, b := range l {
			unix.Munmap(b)
		}
		delete(a.free, k)
	}
	if a.fd >= 0 {
		unix.Close(a.fd)
		a.fd = -1
	}
	a.pmMu.Lock()
	if a.pagemap >= 0 {
		unix.Close(a.pagemap)
		a.pagemap = -1
	}
	a.pmMu.Unlock()
}

func roundUp(n, to uint64) uint64 { return (n + to - 1) / to * to }

type linearMemory struct {
	a    *memAllocator
	buf  []byte
	used uint64
}

// Reallocate returns the first size bytes of the reservation; the address
// never changes, so nothing is copied.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	if size > m.used {
		m.used = size
	}
	return m.buf[:size:len(m.buf)]
}

// reset puts a memory still in use back to the module's image and zeros
// (memAllocator.reset), for the next sandbox on its instance.
func (m *linearMemory) reset() bool { return m.buf != nil && m.a.reset(m.buf, m.used) }

// Free hands the reservation back for reuse.
func (m *linearMemory) Free() {
	if m.buf != nil {
		m.a.release(m.buf, m.used)
		m.buf = nil
	}
}
