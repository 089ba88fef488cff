// Package geo answers Compute's geolocation lookups (fastly_geo.lookup,
// abi/README.md): a JSON object with Fastly's field names (as_name,
// as_number, area_code, city, conn_speed, conn_type, continent,
// country_code, country_code3, country_name, gmt_offset, latitude,
// longitude, metro_code, postal_code, proxy_description, proxy_type,
// region, utc_offset) for an IP address.
//
// The data comes from fastly.toml (README.md, "Platform services"): an
// address table (inline or a JSON file), a MaxMind-format .mmdb database
// (GeoIP2/GeoLite2 City, optionally an ASN database beside it), and a
// default answer for loopback addresses, in that order. A DB is immutable
// and safe for concurrent use.
package geo

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"time"
	// The time zone database, so utc_offset works on hosts without
	// one (minimal containers): about 450 KB of binary.
	_ "time/tzdata"

	"github.com/oschwald/maxminddb-golang/v2"
	"golang.org/x/text/language"
)

// Record is one geolocation answer, with Fastly's field names.
type Record struct {
	ASName           string  `json:"as_name"`
	ASNumber         uint32  `json:"as_number"`
	AreaCode         int     `json:"area_code"`
	City             string  `json:"city"`
	ConnSpeed        string  `json:"conn_speed"`
	ConnType         string  `json:"conn_type"`
	Continent        string  `json:"continent"`
	CountryCode      string  `json:"country_code"`
	CountryCode3     string  `json:"country_code3"`
	CountryName      string  `json:"country_name"`
	GMTOffset        int     `json:"gmt_offset"`
	Latitude         float64 `json:"latitude"`
	Longitude        float64 `json:"longitude"`
	MetroCode        int     `json:"metro_code"`
	PostalCode       string  `json:"postal_code"`
	ProxyDescription string  `json:"proxy_description"`
	ProxyType        string  `json:"proxy_type"`
	Region           string  `json:"region"`
	UTCOffset        int     `json:"utc_offset"`
}

// Loopback is the default answer for 127.0.0.0/8 and ::1 when the
// configuration has no entry for them: the one Fastly's local server
// (Viceroy) gives, Fastly's office in San Francisco.
var Loopback = Record{
	ASName: "Fastly, Inc", ASNumber: 54113, AreaCode: 415, City: "San Francisco",
	ConnSpeed: "broadband", ConnType: "wired", Continent: "NA", CountryCode: "US",
	CountryCode3: "USA", CountryName: "United States of America", GMTOffset: -700,
	Latitude: 37.77869, Longitude: -122.39557, PostalCode: "94107",
	ProxyDescription: "?", ProxyType: "?", Region: "CA", UTCOffset: -700,
}

// Config is what New builds a DB from. Every part is optional.
type Config struct {
	// Addresses maps single addresses to their answer: a JSON object of
	// Fastly's fields (any fields, written out as given).
	Addresses map[netip.Addr]map[string]any
	// MMDB is the content of a MaxMind-format City database (GeoIP2-City,
	// GeoLite2-City or a database of the same layout); ASN that of an ASN
	// database (GeoLite2-ASN), or nil.
	MMDB, ASN []byte
	// NoLoopbackDefault turns the Loopback answer off
	// (use_default_loopback = false).
	NoLoopbackDefault bool
}

// DB answers lookups.
type DB struct {
	addrs    map[netip.Addr][]byte
	city     *maxminddb.Reader
	asn      *maxminddb.Reader
	loopback []byte
	now      func() time.Time
	stats    Stats
	zones    sync.Map // time zone name -> *time.Location (nil: unknown)
}

// Stats describes a DB for the admin API: the size of each source.
type Stats struct {
	// Addresses is the number of entries of the address table.
	Addresses int `json:"addresses"`
	// MMDBType and ASNType are the database types of the .mmdb files
	// (such as "GeoLite2-City"), "" when none; MMDBBytes and ASNBytes
	// their sizes.
	MMDBType  string `json:"mmdb_type,omitempty"`
	MMDBBytes int    `json:"mmdb_bytes,omitempty"`
	ASNType   string `json:"asn_type,omitempty"`
	ASNBytes  int    `json:"asn_bytes,omitempty"`
	// LoopbackDefault reports whether loopback addresses get the default.
	LoopbackDefault bool `json:"loopback_default"`
}

// New builds a DB. Errors: a .mmdb that does not open (not a MaxMind DB,
// corrupt), an address entry that cannot be written as JSON.
func New(cfg Config) (*DB, error) {
	d := &DB{addrs: make(map[netip.Addr][]byte, len(cfg.Addresses)), now: time.Now}
	for a, fields := range cfg.Addresses {
		b, err := json.Marshal(fields)
		if err != nil {
			return nil, fmt.Errorf("address %s: %w", a, err)
		}
		d.addrs[a.Unmap().WithZone("")] = b
	}
	d.stats.Addresses = len(d.addrs)
	var err error
	if cfg.MMDB != nil {
		if d.city, err = maxminddb.OpenBytes(cfg.MMDB); err != nil {
			return nil, fmt.Errorf("not a MaxMind DB: %w", err)
		}
		d.stats.MMDBType, d.stats.MMDBBytes = d.city.Metadata.DatabaseType, len(cfg.MMDB)
	}
	if cfg.ASN != nil {
		if d.asn, err = maxminddb.OpenBytes(cfg.ASN); err != nil {
			return nil, fmt.Errorf("ASN database: not a MaxMind DB: %w", err)
		}
		d.stats.ASNType, d.stats.ASNBytes = d.asn.Metadata.DatabaseType, len(cfg.ASN)
	}
	if !cfg.NoLoopbackDefault {
		d.loopback, _ = json.Marshal(Loopback)
		d.stats.LoopbackDefault = true
	}
	return d, nil
}

// Stats returns the sizes of the DB's sources.
func (d *DB) Stats() Stats { return d.stats }

// Lookup returns the JSON answer for ip, and false when no source knows
// it (the hostcall then answers none). An IPv4-mapped IPv6 address is
// looked up as IPv4. Errors: a corrupt .mmdb record.
func (d *DB) Lookup(ip netip.Addr) ([]byte, bool, error) {
	ip = ip.Unmap().WithZone("")
	if b, ok := d.addrs[ip]; ok {
		return b, true, nil
	}
	if d.city != nil || d.asn != nil {
		r, found, err := d.lookupMMDB(ip)
		if err != nil {
			return nil, false, err
		}
		if found {
			b, err := json.Marshal(r)
			return b, err == nil, err
		}
	}
	if d.loopback != nil && ip.IsLoopback() {
		return d.loopback, true, nil
	}
	return nil, false, nil
}

// cityRecord is the part of a GeoIP2/GeoLite2 City record edgehost reads.
type cityRecord struct {
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"country"`
	Location struct {
		Latitude  float64 `maxminddb:"latitude"`
		Longitude float64 `maxminddb:"longitude"`
		MetroCode int     `maxminddb:"metro_code"`
		TimeZone  string  `maxminddb:"time_zone"`
	} `maxminddb:"location"`
	Postal struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"postal"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
	ASNumber       uint32 `maxminddb:"autonomous_system_number"`
	ASOrganization string `maxminddb:"autonomous_system_organization"`
	ConnectionType string `maxminddb:"connection_type"`
}

func (d *DB) lookupMMDB(ip netip.Addr) (Record, bool, error) {
	var c cityRecord
	found := false
	for _, db := range []*maxminddb.Reader{d.city, d.asn} {
		if db == nil {
			continue
		}
		res := db.Lookup(ip)
		if err := res.Err(); err != nil {
			return Record{}, false, err
		}
		if !res.Found() {
			continue
		}
		if err := res.Decode(&c); err != nil {
			return Record{}, false, fmt.Errorf("mmdb record for %s: %w", ip, err)
		}
		found = true
	}
	if !found {
		return Record{}, false, nil
	}
	r := Record{
		ASName: c.ASOrganization, ASNumber: c.ASNumber,
		City: c.City.Names["en"], Continent: c.Continent.Code,
		CountryCode: c.Country.ISOCode, CountryName: c.Country.Names["en"],
		Latitude: c.Location.Latitude, Longitude: c.Location.Longitude,
		MetroCode: c.Location.MetroCode, PostalCode: c.Postal.Code,
		ProxyDescription: "?", ProxyType: "?",
	}
	if len(c.Subdivisions) > 0 {
		r.Region = c.Subdivisions[0].ISOCode
	}
	if reg, err := language.ParseRegion(c.Country.ISOCode); err == nil && c.Country.ISOCode != "" {
		r.CountryCode3 = reg.ISO3()
	}
	if c.Location.TimeZone != "" {
		if loc := d.zone(c.Location.TimeZone); loc != nil {
			_, off := d.now().In(loc).Zone()
			r.UTCOffset = hhmm(off)
			r.GMTOffset = r.UTCOffset
		}
	}
	r.ConnSpeed, r.ConnType = connection(c.ConnectionType)
	return r, true, nil
}

// zone returns the time zone named name, loaded once; nil when unknown.
func (d *DB) zone(name string) *time.Location {
	if v, ok := d.zones.Load(name); ok {
		return v.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	d.zones.Store(name, loc)
	return loc
}

// hhmm writes an offset in seconds east of UTC as Fastly does: hours and
// minutes as one number, -700 for UTC-07:00, 530 for UTC+05:30.
func hhmm(sec int) int {
	sign := 1
	if sec < 0 {
		sign, sec = -1, -sec
	}
	return sign * (sec/3600*100 + sec%3600/60)
}

// connection maps a GeoIP2 Connection-Type value onto Fastly's
// conn_speed and conn_type.
func connection(t string) (speed, kind string) {
	switch t {
	case "Dialup":
		return "dialup", "dialup"
	case "Cable/DSL":
		return "broadband", "wired"
	case "Corporate":
		return "t1", "wired"
	case "Cellular":
		return "mobile", "wireless"
	case "Satellite":
		return "satellite", "satellite"
	}
	return "", ""
}
