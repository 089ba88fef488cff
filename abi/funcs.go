package abi

// Func is the Wasm signature of one hostcall as a guest imports it: every
// parameter is an i32 ('i') or an i64 ('I'), strings and byte lists are two
// i32 (pointer, length), out-parameters are trailing i32 pointers, and the
// single result is the i32 fastly_status.
//
// Signatures follow the compute-at-edge witx definitions lowered to core
// Wasm (a `u64` parameter is i64, an `expected` result becomes out-pointers).
type Func struct {
	Module string
	Name   string
	Params string // one letter per parameter: 'i' i32, 'I' i64
}

// Funcs lists the signature of every hostcall edgehost implements: the
// Hostcalls described as Implemented, in Hostcalls order, each with its
// described signature (Hostcall.Func). It is derived, never kept by hand:
// marking a hostcall implemented in Hostcalls adds it here. It returns a
// new slice on each call.
func Funcs() []Func {
	var fs []Func
	for _, h := range Hostcalls() {
		if h.Implemented {
			fs = append(fs, h.Func())
		}
	}
	return fs
}
