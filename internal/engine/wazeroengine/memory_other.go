//go:build !linux

package wazeroengine

import (
	"crypto/sha256"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/edgehost/edgehost/internal/engine/wasmopt"
)

// prepareMemory merges data segments (wasmopt.CoalesceData); linear
// memories use wazero's own allocator on this platform.
func prepareMemory(wasm []byte) ([]byte, *memAllocator, error) {
	if opt, err := wasmopt.CoalesceData(wasm); err == nil {
		wasm = opt
	}
	return wasm, nil, nil
}

// prepare is prepareMemory and, with a cache directory, the SHA-256 of
// the module returned (the key of the rewrite cache and the compiled
// marks).
func (e *Engine) prepare(wasm []byte) (out []byte, sum [sha256.Size]byte, mem *memAllocator, err error) {
	out, mem, err = prepareMemory(wasm)
	if e.cfg.CacheDir != "" {
		sum = sha256.Sum256(out)
	}
	return out, sum, mem, err
}

// plainMemory is the allocator for a module compiled as it is.
func plainMemory() *memAllocator { return nil }

type memAllocator struct{}

func (*memAllocator) Allocate(_, _ uint64) experimental.LinearMemory { return nil }
func (*memAllocator) close()                                         {}
func (*memAllocator) trim()                                          {}

// linearMemory is never made on this platform: a module without the
// engine's allocator reuses no instance.
type linearMemory struct{}

func (*linearMemory) reset() bool { return false }

func (*linearMemory) Reallocate(uint64) []byte { return nil }
func (*linearMemory) Free()                    {}
