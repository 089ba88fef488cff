package store_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/store"
)

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/srv/data")
	if d, err := store.DefaultDir(); err != nil || d != filepath.Join("/srv/data", "edgehost") {
		t.Errorf("with XDG_DATA_HOME: %q, %v", d, err)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, err := store.DefaultDir(); err != nil || d != filepath.Join("/home/u", ".local", "share", "edgehost") {
		t.Errorf("without XDG_DATA_HOME: %q, %v", d, err)
	}
}

// stage1 stores a tiny module as version 1 and makes it active.
func stage1(t *testing.T, s *store.Store) store.Version {
	t.Helper()
	st, err := s.Stage(bytes.NewReader(guesttest.NopModule()), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetActive(v.Number); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestOneProcessAtATime(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(dir); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	s.Close()
	s, err = store.Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

func TestCorruption(t *testing.T) {
	tests := []struct {
		name   string
		damage func(dir string, v store.Version) error
		check  func(dir string) error // returns the error expected to be ErrCorrupt
	}{
		{"module bytes changed", func(dir string, v store.Version) error {
			return os.WriteFile(filepath.Join(dir, "blobs", "sha256", v.SHA256), []byte("\x00asm\x01\x00\x00\x00"), 0o644)
		}, func(dir string) error {
			s, err := store.Open(dir)
			if err != nil {
				return err
			}
			defer s.Close()
			_, _, _, err = s.Load(1)
			return err
		}},
		{"active pointer to a missing version", func(dir string, _ store.Version) error {
			return os.WriteFile(filepath.Join(dir, "active"), []byte("7\n"), 0o644)
		}, func(dir string) error { _, err := store.Open(dir); return err }},
		{"active pointer garbled", func(dir string, _ store.Version) error {
			return os.WriteFile(filepath.Join(dir, "active"), []byte("x"), 0o644)
		}, func(dir string) error { _, err := store.Open(dir); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := store.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			v := stage1(t, s)
			s.Close()
			if err := tc.damage(dir, v); err != nil {
				t.Fatal(err)
			}
			if err := tc.check(dir); !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestOpenRecovers: leftovers of an interrupted write (files in tmp/, a
// blob no version refers to) are removed by Open; versions stay.
func TestOpenRecovers(t *testing.T) {
	dir := t.TempDir()
	s, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := stage1(t, s)
	s.Close()
	for _, f := range []string{"tmp/upload-123", "tmp/stage-9/package/fastly.toml", "blobs/sha256/deadbeef"} {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Errorf("tmp/ holds %v", left)
	}
	if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", "deadbeef")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unreferenced blob kept: %v", err)
	}
	if n, err := s.Active(); n != 1 || err != nil {
		t.Errorf("active %d, %v", n, err)
	}
	if _, wasm, _, err := s.Load(1); err != nil || !bytes.Equal(wasm, guesttest.NopModule()) || v.Size != int64(len(wasm)) {
		t.Errorf("version 1 after recovery: %v", err)
	}
}
