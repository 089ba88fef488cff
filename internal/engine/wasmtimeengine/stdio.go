//go:build cgo

package wasmtimeengine

/*
#include <stddef.h>
#include <stdint.h>

// Declarations from wasi.h (wasmtime-go links libwasmtime), with the
// opaque data pointer spelled uintptr_t as in interrupt.go.
typedef struct wasi_config_t wasi_config_t;
extern void wasi_config_set_stdout_custom(wasi_config_t *config,
	ptrdiff_t (*callback)(uintptr_t, const unsigned char *, size_t),
	uintptr_t data, void (*finalizer)(uintptr_t));
extern void wasi_config_set_stderr_custom(wasi_config_t *config,
	ptrdiff_t (*callback)(uintptr_t, const unsigned char *, size_t),
	uintptr_t data, void (*finalizer)(uintptr_t));
extern ptrdiff_t edgehostStdioWrite(uintptr_t, unsigned char *, size_t);
extern void edgehostStdioFree(uintptr_t);
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"runtime/cgo"
	"syscall"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/edgehost/edgehost/internal/engine"
)

// wasiSetup is a run's WASI configuration. Guest stdout and stderr go
// straight to the run's writers: Wasmtime's C API calls back for each
// write (wasi_config_set_stdout_custom) before the guest's fd_write
// returns, so no pipe or copying goroutine is needed. Each writer is
// reached through a cgo.Handle that Wasmtime's finalizer deletes when it
// drops the stream (with the store, or with a config no store took).
// wasmtime-go does not wrap those functions, so they are declared here
// and given the config's C pointer. Stdin still comes through a path: a
// file directly, any other reader through a pipe.
type wasiSetup struct {
	cfg *wasmtime.WasiConfig
}

// newWASI builds the WASI view of rc. Errors: a stdin pipe cannot be made
// or opened (out of descriptors).
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
	if err := s.stdin(rc.Stdin); err != nil {
		s.wait()
		return nil, fmt.Errorf("wasi stdio: %w", err)
	}
	if rc.Stdout != nil {
		C.wasi_config_set_stdout_custom(wasiPtr(s.cfg), (*[0]byte)(C.edgehostStdioWrite),
			C.uintptr_t(cgo.NewHandle(rc.Stdout)), (*[0]byte)(C.edgehostStdioFree))
	}
	if rc.Stderr != nil {
		C.wasi_config_set_stderr_custom(wasiPtr(s.cfg), (*[0]byte)(C.edgehostStdioWrite),
			C.uintptr_t(cgo.NewHandle(rc.Stderr)), (*[0]byte)(C.edgehostStdioFree))
	}
	return s, nil
}

//export edgehostStdioWrite
func edgehostStdioWrite(data C.uintptr_t, buf *C.uchar, n C.size_t) C.ptrdiff_t {
	w := cgo.Handle(data).Value().(io.Writer)
	if n == 0 {
		return 0
	}
	written, err := w.Write(unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n)))
	if written == 0 && err != nil {
		return -C.ptrdiff_t(syscall.EIO)
	}
	return C.ptrdiff_t(written)
}

//export edgehostStdioFree
func edgehostStdioFree(data C.uintptr_t) { cgo.Handle(data).Delete() }

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

// wait releases the configuration if no store took it. Call it after the
// store is closed.
func (s *wasiSetup) wait() { s.cfg.Close() }

func fdPath(f *os.File) string { return fmt.Sprintf("/dev/fd/%d", f.Fd()) }

// wasiConfigLayoutOK reports whether wasmtime.WasiConfig still holds only
// its C pointer, as wasiPtr assumes (checked by New, like the Store's).
func wasiConfigLayoutOK() error {
	t := reflect.TypeOf(wasmtime.WasiConfig{})
	if t.NumField() != 1 || t.Field(0).Name != "_ptr" || t.Field(0).Type.Kind() != reflect.Pointer {
		return errors.New("wasmtimeengine: wasmtime.WasiConfig layout changed; update wasiPtr")
	}
	return nil
}

func wasiPtr(c *wasmtime.WasiConfig) *C.wasi_config_t {
	return *(**C.wasi_config_t)(unsafe.Pointer(c))
}
