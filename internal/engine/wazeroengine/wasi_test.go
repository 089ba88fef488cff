package wazeroengine

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/edgehost/edgehost/internal/engine"
)

func uleb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sleb(v int32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(body)))...), body...)
}

func name(s string) []byte { return append(uleb(uint32(len(s))), s...) }

// wasiCall is one call _start of varsModule makes: a WASI function and
// its two pointer arguments.
type wasiCall struct {
	fn   string
	a, b int32
}

// varsCalls are the calls of varsModule, good pointers and bad (past the
// 1-page memory), each reported with its errno and the memory after it.
var varsCalls = []wasiCall{
	{"environ_sizes_get", 0, 4},
	{"environ_get", 16, 128},
	{"args_sizes_get", 8, 12},
	{"args_get", 64, 96},
	{"environ_sizes_get", 0, 65536},
	{"environ_sizes_get", 65534, 4},
	{"environ_get", 65535, 128},
	{"environ_get", 256, 65530},
	{"args_get", 65535, 96},
	{"args_sizes_get", 65536, 12},
}

// varsModule imports t.report(i32) and WASI's argument and environment
// functions; its _start makes each call of varsCalls and reports its
// errno.
func varsModule() []byte {
	fns := []string{"environ_sizes_get", "environ_get", "args_sizes_get", "args_get"}
	idx := map[string]uint32{}
	m := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	// Types: 0 (i32)->(), 1 (i32 i32)->i32, 2 ()->().
	m = append(m, section(1, []byte{0x03, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00})...)
	imports := append(uleb(uint32(1+len(fns))), append(append(name("t"), name("report")...), 0x00, 0x00)...)
	for i, f := range fns {
		idx[f] = uint32(1 + i)
		imports = append(imports, append(append(name("wasi_snapshot_preview1"), name(f)...), 0x00, 0x01)...)
	}
	m = append(m, section(2, imports)...)
	m = append(m, section(3, []byte{0x01, 0x02})...)
	m = append(m, section(5, []byte{0x01, 0x00, 0x01})...)
	start := uint32(1 + len(fns))
	exports := append([]byte{0x02}, append(name("_start"), append([]byte{0x00}, uleb(start)...)...)...)
	exports = append(exports, append(name("memory"), 0x02, 0x00)...)
	m = append(m, section(7, exports)...)
	code := []byte{0x00} // no locals
	for _, c := range varsCalls {
		code = append(code, 0x41)
		code = append(code, sleb(c.a)...)
		code = append(code, 0x41)
		code = append(code, sleb(c.b)...)
		code = append(code, 0x10)
		code = append(code, uleb(idx[c.fn])...)
		code = append(code, 0x10, 0x00) // report(errno)
	}
	code = append(code, 0x0b)
	m = append(m, section(10, append([]byte{0x01}, append(uleb(uint32(len(code))), code...)...))...)
	return m
}

// report is what varsModule's _start reported: per call, its errno and
// the first 512 bytes of memory after it.
type report struct {
	errnos []uint32
	mems   [][]byte
}

func (r *report) add(errno uint32, mem api.Memory) {
	r.errnos = append(r.errnos, errno)
	b, _ := mem.Read(0, 512)
	r.mems = append(r.mems, bytes.Clone(b))
}

type varsReportKey struct{}

// stockVars runs varsModule on wazero with its own WASI module and a
// ModuleConfig carrying args and env, as edgehost did before wasi.go.
func stockVars(t *testing.T, args []string, env [][2]string) *report {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	r := &report{}
	_, err := rt.NewHostModuleBuilder("t").NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, st []uint64) {
			r.add(uint32(st[0]), m.Memory())
		}), []api.ValueType{api.ValueTypeI32}, nil).Export("report").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := wazero.NewModuleConfig().WithName("").WithArgs(args...)
	for _, kv := range env {
		cfg = cfg.WithEnv(kv[0], kv[1])
	}
	if _, err := rt.InstantiateWithConfig(ctx, varsModule(), cfg); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestWASIVars checks edgehost's args_* and environ_* (wasi.go) against
// wazero's own, pointers in and out of range, and that sandboxes running
// at once each see their own environment.
func TestWASIVars(t *testing.T) {
	ctx := context.Background()
	e, err := New(engine.Config{MemoryLimitBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := e.Compile(ctx, varsModule(), func(imp engine.Import) (engine.HostFunc, error) {
		if imp.Module != "t" || imp.Name != "report" {
			return nil, fmt.Errorf("unexpected import %s", imp)
		}
		return func(ctx context.Context, mem engine.Memory, st []uint64) {
			ctx.Value(varsReportKey{}).(*report).add(uint32(st[0]), mem.(api.Memory))
		}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	run := func(args []string, env [][2]string) (*report, error) {
		r := &report{}
		err := m.Run(context.WithValue(ctx, varsReportKey{}, r), engine.RunConfig{Args: args, Env: env})
		return r, err
	}
	for _, tc := range []struct {
		name string
		args []string
		env  [][2]string
	}{
		{"none", nil, nil},
		{"some", []string{"edgehost-guest", "", "x y"}, [][2]string{{"A", "1"}, {"EMPTY", ""}, {"B", "x=y"}}},
		{"long", []string{strings.Repeat("a", 100)}, [][2]string{{"K", strings.Repeat("v", 200)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := stockVars(t, tc.args, tc.env)
			got, err := run(tc.args, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got.errnos) != fmt.Sprint(want.errnos) {
				t.Fatalf("errnos %v, wazero's WASI gives %v (calls %v)", got.errnos, want.errnos, varsCalls)
			}
			for i := range want.mems {
				if !bytes.Equal(got.mems[i], want.mems[i]) {
					t.Fatalf("memory after %v:\n%q\nwazero's WASI leaves:\n%q", varsCalls[i], got.mems[i], want.mems[i])
				}
			}
		})
	}
	t.Run("bad", func(t *testing.T) {
		for _, env := range [][2]string{{"", "v"}, {"A=B", "v"}, {"A\x00", "v"}, {"A", "v\x00"}} {
			if _, err := run(nil, [][2]string{env}); err == nil || !strings.Contains(err.Error(), "environ invalid") {
				t.Errorf("env %q: err %v, want environ invalid", env, err)
			}
		}
		if _, err := run([]string{"a\x00"}, nil); err == nil || !strings.Contains(err.Error(), "args invalid") {
			t.Errorf("NUL in args: err %v, want args invalid", err)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					v := fmt.Sprintf("sandbox-%d-%d", g, i)
					r, err := run(nil, [][2]string{{"ID", v}})
					if err != nil {
						t.Error(err)
						return
					}
					if got := string(r.mems[1][128 : 128+len("ID=")+len(v)+1]); got != "ID="+v+"\x00" {
						t.Errorf("sandbox %s saw %q", v, got)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// stdioModule's _start writes its environment ("K=V\x00" of its one
// variable) to stdout once and to stderr twice (fd_write).
func stdioModule() []byte {
	m := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	// Types: 0 (i32 i32)->i32, 1 (i32 i32 i32 i32)->i32, 2 ()->().
	m = append(m, section(1, []byte{0x03, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, 0x60, 0x00, 0x00})...)
	imports := []byte{0x03}
	imports = append(imports, append(append(name("wasi_snapshot_preview1"), name("environ_sizes_get")...), 0x00, 0x00)...)
	imports = append(imports, append(append(name("wasi_snapshot_preview1"), name("environ_get")...), 0x00, 0x00)...)
	imports = append(imports, append(append(name("wasi_snapshot_preview1"), name("fd_write")...), 0x00, 0x01)...)
	m = append(m, section(2, imports)...)
	m = append(m, section(3, []byte{0x01, 0x02})...)
	m = append(m, section(5, []byte{0x01, 0x00, 0x01})...)
	exports := append([]byte{0x02}, append(name("_start"), 0x00, 0x03)...)
	exports = append(exports, append(name("memory"), 0x02, 0x00)...)
	m = append(m, section(7, exports)...)
	c := func(v int32) []byte { return append([]byte{0x41}, sleb(v)...) }
	code := []byte{0x00}
	code = append(code, c(0)...)
	code = append(code, c(4)...)
	code = append(code, 0x10, 0x00, 0x1a) // environ_sizes_get(0, 4); drop
	code = append(code, c(8)...)
	code = append(code, c(128)...)
	code = append(code, 0x10, 0x01, 0x1a) // environ_get(8, 128); drop
	code = append(code, c(16)...)
	code = append(code, c(128)...)
	code = append(code, 0x36, 0x02, 0x00) // iovec.buf = 128
	code = append(code, c(20)...)
	code = append(code, c(4)...)
	code = append(code, 0x28, 0x02, 0x00, 0x36, 0x02, 0x00) // iovec.len = environ size
	for _, fd := range []int32{1, 2, 2} {
		code = append(code, c(fd)...)
		code = append(code, c(16)...)
		code = append(code, c(1)...)
		code = append(code, c(24)...)
		code = append(code, 0x10, 0x02, 0x1a) // fd_write(fd, 16, 1, 24); drop
	}
	code = append(code, 0x0b)
	m = append(m, section(10, append([]byte{0x01}, append(uleb(uint32(len(code))), code...)...))...)
	return m
}

// TestStdioPerRun: sandboxes running at once, each with its own stdout
// and stderr writers, get their own output and nothing of another's,
// though they share the module's WASI configurations (runIO).
func TestStdioPerRun(t *testing.T) {
	ctx := context.Background()
	e, err := New(engine.Config{MemoryLimitBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	m, err := e.Compile(ctx, stdioModule(), func(imp engine.Import) (engine.HostFunc, error) {
		return nil, fmt.Errorf("unexpected import %s", imp)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				v := fmt.Sprintf("sandbox-%d-%d", g, i)
				var out, errOut bytes.Buffer
				if err := m.Run(ctx, engine.RunConfig{Env: [][2]string{{"ID", v}}, Stdout: &out, Stderr: &errOut}); err != nil {
					t.Error(err)
					return
				}
				if want := "ID=" + v + "\x00"; out.String() != want || errOut.String() != want+want {
					t.Errorf("sandbox %s wrote stdout %q, stderr %q; want %q once and twice", v, out.String(), errOut.String(), want)
					return
				}
			}
		}()
	}
	wg.Wait()
}
