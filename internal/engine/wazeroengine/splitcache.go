package wazeroengine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"

	"github.com/edgehost/edgehost/internal/cachefile"
	"github.com/edgehost/edgehost/internal/engine/wasmopt"
)

// splitVersion names the folder of Engine.split's entries in the cache
// directory; a change to wasmopt.DataImageUnverified's output, or to the
// entry's layout, must change it.
const splitVersion = "edgehost-split-v1"

// splitModule is wasmopt.DataImageUnverified's split of a module with the
// SHA-256 sums a load keys its caches by.
type splitModule struct {
	code, image []byte
	ok          bool // code and image are the split; else use the module as it is
	codeSum     [sha256.Size]byte
	wasmSum     [sha256.Size]byte
}

// split is wasmopt.DataImageUnverified(wasm) (an error counts as not
// split), kept in the engine's cache directory, when it has one, beside
// the rewrite cache: a restart or re-activation then reads the memory
// image and code instead of scanning and copying the whole module again
// (README.md, "Engines"). Without a cache directory the sums are zero.
//
// An entry is named for the SHA-256 of wasm under a folder named
// splitVersion, written to a temporary file and renamed into place: the
// CRC-32C of the rest (4 bytes, little endian), the SHA-256 of code, the
// image's length (8 bytes, little endian), the image, then code. Only a
// module that splits gets one. An entry that is short or does not match
// its checksum is computed again and replaced; failing to write one is
// not an error.
func (e *Engine) split(wasm []byte) splitModule {
	if e.cfg.CacheDir == "" {
		code, image, ok, err := wasmopt.DataImageUnverified(wasm)
		return splitModule{code: code, image: image, ok: ok && err == nil}
	}
	sp := splitModule{wasmSum: sha256.Sum256(wasm)}
	dir := filepath.Join(e.cfg.CacheDir, splitVersion)
	path := filepath.Join(dir, hex.EncodeToString(sp.wasmSum[:]))
	if b, err := os.ReadFile(path); err == nil {
		if got, ok := decodeSplit(b); ok {
			got.wasmSum = sp.wasmSum
			return got
		}
	}
	code, image, ok, err := wasmopt.DataImageUnverified(wasm)
	if err != nil || !ok {
		sp.code, sp.codeSum = wasm, sp.wasmSum
		return sp
	}
	sp.code, sp.image, sp.ok, sp.codeSum = code, image, true, sha256.Sum256(code)
	entry := make([]byte, splitHead, splitHead+len(image)+len(code))
	copy(entry[4:], sp.codeSum[:])
	binary.LittleEndian.PutUint64(entry[4+sha256.Size:], uint64(len(image)))
	entry = append(append(entry, image...), code...)
	binary.LittleEndian.PutUint32(entry, cachefile.Checksum(entry[4:]))
	cachefile.Write(path, entry)
	return sp
}

// splitHead is the length of an Engine.split entry's fixed part: the
// checksum, code's SHA-256 and the image's length.
const splitHead = 4 + sha256.Size + 8

// decodeSplit reads an entry of Engine.split; ok is false when it is
// short or does not match its checksum.
func decodeSplit(b []byte) (sp splitModule, ok bool) {
	if len(b) < splitHead || cachefile.Checksum(b[4:]) != binary.LittleEndian.Uint32(b) {
		return sp, false
	}
	n := binary.LittleEndian.Uint64(b[4+sha256.Size:])
	if n > uint64(len(b)-splitHead) {
		return sp, false
	}
	sp.codeSum = [sha256.Size]byte(b[4 : 4+sha256.Size])
	sp.image = b[splitHead : splitHead+int(n) : splitHead+int(n)]
	sp.code = b[splitHead+int(n):]
	sp.ok = true
	return sp, true
}
