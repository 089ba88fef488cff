package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/server"
)

// watchQuiet is how long the watched folder must stay unchanged before a
// rebuild starts: editors and compilers write a file in several steps.
const watchQuiet = 250 * time.Millisecond

// watcher rebuilds the served guest when a file under its folder changes
// (serve --watch, README.md "Command line") and swaps the new build in.
type watcher struct {
	dir    string // the folder watched
	module string // MODULE: a folder to build, or a .wasm file to read again
	// load builds or reads MODULE again and compiles it with the manifest
	// read again; its error is printed in full.
	load func(ctx context.Context) (*server.Version, error)
	srv  *server.Server
	log  *slog.Logger
	out  io.Writer // "rebuilt" lines
	errw io.Writer // build errors, in full
}

// run watches until ctx ends. Errors: the folder cannot be watched.
func (w *watcher) run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("--watch: %w", err)
	}
	defer fw.Close()
	if err := w.addTree(fw, w.dir); err != nil {
		return fmt.Errorf("--watch %s: %w", w.dir, err)
	}
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Create) {
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() && !skipDir(filepath.Base(ev.Name)) {
					if err := w.addTree(fw, ev.Name); err != nil {
						w.log.Warn("--watch: cannot watch a new folder", "dir", ev.Name, "err", err)
					}
				}
			}
			if ev.Op == fsnotify.Chmod || !w.relevant(ev.Name) {
				continue
			}
			w.log.Debug("--watch: changed", "file", ev.Name, "op", ev.Op.String())
			if timer == nil {
				timer = time.NewTimer(watchQuiet)
			} else {
				timer.Reset(watchQuiet)
			}
			fire = timer.C
		case err, ok := <-fw.Errors:
			if !ok {
				return nil
			}
			w.log.Warn("--watch", "err", err)
		case <-fire:
			fire = nil
			w.rebuild(ctx)
		}
	}
}

// rebuild loads MODULE again and activates it; on failure the error is
// printed in full and the active version keeps serving. Requests in
// flight finish on the version they started on (server.Retire).
func (w *watcher) rebuild(ctx context.Context) {
	start := time.Now()
	fmt.Fprintf(w.out, "edgehost: %s changed, rebuilding\n", w.dir)
	v, err := w.load(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		fmt.Fprintf(w.errw, "edgehost: rebuild of %s failed; still serving the previous build:\n%v\n", w.module, err)
		return
	}
	old := w.srv.Activate(v)
	fmt.Fprintf(w.out, "edgehost: rebuilt %s in %s, now serving it\n", w.module, time.Since(start).Round(time.Millisecond))
	if old != nil {
		go func() {
			if err := server.Retire(context.Background(), old); err != nil {
				w.log.Warn("closing the replaced build", "err", err)
			}
		}()
	}
}

// relevant reports whether a change to path calls for a rebuild: for a
// folder MODULE any file but editor temporaries and build outputs; for a
// .wasm MODULE that file or a fastly.toml.
func (w *watcher) relevant(path string) bool {
	base := filepath.Base(path)
	if base == "fastly.toml" {
		return true
	}
	if strings.HasSuffix(w.module, ".wasm") {
		a, _ := filepath.Abs(path)
		b, _ := filepath.Abs(w.module)
		return a == b
	}
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") || strings.HasSuffix(base, ".swp") ||
		strings.HasSuffix(base, ".wasm") || strings.HasSuffix(base, ".tar.gz") {
		return false
	}
	rel, err := filepath.Rel(w.dir, path)
	if err != nil {
		return false
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	for _, part := range parts[:len(parts)-1] {
		if skipDir(part) || part == "bin" || part == "pkg" {
			return false
		}
	}
	return true
}

// skipDir names folders never watched: hidden ones and node_modules.
func skipDir(name string) bool {
	return name == "node_modules" || strings.HasPrefix(name, ".") && name != "." && name != ".."
}

// addTree watches root and every folder below it but skipped ones.
func (w *watcher) addTree(fw *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == root {
				return err
			}
			return nil
		}
		if !d.IsDir() {
			return nil
		}
		if path != root && skipDir(d.Name()) {
			return filepath.SkipDir
		}
		if err := fw.Add(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
}

// watchLoad returns the load function of a watcher: MODULE built or read
// as at start, with the manifest read again (-C, else the module
// folder's, else ./fastly.toml) so backend and store changes apply too.
func watchLoad(c *common, loader *server.Loader, module string, log *slog.Logger) func(context.Context) (*server.Version, error) {
	return func(ctx context.Context) (*server.Version, error) {
		wasm, dir, err := loadModule(ctx, module, c.toolchain, log)
		if err != nil {
			return nil, err
		}
		var m *config.Manifest
		if m, err = c.manifest(dir); err != nil {
			return nil, err
		}
		return loader.Load(ctx, "dev", wasm, m)
	}
}
