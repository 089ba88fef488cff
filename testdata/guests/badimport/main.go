//go:build wasip1

// Command badimport imports a function from a module edgehost does not
// provide; loading it must fail with a message naming the import.
package main

//go:wasmimport env not_provided
func notProvided() uint32

func main() { notProvided() }
