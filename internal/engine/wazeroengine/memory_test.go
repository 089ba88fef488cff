package wazeroengine

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/edgehost/edgehost/internal/engine"
)

// isolationModule has a 2-page memory whose data segment puts "AAAA" at
// at (0 or 4; at 4 the memory image starts with zeros). Its _start
// reports (through the import t.report) the words at 0, 4 and 65544, then
// overwrites all three with 1234.
func isolationModule(at byte) []byte {
	sec := func(id byte, b ...byte) []byte { return append([]byte{id, byte(len(b))}, b...) }
	code := []byte{
		0x00,                                     // no locals
		0x41, 0x00, 0x28, 0x02, 0x00, 0x10, 0x00, // report(load(0))
		0x41, 0x00, 0x28, 0x02, 0x04, 0x10, 0x00, // report(load(4))
		0x41, 0x00, 0x28, 0x02, 0x88, 0x80, 0x04, 0x10, 0x00, // report(load(65544))
		0x41, 0x00, 0x41, 0xd2, 0x09, 0x36, 0x02, 0x00, // store(0, 1234)
		0x41, 0x00, 0x41, 0xd2, 0x09, 0x36, 0x02, 0x04, // store(4, 1234)
		0x41, 0x00, 0x41, 0xd2, 0x09, 0x36, 0x02, 0x88, 0x80, 0x04, // store(65544, 1234)
		0x0b,
	}
	var m []byte
	m = append(m, 0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00)
	m = append(m, sec(1, 0x02, 0x60, 0x01, 0x7f, 0x00, 0x60, 0x00, 0x00)...)
	m = append(m, sec(2, 0x01, 0x01, 't', 0x06, 'r', 'e', 'p', 'o', 'r', 't', 0x00, 0x00)...)
	m = append(m, sec(3, 0x01, 0x01)...)
	m = append(m, sec(5, 0x01, 0x00, 0x02)...)
	m = append(m, sec(7, 0x01, 0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01)...)
	m = append(m, sec(10, append([]byte{0x01, byte(len(code))}, code...)...)...)
	m = append(m, sec(11, 0x01, 0x00, 0x41, at, 0x0b, 0x04, 'A', 'A', 'A', 'A')...)
	return m
}

type reportKey struct{}

// reportLink links the test modules' one import, t.report(i32), to a
// function appending its argument to the *[]uint32 under reportKey in the
// run's context.
func reportLink(imp engine.Import) (engine.HostFunc, error) {
	if imp.Module != "t" || imp.Name != "report" {
		return nil, fmt.Errorf("unexpected import %s", imp)
	}
	return func(ctx context.Context, _ engine.Memory, stack []uint64) {
		r := ctx.Value(reportKey{}).(*[]uint32)
		*r = append(*r, uint32(stack[0]))
	}, nil
}

// TestSandboxMemoryIsolation runs the module many times, some at once,
// on recycled memories: every sandbox must start from the module's image,
// never from what an earlier sandbox wrote.
func TestSandboxMemoryIsolation(t *testing.T) {
	ctx := context.Background()
	e, err := New(engine.Config{MemoryLimitBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	link := reportLink
	for _, at := range []byte{0, 4} {
		m, err := e.Compile(ctx, isolationModule(at), link)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%#x", []uint32{0, 0x41414141, 0})
		if at == 0 {
			want = fmt.Sprintf("%#x", []uint32{0x41414141, 0, 0})
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					var got []uint32
					if err := m.Run(context.WithValue(ctx, reportKey{}, &got), engine.RunConfig{}); err != nil {
						t.Error(err)
						return
					}
					if fmt.Sprintf("%#x", got) != want {
						t.Errorf("image at %d: sandbox saw %#x, want the image %s", at, got, want)
						return
					}
				}
			}()
		}
		wg.Wait()
		m.Close(ctx)
	}
}
