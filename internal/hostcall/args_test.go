package hostcall

import (
	"context"
	"testing"

	"github.com/edgehost/edgehost/abi"
)

// TestPositionalAndTypedBindings: an entry written positionally
// (impl{module, name, fn} reading c.u32, c.str) still binds and reads its
// parameters, beside the generated typed binding of the same shape, which
// decodes them into named fields and refuses a bad out-pointer before the
// implementation runs.
func TestPositionalAndTypedBindings(t *testing.T) {
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
	var pos, typed seen
	positional := impl{sig.Module, sig.Name, func(c *call) error {
		pos.called, pos.h, pos.nwOut = true, c.u32(0), c.u32(5)
		var err error
		pos.name, err = c.str(1)
		return err
	}}
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
		{"name outside memory", []uint64{7, 250, 16, 64, 32, 128}, abi.Inval, false},
	} {
		pos, typed = seen{}, seen{}
		st := append([]uint64(nil), tc.stack...)
		bind(Hostcall{Func: sig, fn: gen.fn}, nil)(ctx, mem, st)
		if abi.Status(st[0]) != tc.want || typed.called != tc.call {
			t.Errorf("%s: typed binding answered %v (implementation called: %v), want %v (%v)", tc.name, abi.Status(st[0]), typed.called, tc.want, tc.call)
		}
		if tc.call && (typed.h != 7 || typed.name != "x-name" || typed.nwOut != 128) {
			t.Errorf("%s: typed args %+v", tc.name, typed)
		}
	}
	st := []uint64{7, 16, 6, 64, 32, 128}
	bind(Hostcall{Func: sig, fn: positional.fn}, nil)(ctx, mem, st)
	if abi.Status(st[0]) != abi.OK || pos != (seen{h: 7, name: "x-name", nwOut: 128, called: true}) {
		t.Errorf("positional entry answered %v with %+v", abi.Status(st[0]), pos)
	}
}
