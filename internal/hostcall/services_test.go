package hostcall

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/acl"
	"github.com/edgehost/edgehost/internal/device"
	"github.com/edgehost/edgehost/internal/erl"
	"github.com/edgehost/edgehost/internal/geo"
	"github.com/edgehost/edgehost/internal/shield"
)

// kindACL is only made by aACL; newHandle does not know it.
const kindACL handleKind = 101

const testUA = "TestPhone/1.0"

// testServices are the services of the convention env and of the tests
// below: ACL "blocklist", loopback geolocation (the default) and one
// address, one user agent, a local and a remote shielding site.
func testServices(t testing.TB, shieldURL string) Services {
	a, err := acl.Parse([]byte(`{"entries": [
		{"op": "create", "prefix": "192.0.2.0/24", "action": "BLOCK"},
		{"op": "create", "prefix": "192.0.2.128/25", "action": "ALLOW"},
		{"op": "create", "prefix": "127.0.0.1/32", "action": "ALLOW"},
		{"op": "create", "prefix": "2001:db8::/32", "action": "block"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	g, err := geo.New(geo.Config{Addresses: map[netip.Addr]map[string]any{
		netip.MustParseAddr("198.51.100.7"): {"city": "Testville", "as_number": 64500},
	}})
	if err != nil {
		t.Fatal(err)
	}
	d, err := device.New(map[string]map[string]any{testUA: {"device": map[string]any{"name": "TestPhone", "is_mobile": true}}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(shieldURL)
	if err != nil {
		t.Fatal(err)
	}
	return Services{
		ACLs: map[string]*acl.ACL{"blocklist": a}, Geo: g, Devices: d,
		Shields: shield.Sites{"pdx": {Name: "pdx", Local: true}, "bfi": {Name: "bfi", Unencrypted: u, Encrypted: u}},
	}
}

// aACL opens ACL "blocklist".
func (h *harness) aACL() arg {
	o := h.out()
	p, n := h.str("blocklist")
	h.want(abi.OK, abi.ModuleACL, "open", p, n, o)
	return arg{v: uint64(h.u32(o)), kind: aHandle, hk: kindACL}
}

// serviceSpecs are the convention specs of the platform service hostcalls.
func serviceSpecs() []spec {
	var specs []spec
	add := func(module, name string, want abi.Status, args func(h *harness) []arg) {
		specs = append(specs, spec{module: module, name: name, want: want, args: args})
	}
	ok := abi.OK
	ip4 := string([]byte{192, 0, 2, 1})
	add(abi.ModuleACL, "open", ok, func(h *harness) []arg { return flat(h.aS("blocklist"), h.u32o()) })
	add(abi.ModuleACL, "lookup", ok, func(h *harness) []arg { return flat(h.aACL(), h.aS(ip4), h.u32o(), h.u32o()) })
	add(abi.ModuleGeo, "lookup", ok, func(h *harness) []arg {
		return flat(h.aS(string([]byte{127, 0, 0, 1})), h.aB(1024), h.u32o())
	})
	add(abi.ModuleDeviceDetection, "lookup", ok, func(h *harness) []arg { return flat(h.aS(testUA), h.aB(256), h.u32o()) })
	e := abi.ModuleERL
	add(e, "check_rate", ok, func(h *harness) []arg {
		return flat(h.aS("rc"), h.aS("client"), val(1), val(10), val(100), h.aS("pb"), val(60), h.u32o())
	})
	add(e, "ratecounter_increment", ok, func(h *harness) []arg { return flat(h.aS("rc"), h.aS("client"), val(1)) })
	add(e, "ratecounter_lookup_rate", ok, func(h *harness) []arg { return flat(h.aS("rc"), h.aS("client"), val(10), h.u32o()) })
	add(e, "ratecounter_lookup_count", ok, func(h *harness) []arg { return flat(h.aS("rc"), h.aS("client"), val(60), h.u32o()) })
	add(e, "penaltybox_add", ok, func(h *harness) []arg { return flat(h.aS("pb"), h.aS("client"), val(120)) })
	add(e, "penaltybox_has", ok, func(h *harness) []arg { return flat(h.aS("pb"), h.aS("client"), h.u32o()) })
	s := abi.ModuleShielding
	add(s, "shield_info", ok, func(h *harness) []arg { return flat(h.aS("bfi"), h.aB(256), h.u32o()) })
	add(s, "backend_for_shield", ok, func(h *harness) []arg {
		return flat(h.aS("bfi"), val(0), val(uint64(h.alloc(abi.ShieldCfgSize))), h.aB(256), h.u32o())
	})
	return specs
}

func servicesHarness(t *testing.T, svc Services) *harness {
	return newHarness(t, harnessOpts{envCfg: EnvConfig{Services: svc}})
}

// TestACLLookup: longest-prefix match for IPv4 and IPv6, the JSON answer
// in a body, no_content without a match, and the statuses of bad input.
func TestACLLookup(t *testing.T) {
	h := servicesHarness(t, testServices(t, "http://127.0.0.1:1"))
	a := h.aACL().v
	for _, tc := range []struct {
		ip   []byte
		want string // "" for no match
	}{
		{[]byte{192, 0, 2, 1}, `{"prefix":"192.0.2.0/24","action":"BLOCK"}`},
		{[]byte{192, 0, 2, 200}, `{"prefix":"192.0.2.128/25","action":"ALLOW"}`},
		{[]byte{127, 0, 0, 1}, `{"prefix":"127.0.0.1/32","action":"ALLOW"}`},
		{[]byte{10, 0, 0, 1}, ""},
		{netip.MustParseAddr("2001:db8::1").AsSlice(), `{"prefix":"2001:db8::/32","action":"BLOCK"}`},
		{netip.MustParseAddr("::ffff:192.0.2.1").AsSlice(), ""}, // IPv4-mapped matches IPv6 prefixes only
	} {
		p, n := h.str(string(tc.ip))
		bo, eo := h.out(), h.out()
		h.want(abi.OK, abi.ModuleACL, "lookup", a, p, n, bo, eo)
		if tc.want == "" {
			if got := h.u32(eo); got != abi.ACLErrorNoContent {
				t.Errorf("%v: acl_error %d, want no_content", tc.ip, got)
			}
			continue
		}
		if got := h.u32(eo); got != abi.ACLErrorOK {
			t.Fatalf("%v: acl_error %d, want ok", tc.ip, got)
		}
		if got := h.readBody(h.u32(bo), 7); got != tc.want {
			t.Errorf("%v: body %s, want %s", tc.ip, got, tc.want)
		}
	}
	p, n := h.str("nope")
	h.want(abi.None, abi.ModuleACL, "open", p, n, h.out())
	p, n = h.str("abcde")
	h.want(abi.Inval, abi.ModuleACL, "lookup", a, p, n, h.out(), h.out())
}

// TestGeoAndDeviceLookup: a configured address, the loopback default,
// none for an unknown address or user agent, buflen with the size needed.
func TestGeoAndDeviceLookup(t *testing.T) {
	h := servicesHarness(t, testServices(t, "http://127.0.0.1:1"))
	lookup := func(ip []byte, max uint32) (abi.Status, string, uint32) {
		p, n := h.str(string(ip))
		return h.getBuf(abi.ModuleGeo, "lookup", max, p, n)
	}
	if st, got, _ := lookup([]byte{198, 51, 100, 7}, 1024); st != abi.OK || got != `{"as_number":64500,"city":"Testville"}` {
		t.Errorf("configured address: %v %s", st, got)
	}
	st, got, _ := lookup([]byte{127, 0, 0, 1}, 1024)
	if st != abi.OK || !strings.Contains(got, `"city":"San Francisco"`) || !strings.Contains(got, `"as_number":54113`) {
		t.Errorf("loopback: %v %s", st, got)
	}
	if st, _, _ := lookup(netip.MustParseAddr("::1").AsSlice(), 1024); st != abi.OK {
		t.Errorf("::1: %v, want ok (loopback default)", st)
	}
	if st, _, _ := lookup([]byte{203, 0, 113, 9}, 1024); st != abi.None {
		t.Errorf("unknown address: %v, want none", st)
	}
	if st, _, need := lookup([]byte{127, 0, 0, 1}, 8); st != abi.Buflen || need != uint32(len(got)) {
		t.Errorf("small buffer: %v need %d, want buflen %d", st, need, len(got))
	}
	if st, _, _ := lookup([]byte{1, 2, 3}, 1024); st != abi.Inval {
		t.Errorf("3 octets: %v, want inval", st)
	}
	p, n := h.str(testUA)
	if st, got, _ := h.getBuf(abi.ModuleDeviceDetection, "lookup", 256, p, n); st != abi.OK || got != `{"device":{"is_mobile":true,"name":"TestPhone"}}` {
		t.Errorf("device: %v %s", st, got)
	}
	p, n = h.str("Unknown/1.0")
	if st, _, _ := h.getBuf(abi.ModuleDeviceDetection, "lookup", 256, p, n); st != abi.None {
		t.Errorf("unknown user agent: %v, want none", st)
	}
	p, n = h.str("\xff\xfe")
	if st, _, _ := h.getBuf(abi.ModuleDeviceDetection, "lookup", 256, p, n); st != abi.Inval {
		t.Errorf("user agent not UTF-8: %v, want inval", st)
	}
}

// TestERLHostcalls: check_rate over the limit blocks and penalty-boxes,
// the counters are shared by every session of the store, and arguments
// outside Fastly's documented ranges are inval.
func TestERLHostcalls(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	svc := testServices(t, "http://127.0.0.1:1")
	svc.RateLimits = erl.New(clock)
	env, _ := newTestEnv(t, EnvConfig{Services: svc})
	h1 := newHarness(t, harnessOpts{env: env})
	h2 := newHarness(t, harnessOpts{env: env})
	check := func(h *harness, entry string) (abi.Status, uint32) {
		rp, rn := h.str("rc")
		ep, en := h.str(entry)
		pp, pn := h.str("pb")
		o := h.out()
		st := h.call(abi.ModuleERL, "check_rate", rp, rn, ep, en, 1, 1, 10, pp, pn, 60, o)
		return st, h.u32(o)
	}
	for i := 0; i < 10; i++ {
		h := h1
		if i%2 == 1 {
			h = h2
		}
		if st, blocked := check(h, "client"); st != abi.OK || blocked != 0 {
			t.Fatalf("call %d: %v blocked %d, want ok 0", i, st, blocked)
		}
	}
	if st, blocked := check(h2, "client"); st != abi.OK || blocked != 1 {
		t.Fatalf("11th call in one second over limit 10: %v blocked %d, want ok 1", st, blocked)
	}
	if _, blocked := check(h1, "other"); blocked != 0 {
		t.Errorf("another entry is blocked")
	}
	has := func(h *harness, pb, entry string) (abi.Status, uint32) {
		pp, pn := h.str(pb)
		ep, en := h.str(entry)
		o := h.out()
		st := h.call(abi.ModuleERL, "penaltybox_has", pp, pn, ep, en, o)
		return st, h.u32(o)
	}
	if st, v := has(h1, "pb", "client"); st != abi.OK || v != 1 {
		t.Errorf("penaltybox_has after the block: %v %d", st, v)
	}
	mu.Lock()
	now = now.Add(59 * time.Second)
	mu.Unlock()
	if _, v := has(h1, "pb", "client"); v != 1 {
		t.Errorf("penalty box emptied before its 60 s TTL")
	}
	mu.Lock()
	now = now.Add(2 * time.Second)
	mu.Unlock()
	if _, v := has(h1, "pb", "client"); v != 0 {
		t.Errorf("still in the penalty box after its TTL")
	}
	if st, blocked := check(h1, "client"); st != abi.OK || blocked != 0 {
		t.Errorf("after the TTL, at a low rate: %v blocked %d", st, blocked)
	}

	rp, rn := h1.str("rc")
	ep, en := h1.str("client")
	long := strings.Repeat("x", erl.MaxNameLen+1)
	lp, ln := h1.str(long)
	pp, pn := h1.str("pb")
	o := h1.out()
	for _, tc := range []struct {
		name string
		args []uint64
	}{
		{"check_rate", []uint64{rp, rn, ep, en, 1, 2, 10, pp, pn, 60, o}},    // window 2
		{"check_rate", []uint64{rp, rn, ep, en, 1, 1, 9, pp, pn, 60, o}},     // limit 9
		{"check_rate", []uint64{rp, rn, ep, en, 1, 1, 10, pp, pn, 59, o}},    // ttl 59 s
		{"check_rate", []uint64{rp, rn, ep, en, 1001, 1, 10, pp, pn, 60, o}}, // delta 1001
		{"check_rate", []uint64{lp, ln, ep, en, 1, 1, 10, pp, pn, 60, o}},    // 65-byte name
		{"check_rate", []uint64{rp, rn, ep, 0, 1, 1, 10, pp, pn, 60, o}},     // empty entry
		{"ratecounter_lookup_rate", []uint64{rp, rn, ep, en, 30, o}},         // window 30
		{"ratecounter_lookup_count", []uint64{rp, rn, ep, en, 15, o}},        // duration 15
		{"ratecounter_lookup_count", []uint64{rp, rn, ep, en, 70, o}},        // duration 70
		{"penaltybox_add", []uint64{pp, pn, ep, en, 3601}},                   // ttl over an hour
		{"ratecounter_increment", []uint64{rp, rn, lp, ln, 1}},               // 65-byte entry
	} {
		if st := h1.call(abi.ModuleERL, tc.name, tc.args...); st != abi.Inval {
			t.Errorf("%s%v: %v, want inval", tc.name, tc.args, st)
		}
	}
	// Counts: 10-second buckets aligned to the clock.
	h1.want(abi.OK, abi.ModuleERL, "ratecounter_increment", rp, rn, ep, en, 5)
	h1.want(abi.OK, abi.ModuleERL, "ratecounter_lookup_count", rp, rn, ep, en, 10, o)
	if got := h1.u32(o); got != 6 { // the check_rate above (1) and 5
		t.Errorf("count over 10 s = %d, want 6", got)
	}
	h1.want(abi.OK, abi.ModuleERL, "ratecounter_lookup_count", rp, rn, ep, en, 60, o)
	if got := h1.u32(o); got != 6 {
		t.Errorf("count over 60 s = %d, want 6 (the earlier 11 are 61 s old)", got)
	}
}

// TestShieldingHostcalls: shield_info's layout for a local and a remote
// site, backend_for_shield by name (Go SDK) and by target URL (JS SDK),
// and a request through the shield backend reaching the shield's URL.
func TestShieldingHostcalls(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("shield saw " + r.URL.Path))
	}))
	defer origin.Close()
	h := servicesHarness(t, testServices(t, origin.URL+"/edge"))
	info := func(name string) (abi.Status, string) {
		p, n := h.str(name)
		st, s, _ := h.getBuf(abi.ModuleShielding, "shield_info", 256, p, n)
		return st, s
	}
	if st, got := info("pdx"); st != abi.OK || got != "\x01\x00\x00" {
		t.Errorf("local site: %v %q", st, got)
	}
	if st, got := info("bfi"); st != abi.OK || got != "\x00"+origin.URL+"/edge\x00"+origin.URL+"/edge\x00" {
		t.Errorf("remote site: %v %q", st, got)
	}
	if st, _ := info("nowhere"); st != abi.Inval {
		t.Errorf("unknown site: %v, want inval", st)
	}
	backend := func(target string, mask uint32) (abi.Status, string) {
		p, n := h.str(target)
		cfg := h.alloc(abi.ShieldCfgSize)
		h.putU32(cfg+abi.ShieldCfgFirstByteTimeoutMs, 2000)
		st, s, _ := h.getBuf(abi.ModuleShielding, "backend_for_shield", 256, p, n, uint64(mask), uint64(cfg))
		return st, s
	}
	st, name := backend("bfi", 0)
	if st != abi.OK || name != "shield:bfi:encrypted" {
		t.Fatalf("backend_for_shield(bfi): %v %q", st, name)
	}
	if st, n2 := backend(origin.URL+"/edge", abi.ShieldBackendFirstByteTimeout); st != abi.OK || n2 == name {
		t.Errorf("backend_for_shield(URL, first-byte timeout): %v %q", st, n2)
	}
	for _, tc := range []struct {
		target string
		mask   uint32
	}{{"pdx", 0}, {"nowhere", 0}, {"bfi", abi.ShieldBackendReserved}, {"bfi", 1 << 8}} {
		if st, _ := backend(tc.target, tc.mask); st != abi.Inval {
			t.Errorf("backend_for_shield(%q, %#x): %v, want inval", tc.target, tc.mask, st)
		}
	}
	// The backend works for send: the request reaches the shield's URL
	// with its path prefix.
	req, resp, rb := h.newHandle(kindReq), h.out(), h.out()
	up, un := h.str("http://example.com/x")
	h.want(abi.OK, abi.ModuleHTTPReq, "uri_set", uint64(req), up, un)
	bp, bn := h.str(name)
	h.want(abi.OK, abi.ModuleHTTPReq, "send", uint64(req), uint64(h.newHandle(kindBody)), bp, bn, resp, rb)
	if got := h.readBody(h.u32(rb), 64); got != "shield saw /edge/x" {
		t.Errorf("through the shield backend: %q", got)
	}
}
