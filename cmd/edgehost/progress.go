package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/edgehost/edgehost/internal/engine"
)

// largeModule is the size from which compiling a module or uploading one
// shows a progress line on a terminal: 1 MiB (a Go hello is about 3 MiB,
// a JS SDK guest about 11 MiB and seconds to compile).
const largeModule = 1 << 20

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// progressLine is one line on a terminal that a goroutine redraws every
// interval until finish.
type progressLine struct {
	w      io.Writer
	render func(elapsed time.Duration) string
	start  time.Time
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func startLine(w io.Writer, interval time.Duration, render func(elapsed time.Duration) string) *progressLine {
	p := &progressLine{w: w, render: render, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	last := render(0)
	fmt.Fprint(w, "\r\x1b[K"+last)
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				if s := render(time.Since(p.start)); s != last {
					last = s
					fmt.Fprint(w, "\r\x1b[K"+s)
				}
			}
		}
	}()
	return p
}

// finish stops the redraws and replaces the line with final.
func (p *progressLine) finish(final string) {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		fmt.Fprint(p.w, "\r\x1b[K"+final+"\n")
	})
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s" }

// compileProgress returns a server.Loader.Progress that shows a line on w
// while a large module compiles, when w is a terminal; nil otherwise. A
// module that starts on the interpreter (tiered compilation, README.md
// "Tiered compilation") is said to, and a second line says when its
// optimized code serves.
func compileProgress(w io.Writer, engineName string) func(id string, size int) func(engine.Module, error) {
	if !isTerminal(w) {
		return nil
	}
	return func(id string, size int) func(engine.Module, error) {
		if size < largeModule {
			return nil
		}
		what := "version " + id
		switch id {
		case "dev":
			what = "the module"
		case "staged":
			what = "an upload"
		}
		desc := fmt.Sprintf("%s (%s) with %s", what, byteSize(int64(size)), engineName)
		line := startLine(w, time.Second, func(el time.Duration) string {
			return fmt.Sprintf("edgehost: compiling %s… %ds", desc, int(el.Seconds()))
		})
		return func(mod engine.Module, err error) {
			if err != nil {
				line.finish("edgehost: compiling " + desc + " failed after " + seconds(time.Since(line.start)))
				return
			}
			t, ok := mod.(engine.Tiered)
			if !ok || t.TierStatus().Tier != engine.TierInterpreter {
				line.finish("edgehost: compiled " + desc + " in " + seconds(time.Since(line.start)))
				return
			}
			line.finish("edgehost: compiled " + desc + " for the interpreter in " + seconds(time.Since(line.start)) +
				"; the optimized code compiles in the background")
			go func() {
				<-t.Optimized()
				st := t.TierStatus()
				switch {
				case st.Err != nil:
					fmt.Fprintf(w, "\r\x1b[Kedgehost: the optimized compile of %s stopped: %v\n", what, st.Err)
				case st.Tier == engine.TierOptimized:
					fmt.Fprintf(w, "\r\x1b[Kedgehost: optimized code of %s serves new sandboxes (%s after the compile began)\n", what, seconds(st.SwitchedAfter))
				}
			}()
		}
	}
}

// uploadProgress is a deploy's request body that shows, on a terminal,
// how much of it has gone and then how long the host has been compiling.
type uploadProgress struct {
	r    *bytes.Reader
	size int64
	sent atomic.Int64
	line *progressLine
	up   atomic.Int64 // UnixNano when the last byte was read, 0 before
}

// newUploadProgress wraps body; it shows progress on w only when w is a
// terminal and body is large (largeModule), else it returns nil.
func newUploadProgress(w io.Writer, body []byte) *uploadProgress {
	if !isTerminal(w) || len(body) < largeModule {
		return nil
	}
	u := &uploadProgress{r: bytes.NewReader(body), size: int64(len(body))}
	total := byteSize(u.size)
	u.line = startLine(w, 200*time.Millisecond, func(time.Duration) string {
		if up := u.up.Load(); up != 0 {
			return fmt.Sprintf("edgehost: uploaded %s; the host is compiling it… %ds", total, int(time.Since(time.Unix(0, up)).Seconds()))
		}
		n := u.sent.Load()
		return fmt.Sprintf("edgehost: uploading %d%% (%s of %s)", n*100/u.size, byteSize(n), total)
	})
	return u
}

func (u *uploadProgress) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	if u.sent.Add(int64(n)) == u.size && u.up.Load() == 0 {
		u.up.Store(time.Now().UnixNano())
	}
	return n, err
}

// done ends the line once the host answered.
func (u *uploadProgress) done(err error) {
	total := byteSize(u.size)
	if up := u.up.Load(); up != 0 {
		upload := time.Unix(0, up).Sub(u.line.start)
		u.line.finish(fmt.Sprintf("edgehost: uploaded %s in %s; the host answered %s later", total, seconds(upload), seconds(time.Since(time.Unix(0, up)))))
		return
	}
	u.line.finish(fmt.Sprintf("edgehost: upload stopped at %s of %s: %v", byteSize(u.sent.Load()), total, err))
}
