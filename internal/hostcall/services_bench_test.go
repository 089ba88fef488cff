//go:build unix

package hostcall

import (
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/acl"
	"github.com/edgehost/edgehost/internal/geo"
)

// The cost of one platform service hostcall on the host side (argument
// decoding, the lookup, writing the answer), without an engine crossing:
//
//	go test -run '^$' -bench 'Service' ./internal/hostcall/
//
// cpu-ns/op is the process's CPU time per call (getrusage), steadier than
// wall-clock time on a shared machine.

func reportCPU(b *testing.B) func() {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start := cpu()
	return func() { b.ReportMetric(float64(cpu()-start)/float64(b.N), "cpu-ns/op") }
}

// benchCall calls module.name with args b.N times through the bound
// hostcall and fails unless it answers want.
func benchCall(b *testing.B, h *harness, want abi.Status, module, name string, args ...uint64) {
	b.Helper()
	if st := h.call(module, name, args...); st != want {
		b.Fatalf("%s.%s = %v, want %v", module, name, st, want)
	}
	fn := h.fns[[2]string{module, name}]
	stack := make([]uint64, len(args))
	b.ReportAllocs()
	b.ResetTimer()
	stop := reportCPU(b)
	for b.Loop() {
		copy(stack, args)
		fn(h.ctx, h.mem, stack)
	}
	stop()
	if abi.Status(stack[0]) != want {
		b.Fatalf("%s.%s = %v in the loop", module, name, abi.Status(stack[0]))
	}
}

// BenchmarkServiceCheckRate: check_rate for one of 10,000 entries, under
// its limit.
func BenchmarkServiceCheckRate(b *testing.B) {
	h := newHarness(b, harnessOpts{})
	rp, rn := h.str("requests")
	pp, pn := h.str("offenders")
	for i := range 10000 {
		if err := h.env.svc.RateLimits.Increment("requests", "192.0.2."+strconv.Itoa(i), 1); err != nil {
			b.Fatal(err)
		}
	}
	ep, en := h.str("192.0.2.77")
	benchCall(b, h, abi.OK, abi.ModuleERL, "check_rate", rp, rn, ep, en, 1, 10, 10000, pp, pn, 60, h.out())
}

// BenchmarkServiceACLLookup: fastly_acl.lookup in an ACL of 10,000
// prefixes, a match (the answer is a new body) and a miss.
func BenchmarkServiceACLLookup(b *testing.B) {
	var entries []acl.Entry
	for i := range 10000 {
		entries = append(entries, acl.Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), Action: acl.ActionBlock})
	}
	a, err := acl.New(entries)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ip   []byte
	}{{"match", []byte{10, 0, 9, 1}}, {"miss", []byte{192, 0, 2, 1}}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHarness(b, harnessOpts{envCfg: EnvConfig{Services: Services{ACLs: map[string]*acl.ACL{"big": a}}}})
			np, nl := h.str("big")
			o := h.out()
			h.want(abi.OK, abi.ModuleACL, "open", np, nl, o)
			ip, il := h.str(string(tc.ip))
			// Bodies made by matches stay in the session: keep it small.
			if tc.name == "match" && b.N > 1<<16 {
				b.N = 1 << 16
			}
			benchCall(b, h, abi.OK, abi.ModuleACL, "lookup", uint64(h.u32(o)), ip, il, h.out(), h.out())
		})
	}
}

// BenchmarkServiceGeoLookup: fastly_geo.lookup answered from the address
// table, from a .mmdb database (decoded and written as JSON on each call)
// and from the loopback default.
func BenchmarkServiceGeoLookup(b *testing.B) {
	mmdb := testMMDB(b)
	g, err := geo.New(geo.Config{
		Addresses: map[netip.Addr]map[string]any{netip.MustParseAddr("198.51.100.7"): {"city": "Testville", "as_number": 64500}},
		MMDB:      mmdb,
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ip   []byte
	}{{"table", []byte{198, 51, 100, 7}}, {"mmdb", []byte{81, 2, 69, 142}}, {"loopback", []byte{127, 0, 0, 1}}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newHarness(b, harnessOpts{envCfg: EnvConfig{Services: Services{Geo: g}}})
			ip, il := h.str(string(tc.ip))
			benchCall(b, h, abi.OK, abi.ModuleGeo, "lookup", ip, il, uint64(h.alloc(1024)), 1024, h.out())
		})
	}
}
