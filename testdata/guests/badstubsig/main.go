//go:build wasip1

// Command badstubsig imports fastly_object_store.open, which edgehost does not
// implement, with the wrong signature; loading it must fail with a message
// naming the import and its described signature, as for an implemented one.
package main

//go:wasmimport fastly_object_store open
func objectStoreOpen(name, nameLen uint32) uint32

func main() { objectStoreOpen(1, 2) }
