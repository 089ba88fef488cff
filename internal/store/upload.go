package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/edgehost/edgehost/internal/config"
)

// Staged is an upload received and checked but not yet a version: a
// module and, for a package, its manifest. Commit stores it, Discard
// drops it; one of them must be called.
type Staged struct {
	// Wasm is the module.
	Wasm []byte
	// SHA256 is the module's hex sha256.
	SHA256 string
	// Manifest is the package's fastly.toml, or config.Default() for a raw
	// module.
	Manifest *config.Manifest

	s   *Store
	pkg bool
	dir string // tmp/stage-*: package/ and, at commit, version.json
}

// Commit stores st as the next version and returns its record. Errors:
// file system errors (st is then discarded).
func (st *Staged) Commit() (Version, error) {
	v, err := st.s.commit(st)
	if err != nil {
		st.Discard()
	}
	return v, err
}

// CommitAs stores st as version n, the number a fleet gave it (README.md,
// "Fleet"), and returns its record. When version n is stored already
// with the same module and kind, that record is returned unchanged; a
// different version n (a local one from before the node joined the
// fleet) is replaced. Errors: n < 1, file system errors (st is then
// discarded).
func (st *Staged) CommitAs(n int) (Version, error) {
	if n < 1 {
		st.Discard()
		return Version{}, fmt.Errorf("version number %d", n)
	}
	v, err := st.s.commitAs(st, n)
	if err != nil {
		st.Discard()
	}
	return v, err
}

// Discard removes st's staged files. It is safe to call after Commit.
func (st *Staged) Discard() {
	if st.dir != "" {
		os.RemoveAll(st.dir)
		st.dir = ""
	}
}

// Stage receives an upload from r, at most limit bytes, and checks it. The
// upload is either a Wasm module (it starts with "\x00asm") or a
// Fastly-style package: a .tar.gz holding fastly.toml and bin/main.wasm,
// at the top or under one top-level folder, plus any files the
// manifest's JSON config stores and dictionaries read. Nothing in the
// package may be a link or a device, or have a name leaving the package.
// Stage checks the format and the manifest, not the module: compiling it
// is the caller's job, before Commit.
//
// r is streamed to a file in tmp/ while it is read, never held whole in
// memory beyond the module itself. Errors: ErrTooLarge (wrapped) when r
// holds more than limit bytes (or r fails with *http.MaxBytesError), or a
// package unpacks to more than limit bytes; ErrInvalid (wrapped, with
// the reason) for anything else wrong with the upload; file system
// errors; r's own error.
func (s *Store) Stage(r io.Reader, limit int64) (*Staged, error) {
	f, err := os.CreateTemp(s.path("tmp"), "upload-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), err == nil && n > limit:
		return nil, fmt.Errorf("%w: the limit is %d bytes", ErrTooLarge, limit)
	case err != nil:
		return nil, fmt.Errorf("receiving upload: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		return nil, fmt.Errorf("%w: %d bytes is neither a Wasm module nor a .tar.gz package", ErrInvalid, n)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	st := &Staged{s: s, Manifest: config.Default()}
	if st.dir, err = os.MkdirTemp(s.path("tmp"), "stage-"); err != nil {
		return nil, err
	}
	switch {
	case string(magic[:]) == "\x00asm":
		if st.Wasm, err = io.ReadAll(f); err != nil {
			st.Discard()
			return nil, err
		}
	case magic[0] == 0x1f && magic[1] == 0x8b:
		if err := s.stagePackage(st, f, limit); err != nil {
			st.Discard()
			return nil, err
		}
	default:
		st.Discard()
		return nil, fmt.Errorf("%w: not a WebAssembly module (no \\0asm header) and not a .tar.gz package (no gzip header)", ErrInvalid)
	}
	sum := sha256.Sum256(st.Wasm)
	st.SHA256 = hex.EncodeToString(sum[:])
	return st, nil
}

// Package layout names.
const (
	manifestName = "fastly.toml"
	moduleName   = "bin/main.wasm"
)

// stagePackage unpacks the gzipped tar in r (at most limit bytes
// unpacked), keeps fastly.toml, bin/main.wasm and the store files the
// manifest names, and parses the manifest from the staged copy.
func (s *Store) stagePackage(st *Staged, r io.Reader, limit int64) error {
	files, err := readTarGz(r, limit)
	if err != nil {
		return err
	}
	// A Fastly CLI package holds everything under one top-level folder
	// named after the package; accept that and a flat layout.
	prefix := ""
	if _, ok := files[moduleName]; !ok {
		for name := range files {
			if top, rest, ok := strings.Cut(name, "/"); ok && rest == moduleName {
				prefix = top + "/"
				break
			}
		}
	}
	wasm, ok := files[prefix+moduleName]
	if !ok {
		return fmt.Errorf("%w: package has no %s (a Fastly-style package holds fastly.toml and bin/main.wasm)", ErrInvalid, moduleName)
	}
	manifest, ok := files[prefix+manifestName]
	if !ok {
		return fmt.Errorf("%w: package has no %s next to bin/", ErrInvalid, manifestName)
	}
	keep, err := storeFiles(manifest)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	pkgDir := filepath.Join(st.dir, "package")
	for _, name := range append([]string{manifestName}, keep...) {
		data, ok := files[prefix+name]
		if !ok {
			return fmt.Errorf("%w: %s names the file %q, which the package does not hold", ErrInvalid, manifestName, name)
		}
		p := filepath.Join(pkgDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeSynced(p, data); err != nil {
			return err
		}
	}
	m, err := parseManifest(pkgDir)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	st.Wasm, st.Manifest, st.pkg = wasm, m, true
	return nil
}

// parseManifest parses dir/fastly.toml, naming it "fastly.toml" in errors.
func parseManifest(dir string) (*config.Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return nil, err
	}
	return config.Parse(manifestName, data, dir)
}

// readTarGz reads a gzipped tar into memory: regular files by clean
// slash-separated name. Errors (ErrInvalid or ErrTooLarge wrapped): bad
// gzip or tar data, an entry that is not a regular file or folder, a
// name that is absolute or leaves the package, a duplicate, more than
// limit bytes of content.
func readTarGz(r io.Reader, limit int64) (map[string][]byte, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: package: %v", ErrInvalid, err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	var total int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: package: %v", ErrInvalid, err)
		}
		name := h.Name
		if strings.Contains(name, `\`) || path.IsAbs(name) || !filepath.IsLocal(filepath.FromSlash(strings.TrimSuffix(name, "/"))) {
			return nil, fmt.Errorf("%w: package entry %q: names must stay inside the package (no absolute paths, no ..)", ErrInvalid, name)
		}
		name = path.Clean(name)
		switch h.Typeflag {
		case tar.TypeDir:
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("%w: package entry %q: only regular files and folders are accepted, not links or devices", ErrInvalid, h.Name)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("%w: package entry %q appears twice", ErrInvalid, name)
		}
		if h.Size > limit-total {
			return nil, fmt.Errorf("%w: the package unpacks to more than %d bytes", ErrTooLarge, limit)
		}
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, tr, h.Size); err != nil {
			return nil, fmt.Errorf("%w: package entry %q: %v", ErrInvalid, name, err)
		}
		total += h.Size
		files[name] = buf.Bytes()
	}
	// Drain the gzip stream so that trailing garbage or a bad checksum is
	// reported, within the same limit.
	if _, err := io.Copy(io.Discard, io.LimitReader(zr, limit)); err != nil {
		return nil, fmt.Errorf("%w: package: %v", ErrInvalid, err)
	}
	return files, nil
}

// storeFiles returns the files (slash-separated, relative to the
// manifest) that the manifest's JSON config stores and dictionaries read,
// sorted. A syntax error is left to config.Parse; a file name that is
// absolute or leaves the package is an error, so that a package cannot
// read the host's files.
func storeFiles(manifest []byte) ([]string, error) {
	var doc struct {
		LocalServer struct {
			ConfigStores map[string]any `toml:"config_stores"`
			Dictionaries map[string]any `toml:"dictionaries"`
		} `toml:"local_server"`
	}
	if _, err := toml.Decode(string(manifest), &doc); err != nil {
		return nil, nil // config.Parse reports it with its line
	}
	seen := map[string]bool{}
	for section, stores := range map[string]map[string]any{
		"config_stores": doc.LocalServer.ConfigStores,
		"dictionaries":  doc.LocalServer.Dictionaries,
	} {
		for name, v := range stores {
			t, _ := v.(map[string]any)
			file, ok := t["file"].(string)
			if !ok || file == "" {
				continue
			}
			if strings.Contains(file, `\`) || path.IsAbs(file) || !filepath.IsLocal(filepath.FromSlash(file)) {
				return nil, fmt.Errorf("%s: local_server.%s.%s.file %q must name a file inside the package", manifestName, section, name, file)
			}
			seen[path.Clean(file)] = true
		}
	}
	out := make([]string, 0, len(seen))
	for f := range seen {
		if f != manifestName {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out, nil
}
