package acl

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
)

func TestLookupLongestPrefix(t *testing.T) {
	a, err := Parse([]byte(`{"entries": [
		{"op": "create", "prefix": "10.0.0.0/8", "action": "BLOCK"},
		{"op": "create", "prefix": "10.1.0.0/16", "action": "ALLOW"},
		{"op": "create", "prefix": "10.1.2.3", "action": "BLOCK"},
		{"op": "create", "prefix": "10.1.2.99/16", "action": "block"},
		{"op": "create", "prefix": "0.0.0.0/0", "action": "ALLOW"},
		{"op": "create", "prefix": "2001:db8::/32", "action": "BLOCK"},
		{"op": "update", "prefix": "2001:db8:1::/48", "action": "ALLOW"},
		{"op": "create", "prefix": "2001:db8:2::/48", "action": "ALLOW"},
		{"op": "delete", "prefix": "2001:db8:2::/48"}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != 6 {
		t.Errorf("Len = %d, want 6 (10.1.0.0/16 given twice, one deleted)", a.Len())
	}
	tests := []struct {
		ip, prefix, action string // prefix "" for no match
	}{
		{"10.9.9.9", "10.0.0.0/8", "BLOCK"},
		{"10.1.9.9", "10.1.0.0/16", "BLOCK"}, // the later entry for 10.1.0.0/16 wins
		{"10.1.2.3", "10.1.2.3/32", "BLOCK"},
		{"192.0.2.1", "0.0.0.0/0", "ALLOW"},
		{"2001:db8:1::5", "2001:db8:1::/48", "ALLOW"},
		{"2001:db8:2::5", "2001:db8::/32", "BLOCK"},
		{"2001:db9::1", "", ""},
		{"::ffff:10.1.2.3", "", ""}, // IPv4-mapped: IPv6 prefixes only
	}
	for _, tc := range tests {
		e, ok := a.Lookup(netip.MustParseAddr(tc.ip))
		if tc.prefix == "" {
			if ok {
				t.Errorf("%s: matched %v", tc.ip, e)
			}
			continue
		}
		if !ok || e.Prefix.String() != tc.prefix || e.Action != tc.action {
			t.Errorf("%s: %v %v, want %s %s", tc.ip, e, ok, tc.prefix, tc.action)
		}
	}
	e, _ := a.Lookup(netip.MustParseAddr("10.1.2.3"))
	js, _ := json.Marshal(e)
	if string(js) != `{"prefix":"10.1.2.3/32","action":"BLOCK"}` {
		t.Errorf("JSON %s", js)
	}
}

func TestParseErrors(t *testing.T) {
	for _, doc := range []string{
		``, `[]`, `{}`, `{"entries": [{"prefix": "1.2.3.4/33", "action": "BLOCK"}]}`,
		`{"entries": [{"prefix": "1.2.3.four/8", "action": "BLOCK"}]}`,
		`{"entries": [{"prefix": "fe80::1%eth0", "action": "BLOCK"}]}`,
		`{"entries": [{"prefix": "1.2.3.4/8", "action": "DENY"}]}`,
		`{"entries": [{"op": "upsert", "prefix": "1.2.3.4/8", "action": "ALLOW"}]}`,
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("Parse(%s): no error", doc)
		}
	}
}

// BenchmarkLookup: one lookup in an ACL of 10,000 IPv4 /32s and /24s and
// 1,000 IPv6 /48s, for a matching and a missing address.
func BenchmarkLookup(b *testing.B) {
	var entries []Entry
	for i := range 5000 {
		entries = append(entries,
			Entry{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 32), ActionBlock},
			Entry{netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i >> 8), byte(i), 0}), 24), ActionAllow})
	}
	for i := range 1000 {
		entries = append(entries, Entry{netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", i)), ActionBlock})
	}
	a, err := New(entries)
	if err != nil {
		b.Fatal(err)
	}
	for _, ip := range []string{"172.0.9.77", "192.0.2.1", "2001:db8:3e7::1"} {
		addr := netip.MustParseAddr(ip)
		b.Run(ip, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.Lookup(addr)
			}
		})
	}
}
