package hostcall

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/acl"
	"github.com/edgehost/edgehost/internal/device"
	"github.com/edgehost/edgehost/internal/erl"
	"github.com/edgehost/edgehost/internal/geo"
	"github.com/edgehost/edgehost/internal/pool"
	"github.com/edgehost/edgehost/internal/shield"
)

// Services are the platform services of an Env (README.md, "Platform
// services"): ACLs, geolocation, device detection, edge rate limiting and
// shielding sites. Zero fields mean none (geolocation: the loopback
// default only; rate limiting: a store of the Env's own).
type Services struct {
	// ACLs are the ACLs fastly_acl.open finds, by name.
	ACLs map[string]*acl.ACL
	// Geo answers fastly_geo.lookup; nil gives the loopback default only.
	Geo *geo.DB
	// Devices answers fastly_device_detection.lookup; nil knows none.
	Devices *device.DB
	// RateLimits holds the rate counters and penalty boxes. Give every Env
	// of a host the same Store so that all its sandboxes, across deploys,
	// share them; nil gives the Env a Store of its own.
	RateLimits *erl.Store
	// Shields are the shielding sites.
	Shields shield.Sites
}

// services is the Env's part for the platform services.
type services struct {
	Services
	// shieldBackends are the backends reaching the remote shielding
	// sites, by URL, built with the Env (static pools, like the
	// manifest's backends: the operator wrote them).
	shieldBackends map[string]*backend
}

// initServices fills e.svc from cfg. Errors: a shielding site URL whose
// backend cannot be built.
func (e *Env) initServices(cfg Services) error {
	e.svc.Services = cfg
	if e.svc.ACLs == nil {
		e.svc.ACLs = map[string]*acl.ACL{}
	}
	if e.svc.Geo == nil {
		e.svc.Geo, _ = geo.New(geo.Config{})
	}
	if e.svc.RateLimits == nil {
		e.svc.RateLimits = erl.New(nil)
	}
	e.svc.shieldBackends = map[string]*backend{}
	for _, name := range e.svc.Shields.Names() {
		site := e.svc.Shields[name]
		if site.Local {
			continue
		}
		for _, u := range []*url.URL{site.Unencrypted, site.Encrypted} {
			b, err := shieldBackend(u, e.pools)
			if err != nil {
				return fmt.Errorf("shielding site %q: %w", name, err)
			}
			e.svc.shieldBackends[u.String()] = b
		}
	}
	return nil
}

// shieldBackend builds the backend for a shielding site URL.
func shieldBackend(u *url.URL, pools *pool.Manager) (*backend, error) {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	s := pool.Settings{Scheme: u.Scheme, Addr: net.JoinHostPort(u.Hostname(), port)}
	b, err := newBackend(u.String(), false, s, pool.Timeouts{}, pools)
	if err != nil {
		return nil, err
	}
	if u.Path != "" && u.Path != "/" {
		b.pathPrefix = u.EscapedPath()
	}
	return b, nil
}

// ServicesInfo describes an Env's platform services for the admin API and
// the start-up log: names and sizes, never the data.
type ServicesInfo struct {
	ACLs            []NamedSize `json:"acls"`
	Geolocation     geo.Stats   `json:"geolocation"`
	DeviceDetection struct {
		UserAgents int `json:"user_agents"`
	} `json:"device_detection"`
	RateCounters   []erl.Stats  `json:"rate_counters"`
	PenaltyBoxes   []erl.Stats  `json:"penalty_boxes"`
	ShieldingSites []ShieldInfo `json:"shielding_sites"`
}

// NamedSize is a named service and its number of entries.
type NamedSize struct {
	Name    string `json:"name"`
	Entries int    `json:"entries"`
}

// ShieldInfo is one shielding site: local (this host) or remote with its
// two URLs.
type ShieldInfo struct {
	Name        string `json:"name"`
	Local       bool   `json:"local"`
	Unencrypted string `json:"unencrypted,omitempty"`
	Encrypted   string `json:"encrypted,omitempty"`
}

// Services describes the Env's platform services (names and sizes).
func (e *Env) Services() ServicesInfo {
	var info ServicesInfo
	info.ACLs = []NamedSize{}
	for n, a := range e.svc.ACLs {
		info.ACLs = append(info.ACLs, NamedSize{Name: n, Entries: a.Len()})
	}
	sort.Slice(info.ACLs, func(i, j int) bool { return info.ACLs[i].Name < info.ACLs[j].Name })
	info.Geolocation = e.svc.Geo.Stats()
	info.DeviceDetection.UserAgents = e.svc.Devices.Len()
	info.RateCounters, info.PenaltyBoxes = e.svc.RateLimits.Snapshot()
	info.ShieldingSites = []ShieldInfo{}
	for _, n := range e.svc.Shields.Names() {
		s := e.svc.Shields[n]
		si := ShieldInfo{Name: n, Local: s.Local}
		if !s.Local {
			si.Unencrypted, si.Encrypted = s.Unencrypted.String(), s.Encrypted.String()
		}
		info.ShieldingSites = append(info.ShieldingSites, si)
	}
	return info
}

// ipAddr reads an IP address the guest passed: 4 octets (IPv4) or 16
// (IPv6). Errors: inval for another length.
func ipAddr(b []byte) (netip.Addr, error) {
	switch len(b) {
	case 4:
		return netip.AddrFrom4([4]byte(b)), nil
	case 16:
		return netip.AddrFrom16([16]byte(b)), nil
	}
	return netip.Addr{}, statusErr(abi.Inval, "an IP address is 4 or 16 octets, have %d", len(b))
}

func aclImpls() []impl {
	return []impl{
		bindACLOpen(func(c *call, a aclOpenArgs) error {
			l, ok := c.s.env.svc.ACLs[string(a.Name)]
			if !ok {
				return statusErr(abi.None, "no ACL named %q", a.Name)
			}
			return c.putU32(a.ACLOut, c.s.acls.add(l))
		}),
		bindACLLookup(func(c *call, a aclLookupArgs) error {
			l, err := c.s.acls.get(a.ACL)
			if err != nil {
				return err
			}
			ip, err := ipAddr(a.IPOctets)
			if err != nil {
				return err
			}
			e, ok := l.Lookup(ip)
			if !ok {
				return c.putU32(a.ACLErrorOut, abi.ACLErrorNoContent)
			}
			js := e.AppendJSON(make([]byte, 0, 64))
			b := newBody(c.s)
			if _, err := b.write(js, false); err != nil {
				return err
			}
			if err := c.putU32(a.BodyHandleOut, c.s.bodies.add(b)); err != nil {
				return err
			}
			return c.putU32(a.ACLErrorOut, abi.ACLErrorOK)
		}),
	}
}

func geoImpls() []impl {
	return []impl{
		bindGeoLookup(func(c *call, a geoLookupArgs) error {
			ip, err := ipAddr(a.AddrOctets)
			if err != nil {
				return err
			}
			js, ok, err := c.s.env.svc.Geo.Lookup(ip)
			if err != nil {
				c.s.logger().Warn("geolocation lookup failed", "ip", ip, "err", err)
				return statusErr(abi.Error, "%v", err)
			}
			if !ok {
				return statusErr(abi.None, "no geolocation data for %s", ip)
			}
			return c.writeBuf(a.Buf, js)
		}),
		bindDeviceDetectionLookup(func(c *call, a deviceDetectionLookupArgs) error {
			if !utf8.Valid(a.UserAgent) {
				return statusErr(abi.Inval, "user agent is not UTF-8")
			}
			js, ok := c.s.env.svc.Devices.Lookup(string(a.UserAgent))
			if !ok {
				return statusErr(abi.None, "no device data for the user agent")
			}
			return c.writeBuf(a.Buf, js)
		}),
	}
}

// erlErr maps an erl error onto its status: inval for an argument out of
// range, limitexceeded when the host holds too many counters and boxes.
func erlErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, erl.ErrInvalid):
		return statusErr(abi.Inval, "%v", err)
	case errors.Is(err, erl.ErrTooMany):
		return statusErr(abi.LimitExceeded, "%v", err)
	}
	return err
}

// erlNames checks the names of an ERL call (rate counter or penalty box,
// then entry, then any more), at most erl.MaxNameLen bytes each (the
// bindings refuse longer ones). Errors: inval for one that is not UTF-8;
// the length itself is checked by the store.
func erlNames(names ...[]byte) error {
	for _, n := range names {
		if !utf8.Valid(n) {
			return statusErr(abi.Inval, "name is not UTF-8")
		}
	}
	return nil
}

func erlImpls() []impl {
	return []impl{
		bindERLCheckRate(func(c *call, a erlCheckRateArgs) error {
			if err := erlNames(a.Rc, a.Entry, a.Pb); err != nil {
				return err
			}
			blocked, err := c.s.env.svc.RateLimits.CheckRate(string(a.Rc), string(a.Entry), a.Delta, a.Window, a.Limit, string(a.Pb), a.TTL)
			if err != nil {
				return erlErr(err)
			}
			return c.putU32(a.BlockedOut, b2u32(blocked))
		}),
		bindERLRatecounterIncrement(func(c *call, a erlRatecounterIncrementArgs) error {
			if err := erlNames(a.Rc, a.Entry); err != nil {
				return err
			}
			return erlErr(c.s.env.svc.RateLimits.Increment(string(a.Rc), string(a.Entry), a.Delta))
		}),
		bindERLRatecounterLookupRate(func(c *call, a erlRatecounterLookupRateArgs) error {
			if err := erlNames(a.Rc, a.Entry); err != nil {
				return err
			}
			v, err := c.s.env.svc.RateLimits.Rate(string(a.Rc), string(a.Entry), a.Window)
			if err != nil {
				return erlErr(err)
			}
			return c.putU32(a.RateOut, v)
		}),
		bindERLRatecounterLookupCount(func(c *call, a erlRatecounterLookupCountArgs) error {
			if err := erlNames(a.Rc, a.Entry); err != nil {
				return err
			}
			v, err := c.s.env.svc.RateLimits.Count(string(a.Rc), string(a.Entry), a.Duration)
			if err != nil {
				return erlErr(err)
			}
			return c.putU32(a.CountOut, v)
		}),
		bindERLPenaltyboxAdd(func(c *call, a erlPenaltyboxAddArgs) error {
			if err := erlNames(a.Pb, a.Entry); err != nil {
				return err
			}
			return erlErr(c.s.env.svc.RateLimits.PenaltyBoxAdd(string(a.Pb), string(a.Entry), a.TTL))
		}),
		bindERLPenaltyboxHas(func(c *call, a erlPenaltyboxHasArgs) error {
			if err := erlNames(a.Pb, a.Entry); err != nil {
				return err
			}
			has, err := c.s.env.svc.RateLimits.PenaltyBoxHas(string(a.Pb), string(a.Entry))
			if err != nil {
				return erlErr(err)
			}
			return c.putU32(a.HasOut, b2u32(has))
		}),
	}
}

func b2u32(v bool) uint32 {
	if v {
		return 1
	}
	return 0
}

func shieldingImpls() []impl {
	return []impl{
		bindShieldingShieldInfo(func(c *call, a shieldingShieldInfoArgs) error {
			name := string(a.Name)
			info, ok := c.s.env.svc.Shields.Info(name)
			if !ok {
				return statusErr(abi.Inval, "no shielding site named %q", name)
			}
			return c.writeBuf(a.InfoBlock, info)
		}),
		bindShieldingBackendForShield(func(c *call, a shieldingBackendForShieldArgs) error {
			target := string(a.ShieldName)
			mask := a.BackendConfigMask
			if mask&abi.ShieldBackendReserved != 0 {
				return statusErr(abi.Inval, "reserved bit 0 set in the shield backend mask")
			}
			if mask&^abi.ShieldBackendKnownBits != 0 {
				return statusErr(abi.Inval, "unknown bits %#x in the shield backend mask", mask&^abi.ShieldBackendKnownBits)
			}
			var fbt, bbt uint32
			if mask != 0 {
				cfg, ok := c.mem.Read(a.BackendConfiguration, abi.ShieldCfgSize)
				if !ok {
					return statusErr(abi.Inval, "shield backend config outside linear memory")
				}
				u32 := func(off int) uint32 {
					return uint32(cfg[off]) | uint32(cfg[off+1])<<8 | uint32(cfg[off+2])<<16 | uint32(cfg[off+3])<<24
				}
				if mask&abi.ShieldBackendUseCacheKey != 0 {
					ptr, n := u32(abi.ShieldCfgCacheKeyPtr), u32(abi.ShieldCfgCacheKeyLen)
					key, ok := c.mem.Read(ptr, n)
					if !ok || n > maxStringLen || !utf8.Valid(key) {
						return statusErr(abi.Inval, "cache key outside linear memory, too long or not UTF-8")
					}
				}
				if mask&abi.ShieldBackendFirstByteTimeout != 0 {
					fbt = u32(abi.ShieldCfgFirstByteTimeoutMs)
				}
				if mask&abi.ShieldBackendBetweenBytesTimeout != 0 {
					bbt = u32(abi.ShieldCfgBetweenBytesTimeoutMs)
				}
			}
			site, u, encrypted, err := c.s.env.svc.Shields.Target(target)
			if err != nil {
				return statusErr(abi.Inval, "%v", err)
			}
			base := c.s.env.svc.shieldBackends[u.String()]
			which := "unencrypted"
			if encrypted {
				which = "encrypted"
			}
			name := "shield:" + site.Name + ":" + which
			if fbt != 0 || bbt != 0 {
				name += ":" + strconv.FormatUint(uint64(fbt), 10) + ":" + strconv.FormatUint(uint64(bbt), 10)
			}
			if b, ok := c.s.dynamic[name]; !ok {
				b2 := *base
				b2.name = name
				if fbt != 0 {
					b2.timeouts.FirstByte = time.Duration(fbt) * time.Millisecond
				}
				if bbt != 0 {
					b2.timeouts.BetweenBytes = time.Duration(bbt) * time.Millisecond
				}
				if c.s.dynamic == nil {
					c.s.dynamic = map[string]*backend{}
				}
				c.s.dynamic[name] = &b2
			} else if b.pool != base.pool {
				return statusErr(abi.Inval, "backend name %q is taken by a dynamic backend", name)
			}
			return c.writeBuf(a.BackendNameOut, []byte(name))
		}),
	}
}

// String summarises the services for a log line: the ACLs with their
// entry counts, the geolocation sources, the device detection and
// shielding site counts, such as
// "acls=blocklist(3) geolocation=mmdb:GeoLite2-City,addresses:2,loopback device_detection=4 shielding_sites=pdx-or-us(local),bfi-wa-us".
func (i ServicesInfo) String() string {
	var b strings.Builder
	b.WriteString("acls=")
	for k, a := range i.ACLs {
		if k > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s(%d)", a.Name, a.Entries)
	}
	b.WriteString(" geolocation=")
	var geoParts []string
	if i.Geolocation.MMDBType != "" {
		geoParts = append(geoParts, "mmdb:"+i.Geolocation.MMDBType)
	}
	if i.Geolocation.ASNType != "" {
		geoParts = append(geoParts, "asn:"+i.Geolocation.ASNType)
	}
	if i.Geolocation.Addresses > 0 {
		geoParts = append(geoParts, "addresses:"+strconv.Itoa(i.Geolocation.Addresses))
	}
	if i.Geolocation.LoopbackDefault {
		geoParts = append(geoParts, "loopback")
	}
	b.WriteString(strings.Join(geoParts, ","))
	fmt.Fprintf(&b, " device_detection=%d shielding_sites=", i.DeviceDetection.UserAgents)
	for k, s := range i.ShieldingSites {
		if k > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.Name)
		if s.Local {
			b.WriteString("(local)")
		}
	}
	return b.String()
}
