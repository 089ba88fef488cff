package pool

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guesttest/dnstest"
)

// fakeLocal lists a fixed set of interface addresses.
func fakeLocal(cidrs ...string) func() ([]net.Addr, error) {
	return func() ([]net.Addr, error) {
		var out []net.Addr
		for _, c := range cidrs {
			ip, n, err := net.ParseCIDR(c)
			if err != nil {
				return nil, err
			}
			out = append(out, &net.IPNet{IP: ip, Mask: n.Mask})
		}
		return out, nil
	}
}

func mustGuard(t testing.TB, cfg GuardConfig) *Guard {
	t.Helper()
	g, err := NewGuard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestGuardDecisions: which dialled addresses each policy refuses. The
// host's interfaces are 127.0.0.1/8, ::1, 198.51.100.2 (public) and
// fd00::2; its listeners are on ports 7676 and 7677.
func TestGuardDecisions(t *testing.T) {
	listeners := []string{"127.0.0.1:7676", "[::]:7677"}
	policies := map[string]GuardConfig{
		"default":  {Listeners: listeners},
		"localdev": {Listeners: listeners, AllowPrivate: true},
		"allowed": {Listeners: listeners, Allowed: []string{"api.example", "db.example:5432", "10.0.0.0/8",
			"169.254.169.254", "[::1]:8080", "::ffff:192.168.1.0/120"}},
		"none": {Listeners: listeners, Allowed: []string{}},
	}
	const (
		ok  = true
		bad = false
	)
	tests := []struct {
		host string // the target's host: a name, or "" for an IP target
		addr string // the address dialled
		want map[string]bool
	}{
		// This host's listener ports, by every address that reaches them.
		{"", "127.0.0.1:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "127.0.0.1:7676", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "0.0.0.0:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[::]:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[::1]:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "127.3.4.5:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[::ffff:127.0.0.1]:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[::ffff:0.0.0.0]:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[::127.0.0.1]:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[64:ff9b::7f00:1]:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[2002:7f00:1::1]:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "198.51.100.2:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[fd00::2]:7676", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"api.example", "127.0.0.1:7677", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		// The same ports elsewhere are other hosts' ports.
		{"", "203.0.113.5:7677", map[string]bool{"default": ok, "localdev": ok, "allowed": bad, "none": bad}},
		{"", "10.1.1.1:7677", map[string]bool{"default": bad, "localdev": ok, "allowed": ok, "none": bad}},
		// Loopback and this host's own addresses on other ports.
		{"", "127.0.0.1:8080", map[string]bool{"default": bad, "localdev": ok, "allowed": bad, "none": bad}},
		{"", "[::1]:8080", map[string]bool{"default": bad, "localdev": ok, "allowed": ok, "none": bad}},
		{"", "[::1]:8081", map[string]bool{"default": bad, "localdev": ok, "allowed": bad, "none": bad}},
		{"", "0.0.0.0:8080", map[string]bool{"default": bad, "localdev": ok, "allowed": bad, "none": bad}},
		{"", "198.51.100.2:8080", map[string]bool{"default": bad, "localdev": ok, "allowed": bad, "none": bad}},
		{"", "[::ffff:198.51.100.2]:8080", map[string]bool{"default": bad, "localdev": ok, "allowed": bad, "none": bad}},
		// Private ranges.
		{"", "10.0.0.1:80", map[string]bool{"default": bad, "localdev": ok, "allowed": ok, "none": bad}},
		{"", "172.16.0.1:80", map[string]bool{"default": bad, "localdev": ok, "allowed": bad, "none": bad}},
		{"", "192.168.1.1:80", map[string]bool{"default": bad, "localdev": ok, "allowed": ok, "none": bad}},
		{"", "[::ffff:192.168.1.1]:80", map[string]bool{"default": bad, "localdev": ok, "allowed": ok, "none": bad}},
		{"", "100.64.1.1:80", map[string]bool{"default": bad, "localdev": ok, "allowed": bad, "none": bad}},
		{"", "[fd12::1]:80", map[string]bool{"default": bad, "localdev": ok, "allowed": bad, "none": bad}},
		{"", "[64:ff9b::a00:1]:80", map[string]bool{"default": bad, "localdev": ok, "allowed": ok, "none": bad}},
		// Link-local (cloud metadata), multicast, reserved: only if listed.
		{"", "169.254.169.254:80", map[string]bool{"default": bad, "localdev": bad, "allowed": ok, "none": bad}},
		{"", "169.254.1.1:80", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[fe80::1]:80", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[fe80::1%eth0]:80", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "224.0.0.251:80", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "[ff02::1]:80", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "255.255.255.255:80", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		{"", "0.1.2.3:80", map[string]bool{"default": bad, "localdev": bad, "allowed": bad, "none": bad}},
		// Public addresses; names in the allowlist may resolve anywhere but
		// to this host's listeners.
		{"", "203.0.113.5:443", map[string]bool{"default": ok, "localdev": ok, "allowed": bad, "none": bad}},
		{"", "[2001:db8::5]:443", map[string]bool{"default": ok, "localdev": ok, "allowed": bad, "none": bad}},
		{"api.example", "203.0.113.5:443", map[string]bool{"default": ok, "localdev": ok, "allowed": ok, "none": bad}},
		{"API.Example.", "127.0.0.1:8080", map[string]bool{"default": bad, "localdev": ok, "allowed": ok, "none": bad}},
		{"db.example", "10.9.9.9:5432", map[string]bool{"default": bad, "localdev": ok, "allowed": ok, "none": bad}},
		{"db.example", "172.20.9.9:5433", map[string]bool{"default": bad, "localdev": ok, "allowed": bad, "none": bad}},
		{"other.example", "203.0.113.5:443", map[string]bool{"default": ok, "localdev": ok, "allowed": bad, "none": bad}},
	}
	for name, cfg := range policies {
		g := mustGuard(t, cfg)
		g.listLocal = fakeLocal("127.0.0.1/8", "::1/128", "198.51.100.2/24", "fd00::2/64")
		for _, tc := range tests {
			want, listed := tc.want[name]
			if !listed {
				t.Fatalf("%s %s: no expectation for policy %s", tc.host, tc.addr, name)
			}
			err := g.control(tc.host)("tcp", tc.addr, nil)
			if (err == nil) != want {
				t.Errorf("policy %s: dial %s for target host %q: err = %v, want allowed = %v", name, tc.addr, tc.host, err, want)
			}
			if err != nil && !errors.Is(err, ErrDialRefused) {
				t.Errorf("policy %s: %s: %v does not wrap ErrDialRefused", name, tc.addr, err)
			}
		}
	}
}

// TestGuardInterfacesUnlisted: when the interface addresses cannot be
// listed, every address counts as this host's (the check fails closed).
func TestGuardInterfacesUnlisted(t *testing.T) {
	g := mustGuard(t, GuardConfig{Listeners: []string{"127.0.0.1:7677"}})
	g.listLocal = func() ([]net.Addr, error) { return nil, errors.New("no netlink") }
	if err := g.control("")("tcp", "203.0.113.5:7677", nil); err == nil {
		t.Fatal("a listener port was allowed while this host's addresses were unknown")
	}
	if err := g.control("")("tcp", "203.0.113.5:80", nil); err == nil {
		t.Fatal("the default policy allowed an address that may be this host's")
	}
}

// ownListener is a stand-in for this host's admin API: an HTTP server on
// every interface ([::]:0, dual-stack, else 0.0.0.0:0) that counts the
// connections it accepts and the requests it serves.
type ownListener struct {
	srv           *httptest.Server
	conns, served atomic.Int64
	port          string
}

func newOwnListener(t *testing.T) *ownListener {
	t.Helper()
	l := &ownListener{}
	ln, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		if ln, err = net.Listen("tcp", "0.0.0.0:0"); err != nil {
			t.Fatal(err)
		}
	}
	l.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.served.Add(1)
		io.WriteString(w, "admin")
	})}}
	l.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			l.conns.Add(1)
		}
	}
	l.srv.Start()
	t.Cleanup(l.srv.Close)
	_, l.port, _ = net.SplitHostPort(ln.Addr().String())
	return l
}

// waitConns waits (up to 5 s: the server accepts on its own goroutine)
// until l has seen at least n connections, and returns the count then.
func (l *ownListener) waitConns(t *testing.T, n int64) int64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.conns.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	return l.conns.Load()
}

// reachable reports whether a plain dial (no guard) to host reaches l: the
// proof that an address form refused by the guard does lead to it.
func (l *ownListener) reachable(t *testing.T, host string) bool {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort(host, l.port))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// interfaceAddr returns one address of this machine's interfaces that is
// neither loopback nor link-local, or "" if it has none.
func interfaceAddr(t testing.TB) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, _ := netip.AddrFromSlice(n.IP)
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || !ip.IsValid() {
			continue
		}
		return ip.String()
	}
	return ""
}

// TestGuardedPoolRefusesOwnListener: a guarded pool (local development
// policy) reaches a loopback origin but none of the forms that lead to
// this host's listener, which sees no connection at all.
func TestGuardedPoolRefusesOwnListener(t *testing.T) {
	own := newOwnListener(t)
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), originConfig{})
	g := mustGuard(t, GuardConfig{AllowPrivate: true, Listeners: []string{"[::]:" + own.port}})
	m := NewManager(nil)
	t.Cleanup(m.Close)

	legit := m.Pool(Settings{Scheme: "http", Addr: o.addr(), Guard: g})
	mustGet(t, legit, o.url("/"))

	hosts := []string{"127.0.0.1", "127.0.0.2", "0.0.0.0", "::", "::1", "::ffff:127.0.0.1", "localhost"}
	if a := interfaceAddr(t); a != "" {
		hosts = append(hosts, a)
	} else {
		t.Log("this machine has no non-loopback interface address; not testing one")
	}
	for _, h := range hosts {
		t.Run(h, func(t *testing.T) {
			if h != "localhost" && !own.reachable(t, h) {
				t.Skipf("%s does not reach the listener on this machine", h)
			}
			addr := net.JoinHostPort(h, own.port)
			p := m.Pool(Settings{Scheme: "http", Addr: addr, Guard: g})
			_, err := do(t, p, "GET", "http://"+addr+"/v1/modules", "", Timeouts{})
			if !errors.Is(err, ErrDialRefused) {
				t.Fatalf("GET through %s: err = %v, want ErrDialRefused", addr, err)
			}
		})
	}
	// The reachability probes above are the only connections it saw.
	if n := own.served.Load(); n != 0 {
		t.Fatalf("the listener served %d requests through guarded pools", n)
	}
}

// TestGuardedPoolPostConnect: an address of this host that the guard's
// interface list does not show yet (added since it was listed) is caught
// after the connect: both ends of the connection have that address. The
// connection is closed before a byte is written.
func TestGuardedPoolPostConnect(t *testing.T) {
	a := interfaceAddr(t)
	if a == "" {
		t.Skip("this machine has no non-loopback interface address")
	}
	own := newOwnListener(t)
	if !own.reachable(t, a) {
		t.Skipf("%s does not reach the listener", a)
	}
	// The probe's connection is accepted asynchronously: count from after it.
	before := own.waitConns(t, 1)
	for _, cfg := range []GuardConfig{{}, {AllowPrivate: true, Listeners: []string{"[::]:" + own.port}}} {
		g := mustGuard(t, cfg)
		g.listLocal = fakeLocal("127.0.0.1/8", "::1/128") // a stale list
		m := NewManager(nil)
		t.Cleanup(m.Close)
		addr := net.JoinHostPort(a, own.port)
		p := m.Pool(Settings{Scheme: "http", Addr: addr, Guard: g})
		_, err := do(t, p, "GET", "http://"+addr+"/", "", Timeouts{})
		if !errors.Is(err, ErrDialRefused) {
			t.Fatalf("policy %+v: err = %v, want ErrDialRefused", cfg, err)
		}
	}
	if own.waitConns(t, before+1) == before {
		t.Fatal("the listener saw no connection: the Control check refused it, not the post-connect check")
	}
	if n := own.served.Load(); n != 0 {
		t.Fatalf("the listener served %d requests", n)
	}
}

// TestGuardedPoolRebinding: a name whose answers change between lookups
// (DNS rebinding) is checked on each dial, on the address it resolves to
// then; the pool resolves with the Guard's resolver, here a test DNS
// server on loopback that knows only the test's names.
func TestGuardedPoolRebinding(t *testing.T) {
	own := newOwnListener(t)
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }), originConfig{})
	_, oport, _ := net.SplitHostPort(o.addr())
	dns := dnstest.Start(t, map[string][]string{
		"rebind.test":  {"127.0.0.2", "127.0.0.1"},
		"rebind6.test": {"::ffff:127.0.0.1"},
		"origin.test":  {"127.0.0.1"},
		"allowed.test": {"127.0.0.1"},
	})
	for name, cfg := range map[string]GuardConfig{
		"localdev":          {AllowPrivate: true},
		"allowlisted names": {Allowed: []string{"rebind.test", "rebind6.test", "origin.test", "allowed.test"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg.Listeners = []string{"[::]:" + own.port}
			cfg.Resolver = dns.Resolver()
			g := mustGuard(t, cfg)
			m := NewManager(nil)
			t.Cleanup(m.Close)
			legit := m.Pool(Settings{Scheme: "http", Addr: "origin.test.:" + oport, Guard: g})
			mustGet(t, legit, "http://origin.test:"+oport+"/")
			for _, host := range []string{"rebind.test.", "rebind6.test.", "allowed.test."} {
				addr := host + ":" + own.port
				p := m.Pool(Settings{Scheme: "http", Addr: addr, Guard: g})
				for i := range 3 {
					before := dns.Queries(host)
					_, err := do(t, p, "GET", "http://"+addr+"/v1/modules", "", Timeouts{})
					if !errors.Is(err, ErrDialRefused) {
						t.Fatalf("%s, request %d: err = %v, want ErrDialRefused", host, i, err)
					}
					if dns.Queries(host) == before {
						t.Fatalf("%s, request %d: the dial did not resolve the name again", host, i)
					}
				}
			}
		})
	}
	if n := own.conns.Load(); n != 0 {
		t.Fatalf("the listener accepted %d connections", n)
	}
}

// TestGuardKeysPools: guarded and unguarded pools never share, nor do
// pools of two Guards; one Guard's pools are shared.
func TestGuardKeysPools(t *testing.T) {
	m := NewManager(nil)
	t.Cleanup(m.Close)
	g1, g2 := mustGuard(t, GuardConfig{}), mustGuard(t, GuardConfig{})
	s := Settings{Scheme: "http", Addr: "origin.example:80"}
	plain := m.Pool(s)
	s.Guard = g1
	a, b := m.Pool(s), m.Pool(s)
	s.Guard = g2
	c := m.Pool(s)
	if a != b || a == plain || a == c || plain == c {
		t.Fatalf("pools: plain %p, g1 %p and %p, g2 %p", plain, a, b, c)
	}
	if DefaultGuard() != DefaultGuard() {
		t.Fatal("DefaultGuard returns different guards")
	}
}

func TestNewGuardErrors(t *testing.T) {
	for _, cfg := range []GuardConfig{
		{Allowed: []string{"10.0.0.0/33"}},
		{Allowed: []string{""}},
		{Allowed: []string{"host:0"}},
		{Listeners: []string{"7677"}},
		{Listeners: []string{"127.0.0.1:http"}},
	} {
		if _, err := NewGuard(cfg); err == nil {
			t.Errorf("NewGuard(%+v) = nil error", cfg)
		}
	}
}

// BenchmarkGuardDial is the cost of the guard per new origin connection:
// a dial to a loopback listener (accept and close), unguarded and guarded
// (the Control check, and the post-connect look at both ends). The check
// sub-benchmark is the check alone, with the interface list cached; it is
// listed again every localAddrsTTL (the interfaces sub-benchmark).
func BenchmarkGuardDial(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	g := mustGuard(b, GuardConfig{AllowPrivate: true, Listeners: []string{"127.0.0.1:7677"}})
	for _, bc := range []struct {
		name  string
		guard *Guard
	}{{"unguarded", nil}, {"guarded", g}} {
		b.Run(bc.name, func(b *testing.B) {
			m := NewManager(nil)
			defer m.Close()
			p := m.Pool(Settings{Scheme: "http", Addr: ln.Addr().String(), Guard: bc.guard})
			b.ReportAllocs()
			for b.Loop() {
				c, err := p.dial(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				c.retire(reasonShutdown)
			}
		})
	}
	b.Run("check", func(b *testing.B) {
		ctl := g.control("")
		addr := ln.Addr().String()
		b.ReportAllocs()
		for b.Loop() {
			if err := ctl("tcp4", addr, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("interfaces", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if g.refreshLocal() == nil {
				b.Fatal("cannot list interfaces")
			}
		}
	})
}
