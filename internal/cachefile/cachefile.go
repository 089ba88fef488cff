// Package cachefile holds what edgehost's on-disk caches (the wazero
// engine's rewrite and split caches, pre-initialized snapshots) share:
// the checksum that guards an entry against damage and the atomic write
// that keeps a reader from seeing half an entry. Each cache names its
// entries for the SHA-256 of their input and lays them out itself.
package cachefile

import (
	"hash/crc32"
	"os"
	"path/filepath"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC-32C (Castagnoli) of b: the checksum edgehost's
// cache entries carry, as wazero's own entries carry one. It guards
// against a flipped bit or a truncated file; the entry's name tells one
// input from another.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Write writes entry to path through a temporary file in path's folder
// (made when missing, mode 0700) renamed into place, so that a reader
// never sees half an entry. Failing is not an error: the entry is
// computed again next time.
func Write(path string, entry []byte) {
	dir := filepath.Dir(path)
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write(entry)
	if cerr := f.Close(); werr == nil && cerr == nil && os.Rename(f.Name(), path) == nil {
		return
	}
	os.Remove(f.Name())
}
