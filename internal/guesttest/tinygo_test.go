package guesttest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgehost/edgehost/internal/guestbuild"
)

// TestTinyGoBuildsEveryGuest builds every example and every guest fixture
// of testdata/guests with TinyGo from inside the repository (each guest
// module on its own go.mod, in its own folder).
func TestTinyGoBuildsEveryGuest(t *testing.T) {
	c := RequireTinyGo(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rels := guestDirs(t, root)
	if len(rels) < 10 {
		t.Fatalf("found only %d guests: %v", len(rels), rels)
	}
	mods, err := TinyGoFixtures(context.Background(), c, rels...)
	if err != nil {
		t.Fatal(err)
	}
	for _, rel := range rels {
		b := mods[filepath.Base(rel)]
		if !bytes.HasPrefix(b, []byte("\x00asm\x01\x00\x00\x00")) || !bytes.Contains(b, []byte("_start")) {
			t.Errorf("%s: not a Wasm command module (%d bytes)", rel, len(b))
		}
	}
}

// guestDirs lists every guest of the repository at root (the folders of
// examples and testdata/guests), relative to root.
func guestDirs(t *testing.T, root string) []string {
	t.Helper()
	var rels []string
	for _, parent := range []string{"examples", "testdata/guests"} {
		entries, err := os.ReadDir(filepath.Join(root, parent))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			// internal holds packages the guests share, not a guest.
			if e.IsDir() && e.Name() != "internal" {
				rels = append(rels, parent+"/"+e.Name())
			}
		}
	}
	return rels
}

// TestSourceKey: the cache key of a guest changes with any file of its
// module, of abi or of guestsdk, and with the compiler; nothing else moves it.
func TestSourceKey(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"abi/abi.go":             "package abi",
		"guestsdk/sdk.go":        "package guestsdk",
		"guests/go.mod":          "module g\n\ngo 1.23\n",
		"guests/hello/main.go":   "package main",
		"guests/other/main.go":   "package main // another guest of the module",
		"unrelated/notes.txt":    "not a build input",
		"guests/hello/README.md": "docs",
		"guestsdk/go.mod":        "module guestsdk",
		"abi/go.mod":             "module abi",
	}
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for rel, c := range files {
		write(rel, c)
	}
	tiny := guestbuild.Compiler{Toolchain: guestbuild.TinyGo, Path: "/x/tinygo", Version: "tinygo 0.33.0"}
	key := func(c guestbuild.Compiler) string {
		t.Helper()
		k, err := sourceKey(root, "guests/hello", c)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	base := key(tiny)
	if key(tiny) != base {
		t.Fatal("the key of unchanged sources changed")
	}
	write("unrelated/notes.txt", "edited")
	if key(tiny) != base {
		t.Error("a file outside the guest's module, abi and guestsdk moved the key")
	}
	newer := tiny
	newer.Version = "tinygo 0.34.0"
	if key(newer) == base {
		t.Error("another compiler version kept the key")
	}
	for _, rel := range []string{"guests/hello/main.go", "guests/other/main.go", "guests/go.mod", "abi/abi.go", "guestsdk/sdk.go"} {
		write(rel, files[rel]+"\n// edited")
		if k := key(tiny); k == base {
			t.Errorf("editing %s kept the key", rel)
		} else {
			base = k
		}
	}
	if _, err := sourceKey(root, "unrelated", tiny); err == nil {
		t.Error("a folder outside any guest module got a key")
	}
}
