// Command abigen writes every file derived from abi.Hostcalls, the one
// description of the hostcall ABI (see abi/README.md):
//
//   - internal/hostcall/args_gen.go: one typed argument struct per hostcall
//     edgehost implements and the binding that decodes and bounds-checks
//     it once, before the implementation runs;
//   - guestsdk/hostcalls_gen_wasip1.go: the guest's //go:wasmimport
//     bindings, one per described hostcall, called directly (TinyGo
//     refuses an import used as a value);
//   - guestsdk/hostcalls_gen_native.go: the same functions for native
//     builds, forwarding to the fake host's method of the same name when
//     it has one and answering unsupported otherwise;
//   - the generated hostcall reference of abi/README.md and the ABI
//     support table of README.md, between their markers.
//
// Run it with `go generate` in abi/ (doc.go), or directly:
//
//	go run ./internal/abigen -root ..
//
// With -out DIR it writes the files under DIR instead (the drift test
// compares that with the repository).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	root := flag.String("root", "..", "the repository root (the directory holding abi/ and README.md)")
	out := flag.String("out", "", "write the files under this directory instead of -root")
	flag.Parse()
	if err := run(*root, *out); err != nil {
		fmt.Fprintln(os.Stderr, "abigen:", err)
		os.Exit(1)
	}
}

func run(root, out string) error {
	if out == "" {
		out = root
	}
	files, err := generate(root)
	if err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(out, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return err
		}
	}
	return nil
}
