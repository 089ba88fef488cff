// Package store keeps deployed module versions on disk, in one directory
// (edgehost serve --data-dir). Every write is atomic: a file is written
// to tmp/, synced, renamed into place, and its directory synced, so a
// crash at any point leaves either the old state or the new one, never a
// half-written file. Open removes what a crash may leave in tmp/.
//
// Layout under the directory:
//
//	blobs/sha256/HEX          module bytes, content addressed (HEX = sha256)
//	versions/N/version.json   version N's record (see Version)
//	versions/N/package/       a package's files other than bin/main.wasm:
//	                          fastly.toml and the JSON files its stores read
//	active                    the active version number, in decimal
//	cache/                    compiled code, for the engine (CacheDir)
//	tmp/                      uploads being received and staged
//	lock                      held (flock) by the process that opened it
package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgehost/edgehost/internal/config"
)

// Errors returned by Store methods; test with errors.Is.
var (
	// ErrNotFound: no version has that number.
	ErrNotFound = errors.New("no such version")
	// ErrTooLarge: an upload, or a package once unpacked, is over the
	// size limit.
	ErrTooLarge = errors.New("upload over the size limit")
	// ErrInvalid: an upload is neither a Wasm module nor a valid package
	// (the error wrapping it says why).
	ErrInvalid = errors.New("invalid upload")
	// ErrLocked: another process has the directory open.
	ErrLocked = errors.New("data directory in use by another edgehost process")
	// ErrCorrupt: a stored file does not match its record (its sha256
	// differs, or a record cannot be read).
	ErrCorrupt = errors.New("data directory corrupt")
)

// Version is the record of one stored version, as version.json holds it
// and the admin API reports it.
type Version struct {
	// Number is the version number: 1 for the first upload, then one more
	// than the highest stored.
	Number int `json:"version"`
	// SHA256 is the hex sha256 of the module (for a package, of its
	// bin/main.wasm).
	SHA256 string `json:"sha256"`
	// Size is the module's size in bytes.
	Size int64 `json:"size"`
	// Created is when the version was stored (UTC, second precision is
	// enough for people; the stored value has nanoseconds).
	Created time.Time `json:"created"`
	// Package is true when the version came from a package; its
	// fastly.toml is then the version's manifest.
	Package bool `json:"package"`
}

// Store is an open data directory. Its methods are safe for concurrent
// use; one process at a time may have a directory open.
type Store struct {
	dir  string
	lock *os.File

	mu sync.Mutex // orders numbering and the active pointer
}

// DefaultDir returns the data directory used when none is given:
// $XDG_DATA_HOME/edgehost when XDG_DATA_HOME is set, else
// ~/.local/share/edgehost. Errors: no home directory.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "edgehost"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("data dir: %w; set --data-dir", err)
	}
	return filepath.Join(home, ".local", "share", "edgehost"), nil
}

// Open opens (creating it when missing) the data directory dir and
// recovers from an interrupted write: it empties tmp/ and removes blobs
// no version refers to. Errors: ErrLocked when another process has it
// open; ErrCorrupt for an unreadable version record or an active pointer
// to a missing version; file system errors.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"blobs/sha256", "versions", "cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o755); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	lock, err := lockDir(filepath.Join(abs, "lock"))
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", abs, err)
	}
	s := &Store{dir: abs, lock: lock}
	if err := s.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the directory lock.
func (s *Store) Close() error { return s.lock.Close() }

// Dir returns the data directory (absolute).
func (s *Store) Dir() string { return s.dir }

// CacheDir returns the directory for compiled code (engine.Config.CacheDir).
func (s *Store) CacheDir() string { return filepath.Join(s.dir, "cache") }

func (s *Store) path(parts ...string) string {
	return filepath.Join(append([]string{s.dir}, parts...)...)
}

// recover empties tmp/, removes blobs no version refers to and checks the
// active pointer.
func (s *Store) recover() error {
	tmp := s.path("tmp")
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return err
		}
	}
	versions, err := s.List()
	if err != nil {
		return err
	}
	used := map[string]bool{}
	for _, v := range versions {
		used[v.SHA256] = true
	}
	blobs, err := os.ReadDir(s.path("blobs", "sha256"))
	if err != nil {
		return err
	}
	for _, b := range blobs {
		if !used[b.Name()] {
			if err := os.Remove(s.path("blobs", "sha256", b.Name())); err != nil {
				return err
			}
		}
	}
	n, err := s.Active()
	if err != nil {
		return err
	}
	if n != 0 {
		if _, err := s.Get(n); err != nil {
			return fmt.Errorf("%w: active version %d: %v", ErrCorrupt, n, err)
		}
	}
	return nil
}

// List returns every stored version, newest (highest number) first.
// Errors: ErrCorrupt for an unreadable record.
func (s *Store) List() ([]Version, error) {
	entries, err := os.ReadDir(s.path("versions"))
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil || n <= 0 || !e.IsDir() {
			continue // not ours
		}
		v, err := s.Get(n)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b Version) int { return b.Number - a.Number })
	return out, nil
}

// Get returns version n's record. Errors: ErrNotFound, ErrCorrupt.
func (s *Store) Get(n int) (Version, error) {
	b, err := os.ReadFile(s.path("versions", strconv.Itoa(n), "version.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Version{}, fmt.Errorf("version %d: %w", n, ErrNotFound)
	}
	if err != nil {
		return Version{}, err
	}
	var v Version
	if err := json.Unmarshal(b, &v); err != nil || v.Number != n {
		return Version{}, fmt.Errorf("%w: versions/%d/version.json unreadable", ErrCorrupt, n)
	}
	return v, nil
}

// Load returns version n's module bytes, checked against its sha256, and
// its manifest: the package's fastly.toml, or config.Default() for a raw
// module. Errors: ErrNotFound, ErrCorrupt, the manifest's parse errors.
func (s *Store) Load(n int) (Version, []byte, *config.Manifest, error) {
	v, err := s.Get(n)
	if err != nil {
		return Version{}, nil, nil, err
	}
	wasm, err := os.ReadFile(s.path("blobs", "sha256", v.SHA256))
	if err != nil {
		return Version{}, nil, nil, fmt.Errorf("%w: version %d: module: %v", ErrCorrupt, n, err)
	}
	if sum := sha256.Sum256(wasm); hex.EncodeToString(sum[:]) != v.SHA256 {
		return Version{}, nil, nil, fmt.Errorf("%w: version %d: module sha256 is %x, want %s", ErrCorrupt, n, sum, v.SHA256)
	}
	m, err := s.manifestOf(v)
	if err != nil {
		return Version{}, nil, nil, err
	}
	return v, wasm, m, nil
}

// Manifest returns version n's record and manifest, as Load does, without
// reading its module: for a host that still holds the version's compiled
// code. Errors: ErrNotFound, ErrCorrupt, the manifest's parse errors.
func (s *Store) Manifest(n int) (Version, *config.Manifest, error) {
	v, err := s.Get(n)
	if err != nil {
		return Version{}, nil, err
	}
	m, err := s.manifestOf(v)
	if err != nil {
		return Version{}, nil, err
	}
	return v, m, nil
}

// manifestOf reads stored version v's manifest: its package's
// fastly.toml, or config.Default() for a raw module.
func (s *Store) manifestOf(v Version) (*config.Manifest, error) {
	if !v.Package {
		return config.Default(), nil
	}
	m, err := parseManifest(s.path("versions", strconv.Itoa(v.Number), "package"))
	if err != nil {
		return nil, fmt.Errorf("version %d: %w", v.Number, err)
	}
	return m, nil
}

// Active returns the active version's number, 0 when none was activated.
// Errors: ErrCorrupt for an unreadable pointer.
func (s *Store) Active() (int, error) {
	b, err := os.ReadFile(s.path("active"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%w: active pointer %q", ErrCorrupt, b)
	}
	return n, nil
}

// SetActive records version n as the active one, atomically. Errors:
// ErrNotFound, file system errors.
func (s *Store) SetActive(n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.Get(n); err != nil {
		return err
	}
	return s.writeFile(s.dir, "active", []byte(strconv.Itoa(n)+"\n"))
}

// commit stores a staged upload as the next version.
func (s *Store) commit(st *Staged) (Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	versions, err := s.List()
	if err != nil {
		return Version{}, err
	}
	n := 1
	if len(versions) > 0 {
		n = versions[0].Number + 1
	}
	return s.commitLocked(st, n)
}

// commitAs stores a staged upload as version n (see Staged.CommitAs).
func (s *Store) commitAs(st *Staged, n int) (Version, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.Get(n)
	switch {
	case err == nil && old.SHA256 == st.SHA256 && old.Package == st.pkg:
		st.Discard()
		return old, nil
	case err == nil, errors.Is(err, ErrCorrupt):
		// Out of the way first: a crash leaves the version missing, and
		// the fleet still has it.
		dead := s.path("tmp", "replaced-"+strconv.Itoa(n))
		if err := os.Rename(s.path("versions", strconv.Itoa(n)), dead); err != nil {
			return Version{}, err
		}
		os.RemoveAll(dead)
	case !errors.Is(err, ErrNotFound):
		return Version{}, err
	}
	return s.commitLocked(st, n)
}

// commitLocked stores st as version n; s.mu is held.
func (s *Store) commitLocked(st *Staged, n int) (Version, error) {
	v := Version{Number: n, SHA256: st.SHA256, Size: int64(len(st.Wasm)), Created: time.Now().UTC(), Package: st.pkg}
	// The blob first: a crash before the version's rename leaves only an
	// unreferenced blob, which Open removes.
	blobDir := s.path("blobs", "sha256")
	if _, err := os.Stat(filepath.Join(blobDir, v.SHA256)); errors.Is(err, fs.ErrNotExist) {
		if err := s.writeFile(blobDir, v.SHA256, st.Wasm); err != nil {
			return Version{}, err
		}
	}
	rec, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return Version{}, err
	}
	if err := writeSynced(filepath.Join(st.dir, "version.json"), rec); err != nil {
		return Version{}, err
	}
	if err := syncTree(st.dir); err != nil {
		return Version{}, err
	}
	versionsDir := s.path("versions")
	if err := os.Rename(st.dir, filepath.Join(versionsDir, strconv.Itoa(n))); err != nil {
		return Version{}, err
	}
	st.dir = ""
	return v, syncDir(versionsDir)
}

// writeFile writes dir/name atomically: a temporary file in tmp/, synced,
// renamed over dir/name, then dir synced.
func (s *Store) writeFile(dir, name string, data []byte) error {
	f, err := os.CreateTemp(s.path("tmp"), name+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// writeSynced creates path with data and syncs it.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// syncTree syncs every directory under root, root included (files were
// synced when written).
func syncTree(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncDir(path)
	})
}
