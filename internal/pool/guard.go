package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrDialRefused: a guarded pool (Settings.Guard) refused to connect to
// an address its Guard does not allow. The chain names the address dialled
// and the rule; nothing was sent.
var ErrDialRefused = errors.New("pool: address refused by the backend policy")

// localAddrsTTL is how long a Guard trusts its list of the host's
// interface addresses before listing them again. A dial that still reaches
// an address added within that time is caught after the connect: a TCP
// connection to this host has the same IP at both ends (see Pool.dial).
const localAddrsTTL = time.Second

// GuardConfig configures a Guard. The zero value is the policy for a
// shared host: public addresses only.
type GuardConfig struct {
	// Allowed, when non-nil, lists the only targets allowed
	// (allowed_backend_targets in [edgehost]; README.md, "Dynamic backend
	// policy"): host names, host:port, IP addresses, IP:port and CIDR
	// prefixes. A listed target is allowed whatever its address class
	// (loopback, private, link-local); a target listed by name may resolve
	// to any address. An empty non-nil slice allows nothing.
	Allowed []string
	// AllowPrivate opens, when Allowed is nil, loopback, the unspecified
	// address, this host's own addresses and the private ranges (10/8,
	// 172.16/12, 192.168/16, 100.64/10, 198.18/15, fc00::/7, fec0::/10) for
	// local development (allow_private_backends). Link-local stays refused
	// unless listed in Allowed.
	AllowPrivate bool
	// Listeners are this host's own listen addresses (host:port: the admin
	// API and the downstream server). Their ports are refused on every
	// address of this host (loopback, unspecified, interface addresses),
	// whatever Allowed and AllowPrivate say.
	Listeners []string
	// Resolver resolves target names, at dial time and in CheckTarget when
	// Allowed needs it; nil means net.DefaultResolver.
	Resolver *net.Resolver
}

// Guard is the policy of the pools dynamic backends use: which addresses
// they may connect to. Pools whose Settings.Guard is set check every
// address they dial, at dial time (net.Dialer.Control), on the address
// actually dialled after name resolution, so that a name that resolves to
// a public address when a backend is registered and to this host's admin
// API when it is dialled (DNS rebinding) is refused. IPv4-mapped IPv6
// addresses (::ffff:127.0.0.1) count as the IPv4 address they map, and
// IPv6 forms that embed an IPv4 address (NAT64 64:ff9b::/96, 6to4
// 2002::/16, the deprecated IPv4-compatible ::/96) as their embedded
// address.
//
// A Guard's policy is fixed once built; its only changing state is its
// cache of this host's interface addresses (listed again after
// localAddrsTTL). It is safe for concurrent use; pools are keyed by its
// pointer.
type Guard struct {
	allowList    bool                     // Allowed was given (possibly empty)
	names        map[string]bool          // lower case, no trailing dot
	hostPorts    map[string]bool          // name:port, lower case, no trailing dot
	prefixes     []netip.Prefix           // addresses (as /32, /128) and CIDRs
	addrPorts    map[netip.AddrPort]bool  // IP:port
	allowPrivate bool                     //
	ports        map[uint16]bool          // own listener ports
	resolver     *net.Resolver            //
	local        atomic.Pointer[localSet] // this host's interface addresses
	listLocal    func() ([]net.Addr, error)
}

// localSet is a snapshot of the host's interface addresses.
type localSet struct {
	at    time.Time
	addrs map[netip.Addr]bool
}

// NewGuard builds a Guard. Errors: an Allowed entry that is not a host
// name, host:port, IP address or CIDR prefix, or a Listeners entry that is
// not host:port.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	g := &Guard{
		allowList:    cfg.Allowed != nil,
		names:        map[string]bool{},
		hostPorts:    map[string]bool{},
		addrPorts:    map[netip.AddrPort]bool{},
		allowPrivate: cfg.AllowPrivate,
		ports:        map[uint16]bool{},
		resolver:     cfg.Resolver,
		listLocal:    net.InterfaceAddrs,
	}
	if g.resolver == nil {
		g.resolver = net.DefaultResolver
	}
	for _, a := range cfg.Allowed {
		if err := g.allow(a); err != nil {
			return nil, fmt.Errorf("allowed target %q: %w", a, err)
		}
	}
	for _, l := range cfg.Listeners {
		_, port, err := net.SplitHostPort(l)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", l, err)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("listener %q: bad port", l)
		}
		g.ports[uint16(n)] = true
	}
	return g, nil
}

func (g *Guard) allow(a string) error {
	if strings.Contains(a, "/") {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return err
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		g.prefixes = append(g.prefixes, p.Masked())
		return nil
	}
	if ap, err := netip.ParseAddrPort(a); err == nil {
		g.addrPorts[netip.AddrPortFrom(canonical(ap.Addr()), ap.Port())] = true
		return nil
	}
	if ip, err := netip.ParseAddr(a); err == nil {
		ip = canonical(ip)
		g.prefixes = append(g.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	if h, port, err := net.SplitHostPort(a); err == nil {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return fmt.Errorf("bad port %q", port)
		}
		g.hostPorts[normName(h)+":"+port] = true
		return nil
	}
	if a == "" {
		return errors.New("empty target")
	}
	g.names[normName(a)] = true
	return nil
}

// defaultGuard is DefaultGuard's value; its policy never changes (only its
// interface address cache does).
var defaultGuard = func() *Guard {
	g, _ := NewGuard(GuardConfig{})
	return g
}()

// DefaultGuard returns the Guard of GuardConfig{}: public addresses only,
// no listener ports known, net.DefaultResolver. Every call returns the same
// Guard, so pools of backends using it are shared.
func DefaultGuard() *Guard { return defaultGuard }

// Resolver returns the resolver guarded pools dial names with.
func (g *Guard) Resolver() *net.Resolver { return g.resolver }

// CheckTarget reports whether host:port may be registered as a dynamic
// backend, as far as can be told before dialling; nil does not promise
// the dial will be allowed (names are checked at dial time, on what they
// resolve to then). host is a name or an IP address without brackets. It
// resolves host only when Allowed has address entries and does not list
// the name itself; then at least one of its addresses must be allowed.
// Errors wrap ErrDialRefused and name the rule.
func (g *Guard) CheckTarget(ctx context.Context, host string, port uint16) error {
	hostport := net.JoinHostPort(host, strconv.Itoa(int(port)))
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := g.check("", port, ip, false); err != nil {
			return fmt.Errorf("%w: target %s: %w", ErrDialRefused, hostport, err)
		}
		return nil
	}
	if numericShorthand(host) {
		return fmt.Errorf("%w: target %s: %q is an IPv4 address in a shorthand form; write the address in full", ErrDialRefused, hostport, host)
	}
	if !g.allowList || g.nameAllowed(host, port) {
		return nil // checked at dial time
	}
	if len(g.prefixes) == 0 && len(g.addrPorts) == 0 {
		return fmt.Errorf("%w: target %s is not in allowed_backend_targets", ErrDialRefused, hostport)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%w: target %s: resolve %q: %w", ErrDialRefused, hostport, host, err)
	}
	var first error
	for _, ip := range ips {
		err := g.check(host, port, ip, false)
		if err == nil {
			return nil
		}
		if first == nil {
			first = fmt.Errorf("%s resolves to %s: %w", host, ip, err)
		}
	}
	if first == nil {
		first = fmt.Errorf("%s has no address", host)
	}
	return fmt.Errorf("%w: target %s: %w", ErrDialRefused, hostport, first)
}

// control returns the net.Dialer.Control of a dial to a backend whose
// target host is host (a name, or an IP address): it refuses every
// address the Guard does not allow.
func (g *Guard) control(host string) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: dialled address %q: %w", ErrDialRefused, address, err)
		}
		if err := g.check(host, ap.Port(), ap.Addr(), false); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrDialRefused, address, err)
		}
		return nil
	}
}

// check decides one address: ip:port dialled for target host (a name, ""
// or an IP literal). local forces ip to count as this host's own.
func (g *Guard) check(host string, port uint16, ip netip.Addr, local bool) error {
	raw := ip.WithZone("").Unmap()
	ip = canonical(ip)
	local = local || g.isLocal(ip) || g.isLocal(raw)
	if local && g.ports[port] {
		return fmt.Errorf("port %d of this host is one of its own listeners", port)
	}
	if g.allowList {
		if g.nameAllowed(host, port) || g.addrAllowed(ip, port) || g.addrAllowed(raw, port) {
			return nil
		}
		return errors.New("not in allowed_backend_targets")
	}
	class := classify(ip)
	if local && class == classPublic {
		class = classLocal
	}
	switch class {
	case classPublic:
		return nil
	case classLoopback, classPrivate, classLocal:
		if g.allowPrivate {
			return nil
		}
		return fmt.Errorf("%s is a %s address; dynamic backends reach public addresses only unless allow_private_backends is set or the target is in allowed_backend_targets", ip, class)
	}
	return fmt.Errorf("%s is a %s address; list it in allowed_backend_targets to allow it", ip, class)
}

func (g *Guard) nameAllowed(host string, port uint16) bool {
	if host == "" {
		return false
	}
	n := normName(host)
	return g.names[n] || g.hostPorts[n+":"+strconv.Itoa(int(port))]
}

func (g *Guard) addrAllowed(ip netip.Addr, port uint16) bool {
	if g.addrPorts[netip.AddrPortFrom(ip, port)] {
		return true
	}
	for _, p := range g.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// isLocal reports whether ip (canonical) is an address of this host:
// unspecified (dialling it reaches this host), 0.0.0.0/8, loopback, or an
// address of one of its interfaces. If the interfaces cannot be listed,
// every address counts as local (the check fails closed).
func (g *Guard) isLocal(ip netip.Addr) bool {
	if ip.IsUnspecified() || ip.IsLoopback() || (ip.Is4() && ip.As4()[0] == 0) {
		return true
	}
	set := g.local.Load()
	if set == nil || time.Since(set.at) > localAddrsTTL {
		set = g.refreshLocal()
		if set == nil {
			return true
		}
	}
	return set.addrs[ip]
}

// refreshLocal lists the interface addresses again; nil if that fails.
func (g *Guard) refreshLocal() *localSet {
	addrs, err := g.listLocal()
	if err != nil {
		return nil
	}
	set := &localSet{at: time.Now(), addrs: make(map[netip.Addr]bool, len(addrs))}
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		}
		if na, ok := netip.AddrFromSlice(ip); ok {
			set.addrs[canonical(na)] = true
		}
	}
	g.local.Store(set)
	return set
}

// canonical returns ip without zone, IPv4-mapped addresses as IPv4, and
// the IPv4 address embedded in NAT64, 6to4 and IPv4-compatible forms.
func canonical(ip netip.Addr) netip.Addr {
	ip = ip.WithZone("").Unmap()
	if !ip.Is6() {
		return ip
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip), v4compat.Contains(ip) && !ip.IsUnspecified() && !ip.IsLoopback():
		return netip.AddrFrom4([4]byte(b[12:16]))
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6]))
	}
	return ip
}

// addrClass is the kind of address a dial goes to.
type addrClass int

const (
	classPublic addrClass = iota
	classLoopback
	classPrivate
	classLocal // an address of one of this host's interfaces
	classLinkLocal
	classUnroutable // multicast, broadcast, reserved, discard
)

func (c addrClass) String() string {
	return [...]string{"public", "loopback", "private", "this host's own", "link-local", "non-unicast or reserved"}[c]
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	v4compat  = netip.MustParsePrefix("::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")

	// privateRanges are opened by AllowPrivate besides loopback.
	privateRanges = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),  // shared address space (RFC 6598)
		netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking (RFC 2544)
		netip.MustParsePrefix("fc00::/7"),       // unique local
		netip.MustParsePrefix("fec0::/10"),      // site-local (deprecated)
		netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215)
	}
	// unroutable ranges are refused unless listed in Allowed.
	unroutable = []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("240.0.0.0/4"), // reserved, and broadcast
		netip.MustParsePrefix("100::/64"),    // discard
	}
)

// classify returns ip's class; ip is canonical.
func classify(ip netip.Addr) addrClass {
	switch {
	case ip.IsLoopback() || ip.IsUnspecified():
		return classLoopback
	case ip.IsLinkLocalUnicast():
		return classLinkLocal
	case ip.IsMulticast():
		return classUnroutable
	}
	for _, p := range unroutable {
		if p.Contains(ip) {
			return classUnroutable
		}
	}
	for _, p := range privateRanges {
		if p.Contains(ip) {
			return classPrivate
		}
	}
	return classPublic
}

// normName lower-cases a host name and drops a trailing dot.
func normName(h string) string { return strings.ToLower(strings.TrimSuffix(h, ".")) }

// numericShorthand reports whether host, not a canonical IP address, is
// one that inet_aton-style parsers (getaddrinfo, which Go's cgo resolver
// uses) may read as an IPv4 address: "127.1", "0x7f.1", "2130706433",
// "0177.0.0.1". Its last label is all digits or 0x and hex digits, which a
// DNS name's top-level label never is.
func numericShorthand(host string) bool {
	h := strings.TrimSuffix(host, ".")
	last := h[strings.LastIndexByte(h, '.')+1:]
	if last == "" {
		return false
	}
	digits := "0123456789"
	if l := strings.ToLower(last); strings.HasPrefix(l, "0x") {
		last, digits = l[2:], "0123456789abcdef"
	}
	for _, r := range last {
		if !strings.ContainsRune(digits, r) {
			return false
		}
	}
	return true
}
