package guesttest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/guestbuild"
)

// SharedTinyGo is where CI keeps TinyGo, relative to the repository root
// (README.md, "Guests").
const SharedTinyGo = "../shared/tools/tinygo/tinygo"

// ErrNoTinyGo is returned by TinyGo when no TinyGo is found.
var ErrNoTinyGo = errors.New("no TinyGo: set " + guestbuild.TinyGoEnv + ", put tinygo on PATH, or provide " + SharedTinyGo + " beside the repository")

// TinyGo returns the TinyGo compiler tests use: $EDGEHOST_TINYGO, else
// tinygo on PATH, else SharedTinyGo relative to the repository root.
// Errors: ErrNoTinyGo; a compiler that was found but does not answer
// `version` (its error).
func TinyGo(ctx context.Context) (guestbuild.Compiler, error) {
	if os.Getenv(guestbuild.TinyGoEnv) != "" {
		return guestbuild.Find(ctx, guestbuild.TinyGo)
	}
	if c, err := guestbuild.TinyGoAt(ctx, "tinygo"); err == nil {
		return c, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return guestbuild.Compiler{}, err
	}
	shared := filepath.Join(root, filepath.FromSlash(SharedTinyGo))
	if _, err := os.Stat(shared); err != nil {
		return guestbuild.Compiler{}, ErrNoTinyGo
	}
	return guestbuild.TinyGoAt(ctx, shared)
}

// RequireTinyGo returns the compiler TinyGo finds. Without one it skips
// t, saying how to provide one, except when $CI is "true": then it fails
// t, so that CI cannot pass without the TinyGo tests.
func RequireTinyGo(t testing.TB) guestbuild.Compiler {
	t.Helper()
	c, err := TinyGo(context.Background())
	switch {
	case err == nil:
		return c
	case errors.Is(err, ErrNoTinyGo) && os.Getenv("CI") != "true":
		t.Skipf("skipped: %v", err)
	}
	t.Fatalf("TinyGo: %v", err)
	return guestbuild.Compiler{}
}

// CacheDir is where built test guests are kept between runs, keyed by a
// hash of their sources: os.UserCacheDir()/edgehost-test.
func CacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "edgehost-test"), nil
}

// TinyGoFixtures builds the main packages at rels (relative to the
// repository root, e.g. "examples/hello") with c and returns each module
// by the last element of its path. A module whose sources (its guest
// module, abi and guestsdk), compiler version and flags are unchanged is
// read from CacheDir instead of rebuilt.
func TinyGoFixtures(ctx context.Context, c guestbuild.Compiler, rels ...string) (map[string][]byte, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	cache = filepath.Join(cache, "tinygo")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	mods := make(map[string][]byte, len(rels))
	for _, rel := range rels {
		key, err := sourceKey(root, rel, c)
		if err != nil {
			return nil, fmt.Errorf("hashing %s: %w", rel, err)
		}
		name := filepath.Base(rel)
		path := filepath.Join(cache, name+"-"+key[:24]+".wasm")
		b, err := cachedBuild(ctx, c, filepath.Join(root, rel), path)
		if err != nil {
			return nil, err
		}
		mods[name] = b
	}
	return mods, nil
}

// RequireTinyGoFixtures is TinyGoFixtures with the compiler RequireTinyGo
// finds; a build error fails t.
func RequireTinyGoFixtures(t testing.TB, rels ...string) map[string][]byte {
	t.Helper()
	c := RequireTinyGo(t)
	mods, err := TinyGoFixtures(context.Background(), c, rels...)
	if err != nil {
		t.Fatalf("building TinyGo fixtures: %v", err)
	}
	return mods
}

// cachedBuild returns the module at path, else builds dir to it. Test
// processes that need the same build at once (packages run in parallel)
// build it once: the others wait on path's lock file and read it.
func cachedBuild(ctx context.Context, c guestbuild.Compiler, dir, path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		return b, nil
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if b, err := os.ReadFile(path); err == nil { // built while we waited
		return b, nil
	}
	return buildInto(ctx, c, dir, path)
}

// buildInto builds dir to path through a temporary file and a rename, so
// that tests building the same guest at once never read half a file.
func buildInto(ctx context.Context, c guestbuild.Compiler, dir, path string) ([]byte, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".build-*.wasm")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := c.Build(ctx, dir, tmp.Name()); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		return nil, err
	}
	return b, os.Rename(tmp.Name(), path)
}

// sourceKey hashes what a guest build depends on: the compiler's version,
// path and flags, and every file of the guest's module (the folder of the
// go.mod above rel) and of abi and guestsdk.
func sourceKey(root, rel string, c guestbuild.Compiler) (string, error) {
	mod, err := moduleDir(root, rel)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", c.Version, c.Path, strings.Join(c.Args("out.wasm", false), " "), rel)
	dirs := []string{mod, filepath.Join(root, "abi"), filepath.Join(root, "guestsdk")}
	sort.Strings(dirs)
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			r, _ := filepath.Rel(root, p)
			fmt.Fprintf(h, "%s\x00", filepath.ToSlash(r))
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(h, f)
			return err
		})
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// moduleDir returns the folder of the go.mod that holds rel.
func moduleDir(root, rel string) (string, error) {
	d := filepath.Join(root, rel)
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			if d == root {
				return "", fmt.Errorf("%s is in the host's module: TinyGo builds guests from a guest module (go 1.23 or lower)", rel)
			}
			return d, nil
		}
		if d == root || filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod above %s inside the repository", rel)
		}
		d = filepath.Dir(d)
	}
}
