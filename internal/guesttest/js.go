package guesttest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// JSGuestsDir holds the JavaScript guest sources and the package.json and
// package-lock.json that pin Fastly's JS SDK (@fastly/js-compute), relative
// to the repository root.
const JSGuestsDir = "testdata/jsguests"

// ErrNoNode is returned by BuildJS when a build is needed and node or npm
// is not on PATH.
var ErrNoNode = errors.New("guesttest: building a JS guest needs node and npm on PATH")

// jsBuildTimeout bounds npm ci and one js-compute-runtime build.
const jsBuildTimeout = 10 * time.Minute

// BuildJS returns the module built from JSGuestsDir/<name>.js by the pinned
// js-compute-runtime, with its build time (0 when it came from the cache).
//
// Builds are cached in JSCacheDir, keyed by a SHA-256 over every .js file
// of JSGuestsDir (a guest may import its siblings), package.json and
// package-lock.json, so a cached build needs neither node
// nor the network. Otherwise npm ci installs the lockfile first when
// node_modules is missing or holds another @fastly/js-compute than the
// lockfile pins. flags go to js-compute-runtime before the source (such
// as --enable-http-cache) and are part of the cache key. Errors:
// ErrNoNode, or npm's or the build's output.
func BuildJS(name string, flags ...string) ([]byte, time.Duration, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, 0, err
	}
	dir := filepath.Join(root, JSGuestsDir)
	src := filepath.Join(dir, name+".js")
	h := sha256.New()
	// Every .js file of the folder: a guest may import its siblings.
	sources, err := filepath.Glob(filepath.Join(dir, "*.js"))
	if err != nil {
		return nil, 0, err
	}
	if _, err := os.Stat(src); err != nil {
		return nil, 0, err
	}
	for _, f := range append(sources, filepath.Join(dir, "package.json"), filepath.Join(dir, "package-lock.json")) {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, 0, err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "flags %q\n", flags)
	cache, err := JSCacheDir()
	if err != nil {
		return nil, 0, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, 0, err
	}
	out := filepath.Join(cache, name+"-"+hex.EncodeToString(h.Sum(nil))[:24]+".wasm")
	if b, err := os.ReadFile(out); err == nil {
		return b, 0, nil
	}

	unlock, err := lockFile(filepath.Join(cache, ".lock"))
	if err != nil {
		return nil, 0, err
	}
	defer unlock()
	if b, err := os.ReadFile(out); err == nil { // built while we waited
		return b, 0, nil
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, 0, fmt.Errorf("%w (%s: %v)", ErrNoNode, tool, err)
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), jsBuildTimeout)
	defer cancel()
	if !npmInstalled(dir, "@fastly/js-compute", "js-compute-runtime") {
		if err := run(ctx, dir, "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"); err != nil {
			return nil, 0, err
		}
	}
	tmp := out + ".tmp"
	if err := run(ctx, dir, filepath.Join(dir, "node_modules", ".bin", "js-compute-runtime"), append(flags, src, tmp)...); err != nil {
		return nil, 0, err
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, 0, err
	}
	b, err := os.ReadFile(out)
	return b, time.Since(start), err
}

// JSCacheDir is where BuildJS keeps built JS guests:
// os.UserCacheDir()/edgehost-test/js.
func JSCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("guesttest: no cache directory for JS builds: %w", err)
	}
	return filepath.Join(base, "edgehost-test", "js"), nil
}

// CompileCacheDir is a compiled-code cache (engine.Config.CacheDir) that
// outlives test runs, for guests too big to compile in every run (a JS
// SDK guest takes seconds, minutes under -race):
// os.UserCacheDir()/edgehost-test/compiled. The engines key what they
// store by module content, engine version and CPU.
func CompileCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("guesttest: no cache directory for compiled code: %w", err)
	}
	return filepath.Join(base, "edgehost-test", "compiled"), nil
}

// npmInstalled reports whether dir's node_modules holds the version of
// package pkg (e.g. "@fastly/js-compute") that dir's package-lock.json
// pins, with its command bin in node_modules/.bin.
func npmInstalled(dir, pkg, bin string) bool {
	path := "node_modules/" + pkg
	var lock struct {
		Packages map[string]struct{ Version string } `json:"packages"`
	}
	var installed struct{ Version string }
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil || json.Unmarshal(b, &lock) != nil {
		return false
	}
	b, err = os.ReadFile(filepath.Join(dir, path, "package.json"))
	if err != nil || json.Unmarshal(b, &installed) != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", bin)); err != nil {
		return false
	}
	want := lock.Packages[path].Version
	return want != "" && installed.Version == want
}

func run(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %v: %w\n%s", filepath.Base(name), args, err, buf.String())
	}
	return nil
}
