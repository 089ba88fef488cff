//go:build !wasip1

package guestsdk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

// TestWasmBuilds builds the examples and the wasip1 test binary of this
// package with GOOS=wasip1 GOARCH=wasm, and checks every fastly_* import
// of the result against abi.Funcs: same name, parameter types in order,
// one i32 result. It also checks that the test binary imports every
// binding declared in hostcalls_gen_wasip1.go, and that the examples import
// nothing but fastly_* and WASI.
func TestWasmBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds Wasm modules with the go command")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipped: no go command on PATH to build Wasm modules")
	}
	out := t.TempDir()
	build := func(dir string, args ...string) {
		t.Helper()
		cmd := exec.Command(goBin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, b)
		}
	}
	build(filepath.Join("..", "examples"), "build", "-o", out+string(filepath.Separator), "./...")
	build(".", "test", "-c", "-o", filepath.Join(out, "guestsdk.test.wasm"), ".")

	want := map[string]string{} // "module.name" -> params
	for _, f := range abi.Funcs() {
		want[f.Module+"."+f.Name] = f.Params
	}
	declared := declaredImports(t)

	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		imports, err := wasmImports(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		fastly := 0
		for _, im := range imports {
			key := im.module + "." + im.name
			switch {
			case strings.HasPrefix(im.module, abi.ModulePrefix):
				fastly++
				params, ok := want[key]
				if !ok {
					t.Errorf("%s imports %s, which abi.Funcs does not list", name, key)
				} else if im.params != params || im.results != "i" {
					t.Errorf("%s imports %s(%s) -> (%s), abi says (%s) -> (i)", name, key, im.params, im.results, params)
				}
				if strings.HasSuffix(name, ".test.wasm") {
					seen[key] = true
				}
			case im.module == abi.ModuleWASI:
			default:
				t.Errorf("%s imports %s from an unknown module", name, key)
			}
		}
		if fastly == 0 {
			t.Errorf("%s imports no hostcall", name)
		}
	}
	for key := range declared {
		if !seen[key] {
			t.Errorf("binding %s is not imported by the wasip1 test binary", key)
		}
	}
	if len(entries) != 4 {
		t.Errorf("built %d modules, want 3 examples and the test binary", len(entries))
	}
}

// declaredImports lists the //go:wasmimport lines of hostcalls_gen_wasip1.go.
func declaredImports(t *testing.T) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`^//go:wasmimport (\S+) (\S+)$`)
	out := map[string]bool{}
	for _, name := range []string{"hostcalls_gen_wasip1.go"} {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				out[m[1]+"."+m[2]] = true
			}
		}
		f.Close()
	}
	if len(out) < 40 {
		t.Fatalf("found only %d //go:wasmimport lines", len(out))
	}
	return out
}

type wasmImport struct {
	module, name    string
	params, results string // 'i' i32, 'I' i64, 'f' f32, 'F' f64
}

// wasmImports parses the type and import sections of a Wasm binary and
// returns its function imports with their signatures.
func wasmImports(path string) ([]wasmImport, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a Wasm module")
	}
	r := &wasmReader{b: b, off: 8}
	type sig struct{ params, results string }
	var types []sig
	var imports []wasmImport
	for r.off < len(r.b) && r.err == nil {
		id := r.byte()
		size := int(r.u32())
		end := r.off + size
		switch id {
		case 1: // type
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				if r.byte() != 0x60 {
					return nil, errors.New("bad func type")
				}
				types = append(types, sig{r.valtypes(), r.valtypes()})
			}
		case 2: // import
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				mod, name := r.name(), r.name()
				switch kind := r.byte(); kind {
				case 0:
					ti := int(r.u32())
					if ti >= len(types) {
						return nil, fmt.Errorf("import %s.%s: type %d out of range", mod, name, ti)
					}
					imports = append(imports, wasmImport{mod, name, types[ti].params, types[ti].results})
				case 1:
					r.byte()
					r.limits()
				case 2:
					r.limits()
				case 3:
					r.byte()
					r.byte()
				default:
					return nil, fmt.Errorf("import kind %d", kind)
				}
			}
		}
		r.off = end
	}
	return imports, r.err
}

type wasmReader struct {
	b   []byte
	off int
	err error
}

func (r *wasmReader) byte() byte {
	if r.off >= len(r.b) {
		r.err = errors.New("truncated module")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *wasmReader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7F) << shift
		if c&0x80 == 0 {
			break
		}
	}
	return v
}

func (r *wasmReader) name() string {
	n := int(r.u32())
	if r.off+n > len(r.b) {
		r.err = errors.New("truncated name")
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

func (r *wasmReader) valtypes() string {
	var sb strings.Builder
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		switch r.byte() {
		case 0x7F:
			sb.WriteByte('i')
		case 0x7E:
			sb.WriteByte('I')
		case 0x7D:
			sb.WriteByte('f')
		case 0x7C:
			sb.WriteByte('F')
		default:
			sb.WriteByte('?')
		}
	}
	return sb.String()
}

func (r *wasmReader) limits() {
	if r.byte()&1 != 0 {
		r.u32()
	}
	r.u32()
}
