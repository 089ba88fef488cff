package hostcall

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

// TestTypedBinding: a generated typed binding decodes the Wasm parameters
// into named fields and refuses a bad out-pointer or input range before
// the implementation runs.
func TestTypedBinding(t *testing.T) {
	env, _ := newTestEnv(t, EnvConfig{})
	s := env.NewSession(context.Background(), "args", nil)
	defer s.Close()
	ctx := WithSession(context.Background(), s)
	mem := newFakeMem(256)
	mem.Write(16, []byte("x-name"))
	sig := abi.Func{Module: abi.ModuleHTTPReq, Name: "header_value_get", Params: "iiiiii"}

	type seen struct {
		h      uint32
		name   string
		nwOut  uint32
		called bool
	}
	var typed seen
	gen := bindReqHeaderValueGet(func(c *call, a reqHeaderValueGetArgs) error {
		typed = seen{h: a.H, name: string(a.Name), nwOut: a.Value.NWritten, called: true}
		return nil
	})
	for _, tc := range []struct {
		name  string
		stack []uint64
		want  abi.Status
		call  bool
	}{
		{"good", []uint64{7, 16, 6, 64, 32, 128}, abi.OK, true},
		{"misaligned nwritten", []uint64{7, 16, 6, 64, 32, 129}, abi.Badalign, false},
		{"nwritten outside memory", []uint64{7, 16, 6, 64, 32, 256}, abi.Inval, false},
		{"name outside memory", []uint64{7, 250, 16, 64, 32, 128}, abi.Inval, false},
		{"name over 64 KiB", []uint64{7, 0, maxStringLen + 1, 64, 32, 128}, abi.Inval, false},
	} {
		typed = seen{}
		st := append([]uint64(nil), tc.stack...)
		bind(Hostcall{Func: sig, fn: gen.fn}, nil)(ctx, mem, st)
		if abi.Status(st[0]) != tc.want || typed.called != tc.call {
			t.Errorf("%s: typed binding answered %v (implementation called: %v), want %v (%v)", tc.name, abi.Status(st[0]), typed.called, tc.want, tc.call)
		}
		if tc.call && (typed.h != 7 || typed.name != "x-name" || typed.nwOut != 128) {
			t.Errorf("%s: typed args %+v", tc.name, typed)
		}
	}
}

// TestNoPositionalReads: outside the generated bindings (args_gen.go), no
// code of the package reads call.args (a Wasm parameter by position) or
// writes a table entry as an impl literal, so every hostcall gets its
// arguments decoded and checked by its binding. bind, which makes the
// call, is the one place that sets args.
func TestNoPositionalReads(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if name == "args_gen.go" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if n.Sel.Name == "args" {
					if _, ok := n.X.(*ast.Ident); ok {
						t.Errorf("%s: reads .args: hostcall parameters come decoded from a generated binding (bindX)", fset.Position(n.Pos()))
					}
				}
			case *ast.CompositeLit:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "impl" {
					t.Errorf("%s: an impl literal: bind the hostcall with its generated bindX", fset.Position(n.Pos()))
				}
			}
			return true
		})
	}
	if checked < 10 {
		t.Fatalf("checked %d files; the package's sources were not found", checked)
	}
}
