package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"strings"

	"encoding/json"

	"github.com/edgehost/edgehost/internal/acl"
	"github.com/edgehost/edgehost/internal/device"
	"github.com/edgehost/edgehost/internal/geo"
	"github.com/edgehost/edgehost/internal/shield"
)

// Services are the platform services of [local_server] (README.md,
// "Platform services"), read as Fastly's local server reads them:
//
//	[local_server.acls]
//	NAME = "file.json"                    or  NAME = { file = "file.json" }
//	                                      (Fastly's ACL API JSON: {"entries": [{"op", "prefix", "action"}]})
//	[local_server.geolocation]
//	format = "inline-toml"                with an [addresses."IP"] table of Fastly's fields per address (none: empty)
//	format = "json"                       with file = "file.json": {"IP": {fields}, ...}
//	format = "mmdb"                       with file = "GeoLite2-City.mmdb" and optionally asn_file = "GeoLite2-ASN.mmdb"
//	use_default_loopback = true           loopback addresses without an entry get geo.Loopback
//	[local_server.device_detection]
//	format = "inline-toml"                with a [user_agents."UA"] table of fields per User-Agent
//	format = "json"                       with file = "file.json": {"UA": {fields}, ...}
//	[local_server.shielding_sites]
//	NAME = "local"                        this host is that POP
//	NAME = { unencrypted = "http://…", encrypted = "https://…" }
//
// Relative file names are resolved against the manifest's directory.
type Services struct {
	// ACLs are the ACLs by name.
	ACLs map[string]*acl.ACL
	// Geo answers geolocation lookups; nil when the manifest has no
	// [local_server.geolocation] (the host then gives only the loopback
	// default).
	Geo *geo.DB
	// Devices answers device detection lookups; nil when there is no
	// [local_server.device_detection].
	Devices *device.DB
	// Shields are the shielding sites by name.
	Shields shield.Sites
}

// services reads the platform service sections of [local_server] into s.
func (p *parser) services(t *table, dir string, s *Services) {
	s.ACLs = map[string]*acl.ACL{}
	s.Shields = shield.Sites{}
	p.acls(t, dir, s.ACLs)
	if g, ok := t.table("geolocation"); ok {
		s.Geo = p.geolocation(g, dir)
	}
	if d, ok := t.table("device_detection"); ok {
		s.Devices = p.deviceDetection(d, dir)
	}
	p.shieldingSites(t, s.Shields)
}

// readFile reads file (relative to dir, see resolve in kvsecret.go) and
// returns its bytes and path; an empty name is an error.
func readFile(dir, file string) ([]byte, string, error) {
	if file == "" {
		return nil, "", fmt.Errorf("empty file name")
	}
	path := resolve(dir, file)
	data, err := os.ReadFile(path)
	return data, path, err
}

func (p *parser) acls(t *table, dir string, out map[string]*acl.ACL) {
	outer, ok := t.table("acls")
	if !ok {
		return
	}
	for _, name := range outer.names() {
		v, _ := outer.get(name)
		key := outer.key(name)
		var file string
		switch v := v.(type) {
		case string:
			file = v
		case map[string]any:
			sub, _ := outer.table(name)
			f, ok := sub.str("file")
			if !ok {
				if !sub.has("file") {
					p.errorf(key, `an ACL needs a file key (a JSON file of {"entries": [...]})`)
				}
				sub.finish()
				continue
			}
			if fm, ok := sub.str("format"); ok && fm != "json" {
				sub.errorf("format", `unknown format %q; ACL files are "json"`, fm)
			}
			sub.finish()
			file, key = f, sub.key("file")
		default:
			p.errorf(key, "want a file name or a table with a file key, have %s", typeName(v))
			continue
		}
		data, path, err := readFile(dir, file)
		if err != nil {
			p.add(key, err)
			continue
		}
		a, err := acl.Parse(data)
		if err != nil {
			p.add(key, fmt.Errorf("%s: %w", path, err))
			continue
		}
		out[name] = a
	}
	outer.finish()
}

// jsonFields turns a TOML table of one address's or User-Agent's fields
// into JSON-ready values, reporting values JSON has no form for.
func (p *parser) jsonFields(t *table) map[string]any {
	out := make(map[string]any, len(t.m))
	for _, k := range t.names() {
		v, _ := t.get(k)
		if err := jsonable(v); err != nil {
			t.errorf(k, "%v", err)
			continue
		}
		out[k] = v
	}
	return out
}

func jsonable(v any) error {
	switch v := v.(type) {
	case string, int64, float64, bool:
		return nil
	case map[string]any:
		for _, e := range v {
			if err := jsonable(e); err != nil {
				return err
			}
		}
		return nil
	case []any:
		for _, e := range v {
			if err := jsonable(e); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("want a string, number, boolean or table, have %s", typeName(v))
}

// jsonObjects reads a JSON file of {"KEY": {fields}, ...}.
func jsonObjects(path string, data []byte) (map[string]map[string]any, error) {
	var m map[string]map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of objects: %w", path, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%s: want a JSON object of objects, have null", path)
	}
	return m, nil
}

func (p *parser) geolocation(t *table, dir string) *geo.DB {
	defer t.finish()
	var cfg geo.Config
	if b, ok := t.boolean("use_default_loopback"); ok {
		cfg.NoLoopbackDefault = !b
	}
	format, ok := t.str("format")
	if !ok {
		if t.has("addresses") || t.has("file") {
			p.errorf(t.path, `the format key is required ("inline-toml", "json" or "mmdb")`)
			t.ignore("addresses", "file", "asn_file")
			return nil
		}
		db, _ := geo.New(cfg)
		return db
	}
	addr := func(key []string, s string) (netip.Addr, bool) {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			p.errorf(key, "%q is not an IP address", s)
			return netip.Addr{}, false
		}
		return a, true
	}
	fileKey := func(k string) ([]byte, bool) {
		f, ok := t.str(k)
		if !ok {
			if !t.has(k) && k == "file" {
				p.errorf(t.path, "format = %q needs a file key", format)
			}
			return nil, false
		}
		data, _, err := readFile(dir, f)
		if err != nil {
			p.add(t.key(k), err)
			return nil, false
		}
		return data, true
	}
	switch format {
	case "inline-toml":
		t.ignore("file", "asn_file")
		for _, k := range []string{"file", "asn_file"} {
			if t.has(k) {
				t.errorf(k, `is for format = "json" or "mmdb"`)
			}
		}
		cfg.Addresses = map[netip.Addr]map[string]any{}
		a, ok := t.table("addresses")
		if !ok && t.has("addresses") {
			return nil
		}
		for _, k := range a.tableNames() {
			sub, ok := a.table(k)
			if !ok {
				continue
			}
			fields := p.jsonFields(sub)
			if ip, ok := addr(a.key(k), k); ok {
				cfg.Addresses[ip] = fields
			}
			sub.finish()
		}
		if a != nil {
			a.finish()
		}
	case "json":
		t.ignore("addresses", "asn_file")
		data, ok := fileKey("file")
		if !ok {
			return nil
		}
		m, err := jsonObjects(t.m["file"].(string), data)
		if err != nil {
			p.add(t.key("file"), err)
			return nil
		}
		cfg.Addresses = map[netip.Addr]map[string]any{}
		for k, v := range m {
			if ip, ok := addr(t.key("file"), k); ok {
				cfg.Addresses[ip] = v
			}
		}
	case "mmdb":
		t.ignore("addresses")
		data, ok := fileKey("file")
		if !ok {
			return nil
		}
		cfg.MMDB = data
		if t.has("asn_file") {
			if cfg.ASN, ok = fileKey("asn_file"); !ok {
				return nil
			}
		}
	default:
		t.errorf("format", `unknown format %q; want "inline-toml", "json" or "mmdb"`, format)
		t.ignore("addresses", "file", "asn_file")
		return nil
	}
	db, err := geo.New(cfg)
	if err != nil {
		p.add(t.key("file"), err)
		return nil
	}
	return db
}

func (p *parser) deviceDetection(t *table, dir string) *device.DB {
	defer t.finish()
	format, ok := t.str("format")
	if !ok {
		if !t.has("format") {
			p.errorf(t.path, `the format key is required ("inline-toml" or "json")`)
		}
		t.ignore("user_agents", "file")
		return nil
	}
	agents := map[string]map[string]any{}
	switch format {
	case "inline-toml":
		if t.has("file") {
			t.errorf("file", `is for format = "json"`)
			t.ignore("file")
		}
		ua, ok := t.table("user_agents")
		if !ok {
			if !t.has("user_agents") {
				p.errorf(t.path, `format = "inline-toml" needs a user_agents table`)
			}
			return nil
		}
		for _, k := range ua.names() {
			if sub, ok := ua.table(k); ok {
				agents[k] = p.jsonFields(sub)
				sub.finish()
			}
		}
		ua.finish()
	case "json":
		t.ignore("user_agents")
		f, ok := t.str("file")
		if !ok {
			if !t.has("file") {
				p.errorf(t.path, `format = "json" needs a file key`)
			}
			return nil
		}
		data, path, err := readFile(dir, f)
		if err != nil {
			p.add(t.key("file"), err)
			return nil
		}
		if agents, err = jsonObjects(path, data); err != nil {
			p.add(t.key("file"), err)
			return nil
		}
	default:
		t.errorf("format", `unknown format %q; want "inline-toml" or "json"`, format)
		t.ignore("user_agents", "file")
		return nil
	}
	db, err := device.New(agents)
	if err != nil {
		p.add(t.path, err)
		return nil
	}
	return db
}

func (p *parser) shieldingSites(t *table, out shield.Sites) {
	outer, ok := t.table("shielding_sites")
	if !ok {
		return
	}
	for _, name := range outer.names() {
		v, _ := outer.get(name)
		key := outer.key(name)
		switch v := v.(type) {
		case string:
			if !strings.EqualFold(v, "local") {
				p.errorf(key, `want "local" (this host is that POP) or a table with unencrypted and encrypted URLs, have %q`, v)
				continue
			}
			out[name] = shield.Site{Name: name, Local: true}
		case map[string]any:
			sub, _ := outer.table(name)
			site := shield.Site{Name: name}
			good := true
			for _, k := range []string{"unencrypted", "encrypted"} {
				s, ok := sub.str(k)
				if !ok {
					if !sub.has(k) {
						p.errorf(key, "a remote shielding site needs unencrypted and encrypted URLs; %s is missing", k)
					}
					good = false
					continue
				}
				u, err := url.Parse(s)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					sub.errorf(k, "%q: want an http:// or https:// URL with a host", s)
					good = false
					continue
				}
				if k == "unencrypted" {
					site.Unencrypted = u
				} else {
					site.Encrypted = u
				}
			}
			sub.finish()
			if good {
				out[name] = site
			}
		default:
			p.errorf(key, `want "local" or a table with unencrypted and encrypted URLs, have %s`, typeName(v))
		}
	}
	outer.finish()
}

// tableNames is names for a table that may be nil (absent).
func (t *table) tableNames() []string {
	if t == nil {
		return nil
	}
	return t.names()
}
