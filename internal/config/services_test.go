package config

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServicesSections reads every form of the platform service sections.
func TestServicesSections(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "acl.json"), `{"entries": [{"op": "create", "prefix": "192.0.2.0/24", "action": "BLOCK"},
		{"prefix": "2001:db8::1", "action": "allow"}]}`)
	writeFile(t, filepath.Join(dir, "geo.json"), `{"203.0.113.5": {"city": "From JSON"}}`)
	writeFile(t, filepath.Join(dir, "ua.json"), `{"UA/1": {"device": {"name": "x"}}}`)
	m := mustParse(t, `[local_server.acls]
a = "acl.json"
b = { file = "acl.json" }
[local_server.geolocation]
format = "json"
file = "geo.json"
use_default_loopback = false
[local_server.device_detection]
format = "json"
file = "ua.json"
[local_server.shielding_sites]
here = "Local"
there = { unencrypted = "http://127.0.0.1:1/x", encrypted = "https://shield.example" }
`, dir)
	s := m.Services
	if len(s.ACLs) != 2 || s.ACLs["a"].Len() != 2 {
		t.Fatalf("ACLs %v", s.ACLs)
	}
	if e, ok := s.ACLs["b"].Lookup(netip.MustParseAddr("2001:db8::1")); !ok || e.Action != "ALLOW" || e.Prefix.String() != "2001:db8::1/128" {
		t.Errorf("ACL b: %v %v", e, ok)
	}
	if js, ok, _ := s.Geo.Lookup(netip.MustParseAddr("203.0.113.5")); !ok || string(js) != `{"city":"From JSON"}` {
		t.Errorf("geo from JSON: %s %v", js, ok)
	}
	if _, ok, _ := s.Geo.Lookup(netip.MustParseAddr("127.0.0.1")); ok {
		t.Errorf("use_default_loopback = false still answers for loopback")
	}
	if js, ok := s.Devices.Lookup("UA/1"); !ok || string(js) != `{"device":{"name":"x"}}` {
		t.Errorf("device from JSON: %s %v", js, ok)
	}
	if info, ok := s.Shields.Info("there"); !ok || string(info) != "\x00http://127.0.0.1:1/x\x00https://shield.example\x00" {
		t.Errorf("shield there: %q %v", info, ok)
	}
	if !s.Shields["here"].Local {
		t.Errorf("shield here is not local")
	}
}

// TestServicesBadInput: a malformed section names the file, the key and
// its line; a missing data file names its path.
func TestServicesBadInput(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "bad-acl.json"), `{"entries": [{"prefix": "192.0.2.0/33", "action": "BLOCK"}]}`)
	writeFile(t, filepath.Join(dir, "bad-action.json"), `{"entries": [{"prefix": "192.0.2.0/24", "action": "DENY"}]}`)
	writeFile(t, filepath.Join(dir, "not-mmdb.mmdb"), "this is not a MaxMind DB")
	missing := filepath.Join(dir, "missing.json")
	tests := []struct {
		name, doc string
		want      []string // in the error text, with LINE replaced by the marked line
	}{
		{"missing ACL file", "[local_server.acls]\nblock = \"missing.json\" #<-x\n",
			[]string{`fastly.toml:LINE: key "local_server.acls.block": open ` + missing + `: no such file or directory`}},
		{"bad ACL prefix", "[local_server.acls]\nblock = { file = \"bad-acl.json\" } #<-x\n",
			[]string{`fastly.toml:LINE: key "local_server.acls.block.file": ` + filepath.Join(dir, "bad-acl.json") + `: entry 0: prefix "192.0.2.0/33"`}},
		{"bad ACL action", "[local_server.acls]\nblock = \"bad-action.json\" #<-x\n",
			[]string{`key "local_server.acls.block"`, `entry 0 (192.0.2.0/24): action "DENY": want "ALLOW" or "BLOCK"`}},
		{"ACL of the wrong type", "[local_server.acls]\nblock = 3 #<-x\n",
			[]string{`fastly.toml:LINE: key "local_server.acls.block": want a file name or a table with a file key, have an integer`}},
		{"ACL unknown key", "[local_server.acls.block]\nfile = \"bad-action.json\"\nfiel = \"x\" #<-x\n",
			[]string{`fastly.toml:LINE: unknown key "local_server.acls.block.fiel"`}},
		{"geo bad format", "[local_server.geolocation]\nformat = \"csv\" #<-x\n",
			[]string{`fastly.toml:LINE: key "local_server.geolocation.format": unknown format "csv"`}},
		{"geo bad address", "[local_server.geolocation]\nformat = \"inline-toml\"\n[local_server.geolocation.addresses.\"300.1.1.1\"] #<-x\ncity = \"x\"\n",
			[]string{`fastly.toml:LINE: key "local_server.geolocation.addresses.\"300.1.1.1\"": "300.1.1.1" is not an IP address`}},
		{"geo missing mmdb", "[local_server.geolocation]\nformat = \"mmdb\"\nfile = \"missing.json\" #<-x\n",
			[]string{`fastly.toml:LINE: key "local_server.geolocation.file": open ` + missing}},
		{"geo not an mmdb", "[local_server.geolocation]\nformat = \"mmdb\"\nfile = \"not-mmdb.mmdb\" #<-x\n",
			[]string{`fastly.toml:LINE: key "local_server.geolocation.file": not a MaxMind DB`}},
		{"geo field of the wrong type", "[local_server.geolocation]\nformat = \"inline-toml\"\n[local_server.geolocation.addresses.\"192.0.2.1\"]\ncity = 1979-05-27 #<-x\n",
			[]string{`fastly.toml:LINE: key "local_server.geolocation.addresses.\"192.0.2.1\".city": want a string, number, boolean or table, have a date/time`}},
		{"device missing format", "[local_server.device_detection] #<-x\nfile = \"ua.json\"\n",
			[]string{`fastly.toml:LINE: key "local_server.device_detection": the format key is required`}},
		{"device missing file", "[local_server.device_detection]\nformat = \"json\"\nfile = \"missing.json\" #<-x\n",
			[]string{`fastly.toml:LINE: key "local_server.device_detection.file": open ` + missing}},
		{"shield bad string", "[local_server.shielding_sites]\nx = \"remote\" #<-x\n",
			[]string{`fastly.toml:LINE: key "local_server.shielding_sites.x": want "local"`}},
		{"shield bad URL", "[local_server.shielding_sites.x]\nunencrypted = \"ftp://a\" #<-x\nencrypted = \"https://a\"\n",
			[]string{`fastly.toml:LINE: key "local_server.shielding_sites.x.unencrypted": "ftp://a": want an http:// or https:// URL`}},
		{"shield missing URL", "[local_server.shielding_sites.x] #<-x\nunencrypted = \"http://a\"\n",
			[]string{`fastly.toml:LINE: key "local_server.shielding_sites.x": a remote shielding site needs unencrypted and encrypted URLs; encrypted is missing`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("fastly.toml", []byte(tc.doc), dir)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(w, "LINE", itoa(markedLine(t, tc.doc, "x")))
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Line == 0 {
				t.Errorf("error %v: no line", err)
			}
		})
	}
	_, err := Parse("fastly.toml", []byte("[local_server.acls]\nblock = \"missing.json\"\n"), dir)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing ACL file: %v does not wrap fs.ErrNotExist", err)
	}
}

// TestExampleServices: fastly.toml.example's service sections load.
func TestExampleServices(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "fastly.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config-store.json"), `{"from": "json"}`)
	writeFile(t, filepath.Join(dir, "acl-blocklist.json"), `{"entries": []}`)
	m, err := Parse("fastly.toml.example", data, dir)
	if err != nil {
		t.Fatal(err)
	}
	s := m.Services
	if s.ACLs["blocklist"] == nil || s.Geo.Stats().Addresses != 1 || !s.Geo.Stats().LoopbackDefault || s.Devices.Len() != 1 || len(s.Shields) != 2 {
		t.Errorf("example services: ACLs %v, geo %+v, %d user agents, %d shielding sites", s.ACLs, s.Geo.Stats(), s.Devices.Len(), len(s.Shields))
	}
}

func itoa(n int) string {
	var b []byte
	for n >= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(append([]byte{byte('0' + n)}, b...))
}
