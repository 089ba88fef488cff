//go:build cgo

package wasmtimeengine

/*
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

// Declarations from wasmtime.h and wasm.h (wasmtime-go links libwasmtime).
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasmtime_linker wasmtime_linker_t;
typedef struct wasmtime_module wasmtime_module_t;
typedef struct wasmtime_instance_pre wasmtime_instance_pre_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasmtime_instance {
	uint64_t store_id;
	size_t __private;
} wasmtime_instance_t;
typedef struct edgehost_byte_vec {
	size_t size;
	char *data;
} edgehost_byte_vec;

extern wasmtime_context_t *wasmtime_store_context(wasmtime_store_t *store);
extern wasmtime_error_t *wasmtime_linker_instantiate_pre(const wasmtime_linker_t *linker,
	const wasmtime_module_t *module, wasmtime_instance_pre_t **instance_pre);
extern void wasmtime_instance_pre_delete(wasmtime_instance_pre_t *instance_pre);
extern wasmtime_error_t *wasmtime_instance_pre_instantiate(const wasmtime_instance_pre_t *instance_pre,
	wasmtime_context_t *store, wasmtime_instance_t *instance, wasm_trap_t **trap_ptr);
extern void wasmtime_error_message(const wasmtime_error_t *error, edgehost_byte_vec *message);
extern bool wasmtime_error_exit_status(const wasmtime_error_t *, int *status);
extern void wasmtime_error_delete(wasmtime_error_t *error);
extern void wasm_trap_message(const wasm_trap_t *trap, edgehost_byte_vec *out);
extern void wasm_trap_delete(wasm_trap_t *trap);
extern void wasm_byte_vec_delete(edgehost_byte_vec *vec);
*/
import "C"

import (
	"errors"
	"reflect"
	"runtime"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/edgehost/edgehost/internal/engine"
)

// The pre-linked instance. Linker.Instantiate resolves every import of
// the module by name on each call; Wasmtime's InstancePre does that once,
// at Compile, and each sandbox's instantiation only allocates and
// initializes. wasmtime-go does not wrap it, so it is declared here and
// given the linker's, module's and store's C pointers; the instance it
// makes is handed back to wasmtime-go as a wasmtime.Instance, whose only
// field is the C instance value (checked by New, as for the Store).

// instancePre is a module pre-linked against its Linker.
type instancePre struct{ p *C.wasmtime_instance_pre_t }

// preLayoutOK reports whether wasmtime-go's Linker and Module still start
// with their C pointers and Instance is the C instance value alone.
func preLayoutOK() error {
	for _, t := range []reflect.Type{reflect.TypeOf(wasmtime.Linker{}), reflect.TypeOf(wasmtime.Module{})} {
		if t.NumField() == 0 || t.Field(0).Name != "_ptr" || t.Field(0).Offset != 0 || t.Field(0).Type.Kind() != reflect.Pointer {
			return errors.New("wasmtimeengine: wasmtime." + t.Name() + " layout changed; update instancepre.go")
		}
	}
	it := reflect.TypeOf(wasmtime.Instance{})
	if it.NumField() != 1 || it.Field(0).Name != "val" || it.Size() != C.sizeof_wasmtime_instance_t {
		return errors.New("wasmtimeengine: wasmtime.Instance layout changed; update instancepre.go")
	}
	return nil
}

// newInstancePre pre-links mod against l. Errors: an import l does not
// define or defines with another type.
func newInstancePre(l *wasmtime.Linker, mod *wasmtime.Module) (*instancePre, error) {
	var p *C.wasmtime_instance_pre_t
	err := C.wasmtime_linker_instantiate_pre(
		*(**C.wasmtime_linker_t)(unsafe.Pointer(l)),
		*(**C.wasmtime_module_t)(unsafe.Pointer(mod)), &p)
	runtime.KeepAlive(l)
	runtime.KeepAlive(mod)
	if err != nil {
		return nil, errors.New(errorMessage(err))
	}
	return &instancePre{p: p}, nil
}

func (ip *instancePre) close() {
	if ip.p != nil {
		C.wasmtime_instance_pre_delete(ip.p)
		ip.p = nil
	}
}

// instantiate makes an instance in store. Errors: a trap or an exit in
// the module's start function (an *engine.ExitError for a non-zero exit
// status, nil error with a nil instance never happens), a resource limit.
func (ip *instancePre) instantiate(store *wasmtime.Store) (*wasmtime.Instance, error) {
	var inst C.wasmtime_instance_t
	var trap *C.wasm_trap_t
	cerr := C.wasmtime_instance_pre_instantiate(ip.p, C.wasmtime_store_context(storePtr(store)), &inst, &trap)
	runtime.KeepAlive(store)
	if trap != nil {
		var msg C.edgehost_byte_vec
		C.wasm_trap_message(trap, &msg)
		s := C.GoStringN(msg.data, C.int(msg.size))
		C.wasm_byte_vec_delete(&msg)
		C.wasm_trap_delete(trap)
		if cerr != nil {
			C.wasmtime_error_delete(cerr)
		}
		return nil, errors.New(tidyMessage(s))
	}
	if cerr != nil {
		var status C.int
		if C.wasmtime_error_exit_status(cerr, &status) {
			C.wasmtime_error_delete(cerr)
			if status == 0 {
				return nil, errExitZeroAtStart
			}
			return nil, &engine.ExitError{Code: uint32(status)}
		}
		return nil, errors.New(tidyMessage(errorMessage(cerr)))
	}
	out := new(wasmtime.Instance)
	*(*C.wasmtime_instance_t)(unsafe.Pointer(out)) = inst
	return out, nil
}

// errExitZeroAtStart: the module's start function exited with status 0,
// so there is no instance to run _start on, and the run succeeded.
var errExitZeroAtStart = errors.New("guest exited 0 during instantiation")

// errorMessage returns err's message and deletes err.
func errorMessage(err *C.wasmtime_error_t) string {
	var msg C.edgehost_byte_vec
	C.wasmtime_error_message(err, &msg)
	s := C.GoStringN(msg.data, C.int(msg.size))
	C.wasm_byte_vec_delete(&msg)
	C.wasmtime_error_delete(err)
	return s
}
