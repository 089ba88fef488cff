//go:build cgo

package wasmtimeengine

import (
	"fmt"
	"io"
	"os"
	"reflect"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/edgehost/edgehost/host/engine"
)

// wasiSetup is a run's WASI configuration and the goroutines that carry
// its standard streams. wasmtime-go's WASI opens stdio only by path, so
// each stream is a pipe that Wasmtime opens as /dev/fd/N: output is copied
// into the run's writer as the guest writes it, input from the run's
// reader.
type wasiSetup struct {
	cfg  *wasmtime.WasiConfig
	done []chan struct{}
}

// newWASI builds the WASI view of rc. Errors: a pipe cannot be made or
// opened (out of descriptors).
func newWASI(rc engine.RunConfig) (*wasiSetup, error) {
	s := &wasiSetup{cfg: wasmtime.NewWasiConfig()}
	s.cfg.SetArgv(rc.Args)
	if len(rc.Env) > 0 {
		keys := make([]string, len(rc.Env))
		vals := make([]string, len(rc.Env))
		for i, kv := range rc.Env {
			keys[i], vals[i] = kv[0], kv[1]
		}
		s.cfg.SetEnv(keys, vals)
	}
	err := s.stdin(rc.Stdin)
	if err == nil && rc.Stdout != nil {
		sets := []func(string) error{s.cfg.SetStdoutFile}
		if rc.Stderr != nil && sameWriter(rc.Stdout, rc.Stderr) {
			// One pipe, one copier: writes to a shared writer keep their
			// order and never race.
			sets = append(sets, s.cfg.SetStderrFile)
			rc.Stderr = nil
		}
		err = s.output(rc.Stdout, sets...)
	}
	if err == nil && rc.Stderr != nil {
		err = s.output(rc.Stderr, s.cfg.SetStderrFile)
	}
	if err != nil {
		s.wait()
		return nil, fmt.Errorf("wasi stdio: %w", err)
	}
	return s, nil
}

// output makes a pipe whose read end a goroutine copies into w, and has
// Wasmtime open its write end through each of sets.
func (s *wasiSetup) output(w io.Writer, sets ...func(path string) error) error {
	r, wf, err := os.Pipe()
	if err != nil {
		return err
	}
	path := fdPath(wf)
	for _, set := range sets {
		if err == nil {
			err = set(path)
		}
	}
	// Wasmtime holds its own descriptors now: the copy ends when they close.
	wf.Close()
	if err != nil {
		r.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(w, r)
		r.Close()
	}()
	s.done = append(s.done, done)
	return nil
}

// stdin gives the guest in: a file is opened directly, any other reader
// goes through a pipe fed by a goroutine. That goroutine is not waited
// for: it ends when in does or when the guest's end of the pipe closes.
func (s *wasiSetup) stdin(in io.Reader) error {
	if in == nil {
		return nil
	}
	if f, ok := in.(*os.File); ok {
		if s.cfg.SetStdinFile(fdPath(f)) == nil {
			return nil
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	err = s.cfg.SetStdinFile(fdPath(r))
	r.Close()
	if err != nil {
		w.Close()
		return err
	}
	go func() {
		_, _ = io.Copy(w, in)
		w.Close()
	}()
	return nil
}

// wait releases the configuration if no store took it, then waits until
// every output copy has ended. Call it after the store is closed.
func (s *wasiSetup) wait() {
	s.cfg.Close()
	for _, d := range s.done {
		<-d
	}
}

func fdPath(f *os.File) string { return fmt.Sprintf("/dev/fd/%d", f.Fd()) }

// sameWriter reports whether a and b are the same writer.
func sameWriter(a, b io.Writer) bool {
	return reflect.TypeOf(a) == reflect.TypeOf(b) && reflect.TypeOf(a).Comparable() && a == b
}
