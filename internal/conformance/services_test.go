package conformance_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/edgehost/edgehost/internal/config"
	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/erl"
	"github.com/edgehost/edgehost/internal/guesttest"
	"github.com/edgehost/edgehost/internal/hostcall"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/server"
)

// The platform services (README.md, "Platform services"): each case runs
// testdata/guests/services, which calls the hostcalls as Fastly's Go SDK
// does, on every engine, and the reports must be identical.

const servicesACL = `{"entries": [
	{"op": "create", "prefix": "192.0.2.0/24", "action": "BLOCK"},
	{"op": "create", "prefix": "192.0.2.128/25", "action": "ALLOW"},
	{"op": "create", "prefix": "2001:db8::/32", "action": "BLOCK"},
	{"op": "create", "prefix": "2001:db8:ab::/48", "action": "ALLOW"},
	{"op": "delete", "prefix": "2001:db8:ab::/48"}
]}`

const servicesUA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"

// servicesManifest writes the ACL file into dir and returns the manifest:
// an ACL, inline geolocation for one address (loopback gets the default),
// one user agent, a local and a remote shielding site reaching shield.
func servicesManifest(t *testing.T, dir, shield string) string {
	if err := os.WriteFile(filepath.Join(dir, "blocklist.json"), []byte(servicesACL), 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`name = "services"
[local_server.acls]
blocklist = "blocklist.json"
[local_server.geolocation]
format = "inline-toml"
[local_server.geolocation.addresses."198.51.100.7"]
as_name = "Test Net"
as_number = 64500
city = "Testville"
country_code = "NZ"
latitude = -41.29
[local_server.device_detection]
format = "inline-toml"
[local_server.device_detection.user_agents.%[2]q]
device = { name = "iPhone", brand = "Apple", is_mobile = true, is_tablet = false }
os = {}
[local_server.shielding_sites]
"pdx-or-us" = "local"
"bfi-wa-us" = { unencrypted = "%[1]s/shield", encrypted = "%[1]s/shield" }
`, shield, servicesUA)
}

// serveServices is serve with a rate limiting store of the test's (nil:
// the Env's own) and relative files in the manifest resolved in dir.
func serveServices(t *testing.T, eng engine.Engine, manifest, dir string, rl *erl.Store) *host {
	t.Helper()
	m, err := config.Parse("fastly.toml", []byte(manifest), dir)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	logs := &guesttest.LogBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pools := pool.NewManager(log)
	t.Cleanup(pools.Close)
	loader := &server.Loader{Engine: eng, Linker: hostcall.NewLinker(log), Pools: pools, Logger: log,
		Env: server.GuestEnvFor(m), RateLimits: rl}
	v, err := loader.Load(context.Background(), "1", guests["services"], m)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	srv := server.New(server.Config{Logger: log, SandboxTimeout: 20 * time.Second})
	srv.Activate(v)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &host{url: hs.URL, logs: logs}
}

type serviceCheck struct {
	name, path string
	hdr        []string
	want       []string // lines the report must contain
}

// runChecks runs checks against h and compares each report with the one
// the first engine gave (reports, by check name).
func runChecks(t *testing.T, h *host, checks []serviceCheck, reports map[string]string) {
	t.Helper()
	for _, c := range checks {
		resp, body := get(t, h.url+c.path, c.hdr...)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d: %q\nlogs:\n%s", c.name, resp.StatusCode, body, h.logs)
		}
		lines := strings.Split(body, "\n")
		for _, w := range c.want {
			if !contains(lines, w) {
				t.Errorf("%s: report lacks %q:\n%s", c.name, w, body)
			}
		}
		if prev, ok := reports[c.name]; !ok {
			reports[c.name] = body
		} else if prev != body {
			t.Errorf("%s: report differs from the first engine's:\n%s\nfirst engine:\n%s", c.name, body, prev)
		}
	}
}

func TestServices(t *testing.T) {
	shield := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "shield %s", r.URL.Path)
	}))
	t.Cleanup(shield.Close)
	loopbackGeo := `{"as_name":"Fastly, Inc","as_number":54113,"area_code":415,"city":"San Francisco","conn_speed":"broadband","conn_type":"wired","continent":"NA","country_code":"US","country_code3":"USA","country_name":"United States of America","gmt_offset":-700,"latitude":37.77869,"longitude":-122.39557,"metro_code":0,"postal_code":"94107","proxy_description":"?","proxy_type":"?","region":"CA","utc_offset":-700}`
	checks := []serviceCheck{
		{"acl, IPv4 /24", "/acl?blocklist&c0000201", nil, []string{"open=0", "lookup=0,1", `body={"prefix":"192.0.2.0/24","action":"BLOCK"}`}},
		{"acl, IPv4 longest prefix", "/acl?blocklist&c00002c8", nil, []string{"lookup=0,1", `body={"prefix":"192.0.2.128/25","action":"ALLOW"}`}},
		{"acl, IPv4 no match", "/acl?blocklist&0a000001", nil, []string{"lookup=0,2"}},
		{"acl, IPv6", "/acl?blocklist&20010db800ab00000000000000000001", nil, []string{"lookup=0,1", `body={"prefix":"2001:db8::/32","action":"BLOCK"}`}},
		{"acl, IPv6 no match", "/acl?blocklist&20010db900000000000000000000000a", nil, []string{"lookup=0,2"}},
		{"acl, unknown", "/acl?nope&c0000201", nil, []string{"open=10"}},
		{"geo, configured", "/geo?c6336407", nil, []string{"geo=0", `json={"as_name":"Test Net","as_number":64500,"city":"Testville","country_code":"NZ","latitude":-41.29}`}},
		{"geo, the client (loopback default)", "/geo?", nil, []string{"client ip=0,4", "geo=0", "json=" + loopbackGeo}},
		{"geo, ::1", "/geo?00000000000000000000000000000001", nil, []string{"geo=0", "json=" + loopbackGeo}},
		{"geo, unknown", "/geo?cb007101", nil, []string{"geo=10", "json="}},
		{"device", "/device", []string{"User-Agent", servicesUA}, []string{"device=0",
			`json={"device":{"brand":"Apple","is_mobile":true,"is_tablet":false,"name":"iPhone"},"os":{}}`}},
		{"device, unknown", "/device", []string{"User-Agent", "curl/8"}, []string{"device=10"}},
		{"erl, arguments out of range", "/erl-bad", nil, []string{"window 2=2", "limit 9=2", "ttl 30s=2", "delta 1001=2",
			"name 65 bytes=2", "duration 15=2", "empty entry=2", "increment=0", "add 90s=0", "has=0,1"}},
		{"shield, local", "/shield?pdx-or-us", nil, []string{"shield_info=0", "running on=1", "targets=2,,", "backend_for_shield=2,"}},
		{"shield, remote", "/shield-send?bfi-wa-us", nil, []string{"shield_info=0", "running on=0",
			"targets=2," + shield.URL + "/shield," + shield.URL + "/shield", "backend_for_shield=0,shield:bfi-wa-us:encrypted",
			"send=0", "shield answered=shield /shield/from-the-edge"}},
		{"shield, unknown", "/shield?nowhere", nil, []string{"shield_info=2"}},
		{"bad input", "/bad", nil, []string{"acl lookup bad handle=3", "acl lookup 5 octets=2", "acl lookup 0 octets=2",
			"acl open missing=10", "geo 3 octets=2", "geo unknown=10", "device not utf-8=2", "shield unknown=2", "shield reserved bit=2"}},
	}
	dir := t.TempDir()
	manifest := servicesManifest(t, dir, shield.URL)
	reports := map[string]string{}
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		h := serveServices(t, eng, manifest, dir, nil)
		runChecks(t, h, checks, reports)
		if strings.Contains(h.logs.String(), "panicked") {
			t.Errorf("a hostcall panicked:\n%s", h.logs)
		}
	})
}

// TestRateLimitPenaltyBox drives an entry's rate over check_rate's limit
// (10 per second over 1 s) from separate sandboxes, sees it blocked and
// penalty-boxed for the minute asked, then out of the box once the TTL
// has passed, on a clock the test moves. Another entry is never blocked.
func TestRateLimitPenaltyBox(t *testing.T) {
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		var mu sync.Mutex
		now := time.Unix(1_800_000_000, 0)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		dir := t.TempDir()
		h := serveServices(t, eng, servicesManifest(t, dir, "http://127.0.0.1:1"), dir, erl.New(clock))
		check := func(entry string) string {
			resp, body := get(t, h.url+"/erl?"+entry)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			return body
		}
		for i := 1; i <= 10; i++ {
			if body := check("203.0.113.9"); !strings.Contains(body, "check_rate=0,0\n") || !strings.Contains(body, fmt.Sprintf("rate 1s=0,%d\n", i)) {
				t.Fatalf("request %d under the limit:\n%s", i, body)
			}
		}
		body := check("203.0.113.9")
		for _, w := range []string{"check_rate=0,1", "rate 1s=0,11", "count 10s=0,11", "penaltybox_has=0,1"} {
			if !contains(strings.Split(body, "\n"), w) {
				t.Errorf("11th request in one second lacks %q:\n%s", w, body)
			}
		}
		if body := check("198.51.100.1"); !strings.Contains(body, "check_rate=0,0\n") {
			t.Errorf("another entry:\n%s", body)
		}
		advance(30 * time.Second)
		if body := check("203.0.113.9"); !strings.Contains(body, "check_rate=0,1\n") || !strings.Contains(body, "rate 1s=0,1\n") {
			t.Errorf("30 s later, at a low rate but in the box:\n%s", body)
		}
		advance(31 * time.Second)
		if body := check("203.0.113.9"); !strings.Contains(body, "check_rate=0,0\n") || !strings.Contains(body, "penaltybox_has=0,0\n") {
			t.Errorf("61 s after the block, out of the box:\n%s", body)
		}
	})
}

// writeMMDB writes a small MaxMind DB with a City record for
// 81.2.69.0/24 and 2001:db8:1::/48 and returns its path.
func writeMMDB(t *testing.T, dir string) string {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoLite2-City", RecordSize: 28, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := mmdbtype.Map{
		"city":      mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Pune")}},
		"continent": mmdbtype.Map{"code": mmdbtype.String("AS")},
		"country":   mmdbtype.Map{"iso_code": mmdbtype.String("IN"), "names": mmdbtype.Map{"en": mmdbtype.String("India")}},
		"location": mmdbtype.Map{"latitude": mmdbtype.Float64(18.52), "longitude": mmdbtype.Float64(73.86),
			"time_zone": mmdbtype.String("Asia/Kolkata")},
		"postal":                         mmdbtype.Map{"code": mmdbtype.String("411001")},
		"subdivisions":                   mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String("MH")}},
		"autonomous_system_number":       mmdbtype.Uint32(64501),
		"autonomous_system_organization": mmdbtype.String("Example Transit"),
	}
	for _, cidr := range []string{"81.2.69.0/24", "2001:db8:1::/48"} {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGeolocationMMDB: with format = "mmdb" the answers come from a
// MaxMind database, mapped onto Fastly's fields; loopback keeps its
// default; an address the database lacks is none.
func TestGeolocationMMDB(t *testing.T) {
	dir := t.TempDir()
	writeMMDB(t, dir)
	manifest := `[local_server.geolocation]
format = "mmdb"
file = "city.mmdb"
`
	want := `json={"as_name":"Example Transit","as_number":64501,"area_code":0,"city":"Pune","conn_speed":"","conn_type":"","continent":"AS","country_code":"IN","country_code3":"IND","country_name":"India","gmt_offset":530,"latitude":18.52,"longitude":73.86,"metro_code":0,"postal_code":"411001","proxy_description":"?","proxy_type":"?","region":"MH","utc_offset":530}`
	checks := []serviceCheck{
		{"IPv4 in the database", "/geo?51024511", nil, []string{"geo=0", want}},
		{"IPv6 in the database", "/geo?20010db8000100000000000000000042", nil, []string{"geo=0", want}},
		{"loopback", "/geo?7f000001", nil, []string{"geo=0"}},
		{"not in the database", "/geo?51024611", nil, []string{"geo=10"}},
	}
	reports := map[string]string{}
	forEachEngine(t, engine.Config{}, func(t *testing.T, eng engine.Engine) {
		runChecks(t, serveServices(t, eng, manifest, dir, nil), checks, reports)
	})
}
