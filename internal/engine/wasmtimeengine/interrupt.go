//go:build cgo

package wasmtimeengine

/*
#include <stdint.h>

// Declarations from wasmtime.h (wasmtime-go links libwasmtime), with the
// opaque data pointer spelled uintptr_t: same ABI, no pointer juggling.
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_error wasmtime_error_t;
extern void wasmtime_store_epoch_deadline_callback(wasmtime_store_t *store,
	wasmtime_error_t *(*func)(wasmtime_context_t *, uintptr_t, uint64_t *, uint8_t *),
	uintptr_t data, void (*finalizer)(uintptr_t));
extern wasmtime_error_t *wasmtime_error_new(const char *message);
extern wasmtime_error_t *edgehostEpochDeadline(wasmtime_context_t *, uintptr_t, uint64_t *, uint8_t *);
*/
import "C"

import (
	"errors"
	"reflect"
	"runtime/cgo"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// The context-driven interrupt. wasmtime-go has no way to stop one Store
// from another goroutine, and the engine's epoch is shared by every store.
// Wasmtime's C API has the tool, an epoch deadline callback per store:
// each store's deadline is one tick away, and at every tick the callback
// checks the run's context and either extends the deadline by a tick or
// fails, which stops the guest. wasmtime-go does not wrap that function, so
// it is declared here and given the store's C pointer.

var interruptMsg = C.CString("edgehost: sandbox context ended") // freed never: one per process

// storeLayoutOK reports whether wasmtime.Store still starts with its C
// store pointer, as storePtr assumes (checked by New: a wasmtime-go
// upgrade that changes it fails loudly instead of corrupting memory).
func storeLayoutOK() error {
	t := reflect.TypeOf(wasmtime.Store{})
	if t.NumField() == 0 || t.Field(0).Name != "_ptr" || t.Field(0).Offset != 0 || t.Field(0).Type.Kind() != reflect.Pointer {
		return errors.New("wasmtimeengine: wasmtime.Store layout changed; update storePtr")
	}
	return nil
}

func storePtr(s *wasmtime.Store) *C.wasmtime_store_t {
	return *(**C.wasmtime_store_t)(unsafe.Pointer(s))
}

// watch makes store's guest stop within a tick of r.ctx ending. The
// returned function releases the handle; call it after store.Close.
func watch(store *wasmtime.Store, r *run) func() {
	h := cgo.NewHandle(r)
	C.wasmtime_store_epoch_deadline_callback(storePtr(store),
		(*[0]byte)(C.edgehostEpochDeadline), C.uintptr_t(h), nil)
	store.SetEpochDeadline(1)
	return h.Delete
}

//export edgehostEpochDeadline
func edgehostEpochDeadline(_ *C.wasmtime_context_t, data C.uintptr_t, delta *C.uint64_t, kind *C.uint8_t) *C.wasmtime_error_t {
	r := cgo.Handle(data).Value().(*run)
	if r.ctx.Err() != nil {
		return C.wasmtime_error_new(interruptMsg)
	}
	*delta = 1
	*kind = 0 // WASMTIME_UPDATE_DEADLINE_CONTINUE
	return nil
}
