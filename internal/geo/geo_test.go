package geo

import (
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

func TestHHMM(t *testing.T) {
	for sec, want := range map[int]int{0: 0, -7 * 3600: -700, 5*3600 + 1800: 530, -(3*3600 + 1800): -330, 12*3600 + 45*60: 1245} {
		if got := hhmm(sec); got != want {
			t.Errorf("hhmm(%d) = %d, want %d", sec, got, want)
		}
	}
}

func mmdb(t *testing.T, cidr string, rec mmdbtype.Map) []byte {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "Test-City", RecordSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := net.ParseCIDR(cidr)
	if err := tree.Insert(n, rec); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := tree.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestSources: the address table wins over the databases, the City and
// ASN databases are merged, summer time shows in utc_offset, loopback
// gets the default unless turned off, anything else is not found.
func TestSources(t *testing.T) {
	city := mmdb(t, "81.2.69.0/24", mmdbtype.Map{
		"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("London")}},
		"country":  mmdbtype.Map{"iso_code": mmdbtype.String("GB")},
		"location": mmdbtype.Map{"time_zone": mmdbtype.String("Europe/London")},
	})
	asn := mmdb(t, "81.2.0.0/16", mmdbtype.Map{
		"autonomous_system_number": mmdbtype.Uint32(20712), "autonomous_system_organization": mmdbtype.String("Andrews & Arnold"),
		"connection_type": mmdbtype.String("Cable/DSL"),
	})
	d, err := New(Config{
		Addresses: map[netip.Addr]map[string]any{netip.MustParseAddr("81.2.69.1"): {"city": "Override"}},
		MMDB:      city, ASN: asn,
	})
	if err != nil {
		t.Fatal(err)
	}
	d.now = func() time.Time { return time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC) }
	if js, ok, _ := d.Lookup(netip.MustParseAddr("81.2.69.1")); !ok || string(js) != `{"city":"Override"}` {
		t.Errorf("table: %s %v", js, ok)
	}
	js, ok, err := d.Lookup(netip.MustParseAddr("::ffff:81.2.69.2"))
	var r Record
	if err != nil || !ok || json.Unmarshal(js, &r) != nil {
		t.Fatalf("mmdb: %s %v %v", js, ok, err)
	}
	if r.City != "London" || r.CountryCode3 != "GBR" || r.UTCOffset != 100 || r.ASNumber != 20712 || r.ASName != "Andrews & Arnold" || r.ConnSpeed != "broadband" {
		t.Errorf("mmdb record %+v", r)
	}
	if js, ok, _ := d.Lookup(netip.MustParseAddr("81.2.70.1")); !ok || !bytes.Contains(js, []byte(`"as_number":20712,`)) {
		t.Errorf("ASN only: %s %v", js, ok)
	}
	if _, ok, _ := d.Lookup(netip.MustParseAddr("127.0.0.1")); !ok {
		t.Error("no loopback default")
	}
	if _, ok, _ := d.Lookup(netip.MustParseAddr("192.0.2.1")); ok {
		t.Error("an unknown address was found")
	}
	d2, _ := New(Config{NoLoopbackDefault: true})
	if _, ok, _ := d2.Lookup(netip.MustParseAddr("::1")); ok {
		t.Error("loopback default when turned off")
	}
	if _, err := New(Config{MMDB: []byte("nope")}); err == nil {
		t.Error("a bad database opened")
	}
}
