// Package dnstest is a DNS server on loopback for tests: it answers A and
// AAAA queries for the names it was given and refuses every other name
// (NXDOMAIN). It never forwards a query, so a test using its Resolver
// resolves no outside name.
package dnstest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Server is a running test DNS server.
type Server struct {
	pc net.PacketConn

	mu     sync.Mutex
	v4, v6 map[string][]netip.Addr // by lower-case FQDN
	nA     map[string]int          // A queries per FQDN
	nAAAA  map[string]int          // AAAA queries per FQDN
}

// Start serves answers on 127.0.0.1 (UDP) until the test ends. answers maps
// a name (a trailing dot is optional) to its addresses, in turn: the n-th A
// query of a name gets its n-th IPv4 address, the last one repeats; AAAA
// queries take the IPv6 addresses the same way. A name with no address of
// a type gets an empty answer for it.
func Start(t testing.TB, answers map[string][]string) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{pc: pc, v4: map[string][]netip.Addr{}, v6: map[string][]netip.Addr{}, nA: map[string]int{}, nAAAA: map[string]int{}}
	for name, addrs := range answers {
		fqdn := fqdn(name)
		s.v4[fqdn], s.v6[fqdn] = []netip.Addr{}, []netip.Addr{}
		for _, a := range addrs {
			ip := netip.MustParseAddr(a)
			if ip.Is4() {
				s.v4[fqdn] = append(s.v4[fqdn], ip)
			} else {
				s.v6[fqdn] = append(s.v6[fqdn], ip)
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return s
}

// Addr is the server's UDP address.
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// Resolver returns a resolver that sends every query to s (Go's own
// resolver; /etc/hosts is still read first, so localhost resolves).
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.Addr())
	}}
}

// Queries returns how many A and AAAA queries for name s has answered.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nA[fqdn(name)] + s.nAAAA[fqdn(name)]
}

// QueriesA returns how many A queries for name s has answered.
func (s *Server) QueriesA(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nA[fqdn(name)]
}

func fqdn(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) + "." }

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if out, ok := s.answer(buf[:n]); ok {
			s.pc.WriteTo(out, from)
		}
	}
}

// answer builds the response to one query message.
func (s *Server) answer(q []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, false
	}
	question, err := p.Question()
	if err != nil {
		return nil, false
	}
	name := strings.ToLower(question.Name.String())
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired}
	var addrs []netip.Addr
	s.mu.Lock()
	v4, known := s.v4[name]
	v6 := s.v6[name]
	switch {
	case !known:
		rh.RCode = dnsmessage.RCodeNameError
	case question.Type == dnsmessage.TypeA:
		addrs = take(s.nA, name, v4)
	case question.Type == dnsmessage.TypeAAAA:
		addrs = take(s.nAAAA, name, v6)
	}
	s.mu.Unlock()
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, false
	}
	if err := b.Question(question); err != nil {
		return nil, false
	}
	if err := b.StartAnswers(); err != nil {
		return nil, false
	}
	for _, a := range addrs {
		rr := dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 0}
		if a.Is4() {
			err = b.AResource(rr, dnsmessage.AResource{A: a.As4()})
		} else {
			err = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return nil, false
		}
	}
	out, err := b.Finish()
	return out, err == nil
}

// take counts a query of name in count and returns its answer from list
// (in turn, the last repeating); s.mu is held.
func take(count map[string]int, name string, list []netip.Addr) []netip.Addr {
	i := count[name]
	count[name]++
	if len(list) == 0 {
		return nil
	}
	return list[min(i, len(list)-1) : min(i, len(list)-1)+1]
}
