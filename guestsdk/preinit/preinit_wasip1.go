//go:build wasip1 && !tinygo && go1.24

package preinit

import (
	"os"
	"strings"
	"unsafe"
)

// mainMain is the main package's main function; a c-shared build links
// it but never calls it.
//
//go:linkname mainMain main.main
func mainMain()

// serve is the sandbox's entry point, edgehost_serve in abi/README.md
// ("Pre-initialized modules"): the host renames it _start in the
// snapshot it makes. It gives the program the sandbox's environment and
// arguments, then runs main.main; os.Exit inside main ends the sandbox
// with that status, as in a command.
//
//go:wasmexport edgehost_serve
func serve() {
	if env, ok := readStrings(environSizesGet, environGet); ok {
		os.Clearenv()
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				os.Setenv(k, v)
			}
		}
	}
	if args, ok := readStrings(argsSizesGet, argsGet); ok {
		os.Args = args
	}
	mainMain()
}

// readStrings reads a WASI string list (the environment or the
// arguments): sizes gives the count and the bytes of the NUL-terminated
// strings, get writes the pointer array and the strings. ok is false
// when WASI reports an error.
func readStrings(sizes func(count, size unsafe.Pointer) uint32, get func(ptrs, buf unsafe.Pointer) uint32) ([]string, bool) {
	var count, size uint32
	if sizes(unsafe.Pointer(&count), unsafe.Pointer(&size)) != 0 {
		return nil, false
	}
	if count == 0 {
		return nil, true
	}
	ptrs := make([]uint32, count)
	buf := make([]byte, size+1)
	if get(unsafe.Pointer(&ptrs[0]), unsafe.Pointer(&buf[0])) != 0 {
		return nil, false
	}
	out := make([]string, 0, count)
	for rest := buf[:size]; len(rest) > 0 && len(out) < int(count); {
		i := strings.IndexByte(string(rest), 0)
		if i < 0 {
			i = len(rest)
		}
		out = append(out, string(rest[:i]))
		if i == len(rest) {
			break
		}
		rest = rest[i+1:]
	}
	return out, true
}

//go:wasmimport wasi_snapshot_preview1 environ_sizes_get
func environSizesGet(count, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 environ_get
func environGet(ptrs, buf unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 args_sizes_get
func argsSizesGet(count, size unsafe.Pointer) uint32

//go:wasmimport wasi_snapshot_preview1 args_get
func argsGet(ptrs, buf unsafe.Pointer) uint32
