package pool

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/guesttest"
)

func TestReuse(t *testing.T) {
	o := newOrigin(t, okHandler, originConfig{})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr()})
	for range 200 {
		mustGet(t, p, o.url("/"))
	}
	if accepted, _, _ := o.counts(); accepted != 1 {
		t.Errorf("origin accepted %d connections for 200 sequential requests, want 1", accepted)
	}
	st := p.Stats()
	want := Stats{Opened: 1, Reused: 199, Requests: 200, Idle: 1}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
}

func TestManagerKeysPoolsByEffectiveSettings(t *testing.T) {
	base := Settings{Scheme: "http", Addr: "127.0.0.1:1"}
	withKA := func(k Keepalive) Settings { s := base; s.Keepalive = k; return s }
	tests := []struct {
		name  string
		a, b  Settings
		share bool
	}{
		{"identical", base, base, true},
		{"zero keepalive equals the defaults", base, withKA(Keepalive{
			HTTPKeepaliveTime: DefaultHTTPKeepaliveTime, TCPIdle: DefaultTCPKeepaliveIdle,
			TCPInterval: DefaultTCPKeepaliveInterval, TCPCount: DefaultTCPKeepaliveCount}), true},
		{"TCP fields ignored when TCP keepalive is off",
			withKA(Keepalive{TCPDisabled: true}), withKA(Keepalive{TCPDisabled: true, TCPIdle: 7 * time.Second}), true},
		{"TLS settings ignored for http", base, func() Settings { s := base; s.TLS.CertHostname = "x"; return s }(), true},
		{"TCP idle rounded up to whole seconds",
			withKA(Keepalive{TCPIdle: 1500 * time.Millisecond}), withKA(Keepalive{TCPIdle: 2 * time.Second}), true},
		{"different HTTP keepalive time", base, withKA(Keepalive{HTTPKeepaliveTime: 2 * time.Second}), false},
		{"different TCP interval", base, withKA(Keepalive{TCPInterval: 3 * time.Second}), false},
		{"TCP keepalive off", base, withKA(Keepalive{TCPDisabled: true}), false},
		{"different max_use", base, func() Settings { s := base; s.Limits.MaxUse = 3; return s }(), false},
		{"dont_pool", base, func() Settings { s := base; s.DontPool = true; return s }(), false},
		{"different address", base, func() Settings { s := base; s.Addr = "127.0.0.1:2"; return s }(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewManager(nil)
			defer m.Close()
			pa, pb := m.Pool(tt.a), m.Pool(tt.b)
			if got := pa == pb; got != tt.share {
				t.Errorf("shared pool = %v, want %v", got, tt.share)
			}
			if got, want := len(m.Pools()), map[bool]int{true: 1, false: 2}[tt.share]; got != want {
				t.Errorf("Pools() has %d pools, want %d", got, want)
			}
			if pa.Settings() != tt.a.Effective() {
				t.Errorf("Settings() = %+v, want the effective settings %+v", pa.Settings(), tt.a.Effective())
			}
		})
	}
}

func TestManagerPoolsSnapshot(t *testing.T) {
	o := newOrigin(t, okHandler, originConfig{})
	m := NewManager(nil)
	defer m.Close()
	b := m.Pool(Settings{Scheme: "http", Addr: "127.0.0.2:9"})
	a := m.Pool(Settings{Scheme: "http", Addr: o.addr()})
	a2 := m.Pool(Settings{Scheme: "http", Addr: o.addr(), DontPool: true})
	mustGet(t, a, o.url("/"))
	mustGet(t, a, o.url("/"))
	snaps := m.Pools()
	if len(snaps) != 3 {
		t.Fatalf("Pools() = %d pools, want 3", len(snaps))
	}
	// Ordered by address, then creation.
	for i, want := range []*Pool{a, a2, b} {
		if snaps[i].ID != want.id || snaps[i].Settings != want.Settings() {
			t.Errorf("Pools()[%d] = pool %d %s, want pool %d", i, snaps[i].ID, snaps[i].Settings.Addr, want.id)
		}
	}
	if st := snaps[0].Stats; st.Requests != 2 || st.Opened != 1 || st.Reused != 1 {
		t.Errorf("snapshot stats = %+v, want 2 requests on 1 connection", st)
	}
}

func TestHTTPKeepaliveTime(t *testing.T) {
	o := newOrigin(t, okHandler, originConfig{})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr(),
		Keepalive: Keepalive{HTTPKeepaliveTime: time.Second}})
	mustGet(t, p, o.url("/"))
	e := o.awaitEnd(3 * time.Second)
	if !e.byHost {
		t.Fatal("origin closed the connection; want the host to close it")
	}
	if idle := e.at.Sub(e.lastWrite); idle < time.Second || idle > 2*time.Second {
		t.Errorf("host closed the idle connection %v after the last response, want between 1s and 2s", idle)
	}
	mustGet(t, p, o.url("/"))
	if accepted, _, _ := o.counts(); accepted != 2 {
		t.Errorf("origin accepted %d connections, want a new one after the idle close", accepted)
	}
	st := p.Stats()
	if st.Closed.IdleTimeout != 1 || st.Opened != 2 || st.Reused != 0 {
		t.Errorf("stats = %+v, want 2 opened, 1 closed for idle timeout", st)
	}
	checkBalance(t, p)
}

func TestDontPool(t *testing.T) {
	o := newOrigin(t, okHandler, originConfig{})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr(), DontPool: true})
	const n = 5
	for i := range n {
		mustGet(t, p, o.url("/"))
		// Each connection is closed after its request, before the next.
		e := o.awaitEnd(3 * time.Second)
		if e.id != i+1 {
			t.Errorf("connection %d ended, want %d", e.id, i+1)
		}
	}
	if accepted, _, _ := o.counts(); accepted != n {
		t.Errorf("origin accepted %d connections for %d requests, want %d", accepted, n, n)
	}
	st := awaitStats(t, p, "5 closed", func(st Stats) bool { return st.Closed.Total() == n })
	if st.Opened != n || st.Reused != 0 || st.Closed.DontPool != n {
		t.Errorf("stats = %+v, want %d opened and closed for dont_pool, none reused", st, n)
	}
	checkBalance(t, p)
}

func TestMaxConnections(t *testing.T) {
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(2 * time.Millisecond) // hold the connection a little
		io.WriteString(w, "ok")
	}), originConfig{})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr(), Limits: Limits{MaxConnections: 4}})
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 64 {
		wg.Go(func() {
			if got, err := do(t, p, "GET", o.url("/"), "", Timeouts{Connect: 10 * time.Second}); err != nil || got != "ok" {
				t.Errorf("request failed: %q, %v", got, err)
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if _, _, maxOpen := o.counts(); maxOpen > 4 {
		t.Errorf("origin saw %d connections open at once, want at most 4", maxOpen)
	}
	st := p.Stats()
	if st.Opened > 4 || st.Requests != 64 || st.Waits == 0 {
		t.Errorf("stats = %+v, want at most 4 opened, 64 requests, some waits", st)
	}
	checkBalance(t, p)
}

func TestPoolExhausted(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}), originConfig{})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr(), Limits: Limits{MaxConnections: 1}})

	slow := make(chan error, 1)
	go func() {
		_, err := do(t, p, "GET", o.url("/slow"), "", Timeouts{})
		slow <- err
	}()
	<-entered
	const connect = 100 * time.Millisecond
	start := time.Now()
	_, err := do(t, p, "GET", o.url("/"), "", Timeouts{Connect: connect})
	waited := time.Since(start)
	if !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("request beyond max_connections: err = %v, want ErrPoolExhausted", err)
	}
	if waited < connect || waited > connect+time.Second {
		t.Errorf("waited %v for a connection, want about the connect timeout %v", waited, connect)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Errorf("slow request: %v", err)
	}
	mustGet(t, p, o.url("/"))
	st := p.Stats()
	if st.Opened != 1 || st.Waits != 1 || st.Requests != 3 {
		t.Errorf("stats = %+v, want 1 opened, 1 wait, 3 requests", st)
	}
	checkBalance(t, p)
}

func TestMaxUse(t *testing.T) {
	var mu sync.Mutex
	var closeAsked []bool
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		closeAsked = append(closeAsked, r.Close)
		mu.Unlock()
		io.WriteString(w, "ok")
	}), originConfig{})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr(), Limits: Limits{MaxUse: 3}})
	for range 9 {
		mustGet(t, p, o.url("/"))
	}
	if accepted, _, _ := o.counts(); accepted != 3 {
		t.Errorf("origin accepted %d connections for 9 requests with max_use 3, want 3", accepted)
	}
	mu.Lock()
	for i, c := range closeAsked {
		if want := i%3 == 2; c != want {
			t.Errorf("request %d: Connection: close = %v, want %v", i+1, c, want)
		}
	}
	mu.Unlock()
	st := awaitStats(t, p, "3 closed for max_use", func(st Stats) bool { return st.Closed.MaxUse == 3 })
	if st.Opened != 3 || st.Reused != 6 || st.Closed.Total() != 3 {
		t.Errorf("stats = %+v, want 3 opened, 6 reused, 3 closed for max_use", st)
	}
	checkBalance(t, p)
}

func TestMaxLifetime(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		o := newOrigin(t, okHandler, originConfig{})
		const lifetime = 300 * time.Millisecond
		p := testPool(t, Settings{Scheme: "http", Addr: o.addr(), Limits: Limits{MaxLifetime: lifetime}})
		start := time.Now()
		mustGet(t, p, o.url("/"))
		e := o.awaitEnd(3 * time.Second)
		if age := e.at.Sub(start); !e.byHost || age < lifetime || age > lifetime+time.Second {
			t.Errorf("connection closed (by host: %v) at age %v, want closed by the host at about %v", e.byHost, age, lifetime)
		}
		mustGet(t, p, o.url("/"))
		if accepted, _, _ := o.counts(); accepted != 2 {
			t.Errorf("origin accepted %d connections, want 2", accepted)
		}
		if st := p.Stats(); st.Closed.Lifetime != 1 || st.Reused != 0 {
			t.Errorf("stats = %+v, want 1 closed for lifetime, none reused", st)
		}
		checkBalance(t, p)
	})
	t.Run("expires during a request", func(t *testing.T) {
		const lifetime = 100 * time.Millisecond
		o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(lifetime + 50*time.Millisecond) // outlive the lifetime
			io.WriteString(w, "ok")
		}), originConfig{})
		p := testPool(t, Settings{Scheme: "http", Addr: o.addr(), Limits: Limits{MaxLifetime: lifetime}})
		mustGet(t, p, o.url("/"))
		mustGet(t, p, o.url("/"))
		if accepted, _, _ := o.counts(); accepted != 2 {
			t.Errorf("origin accepted %d connections, want 2 (not reused past its lifetime)", accepted)
		}
		st := awaitStats(t, p, "2 closed for lifetime", func(st Stats) bool { return st.Closed.Lifetime == 2 })
		if st.Reused != 0 {
			t.Errorf("stats = %+v, want nothing reused", st)
		}
		checkBalance(t, p)
	})
}

func TestTimeouts(t *testing.T) {
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/headers-late":
			<-r.Context().Done()
		case "/body-stalls":
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			io.WriteString(w, "ok")
		}
	}), originConfig{})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr()})
	const short = 100 * time.Millisecond
	tests := []struct {
		path string
		to   Timeouts
		want error
	}{
		{"/headers-late", Timeouts{FirstByte: short}, ErrFirstByteTimeout},
		{"/body-stalls", Timeouts{BetweenBytes: short}, ErrBetweenBytesTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			before := p.Stats()
			start := time.Now()
			got, err := do(t, p, "GET", o.url(tt.path), "", tt.to)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if d := time.Since(start); d < short || d > short+time.Second {
				t.Errorf("failed after %v, want about %v", d, short)
			}
			if tt.want == ErrBetweenBytesTimeout && got != "first" {
				t.Errorf("body read before the stall = %q, want %q", got, "first")
			}
			mustGet(t, p, o.url("/"))
			st := awaitStats(t, p, "one more error close", func(st Stats) bool {
				return st.Closed.Error == before.Closed.Error+1
			})
			if st.Idle != 1 || st.InUse != 0 {
				t.Errorf("stats = %+v, want 1 idle connection", st)
			}
			checkBalance(t, p)
		})
	}
}

func TestConnectErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name string
		s    Settings
		want []error
	}{
		{"refused", Settings{Scheme: "http", Addr: closedAddr},
			[]error{ErrConnectionRefused, syscall.ECONNREFUSED}},
		// Not a valid host name: the resolver fails without any query.
		{"dns", Settings{Scheme: "http", Addr: "bad!name:80"}, []error{ErrDNS}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, tt.s)
			_, err := do(t, p, "GET", "http://"+tt.s.Addr+"/", "", Timeouts{})
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v, want %v", err, w)
				}
			}
			if st := p.Stats(); st.Opened != 0 || st.Requests != 1 {
				t.Errorf("stats = %+v, want 1 request, nothing opened", st)
			}
		})
	}
	t.Run("dns error detail", func(t *testing.T) {
		p := testPool(t, Settings{Scheme: "http", Addr: "bad!name:80"})
		_, err := do(t, p, "GET", "http://x/", "", Timeouts{})
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) {
			t.Errorf("err = %v, want a *net.DNSError in the chain", err)
		}
	})
}

func TestTLS(t *testing.T) {
	var mu sync.Mutex
	var sni string
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sni = r.TLS.ServerName
		mu.Unlock()
		io.WriteString(w, "ok "+r.Host)
	}), originConfig{tls: true})
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.srv.Certificate().Raw}))
	base := Settings{Scheme: "https", Addr: o.addr(), TLS: TLS{CACertPEM: caPEM, CertHostname: "example.com"}}
	with := func(f func(*Settings)) Settings { s := base; f(&s); return s }
	tests := []struct {
		name    string
		s       Settings
		wantErr error
		wantSNI string
		host    string
	}{
		// No SNI is sent for an IP address.
		{"cert host", base, nil, "", "ok example.com"},
		{"host override is the SNI name", with(func(s *Settings) { s.HostOverride = "www.example.com" }),
			nil, "www.example.com", "ok www.example.com"},
		{"explicit SNI name", with(func(s *Settings) { s.TLS.SNIHostname = "sni.example" }), nil, "sni.example", "ok example.com"},
		{"no SNI", with(func(s *Settings) { s.TLS.NoSNI = true; s.TLS.SNIHostname = "sni.example" }), nil, "", "ok example.com"},
		{"cert valid for the IP when no cert host", with(func(s *Settings) { s.TLS.CertHostname = "" }), nil, "", "ok example.com"},
		{"wrong cert host", with(func(s *Settings) { s.TLS.CertHostname = "other.test" }), ErrTLS, "", ""},
		{"untrusted root", with(func(s *Settings) { s.TLS.CACertPEM = "" }), ErrTLS, "", ""},
		{"bad CA PEM", with(func(s *Settings) { s.TLS.CACertPEM = "junk" }), ErrTLS, "", ""},
		{"version mismatch", with(func(s *Settings) {
			s.TLS.MinVersion, s.TLS.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		}), ErrTLS, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, tt.s)
			req, _ := http.NewRequest("GET", "https://example.com/", nil)
			// A long connect timeout: the first use of the system roots loads them.
			got, err := send(p, req, Timeouts{Connect: 10 * time.Second})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				checkBalance(t, p)
				return
			}
			if err != nil || got != tt.host {
				t.Fatalf("got %q, %v; want %q", got, err, tt.host)
			}
			mu.Lock()
			defer mu.Unlock()
			if sni != tt.wantSNI {
				t.Errorf("origin saw SNI %q, want %q", sni, tt.wantSNI)
			}
		})
	}
}

func TestKeepAliveHeaderRetiresEarly(t *testing.T) {
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Keep-Alive", "timeout=1, max=100")
		io.WriteString(w, "ok")
	}), originConfig{idleTimeout: time.Second})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr(),
		Keepalive: Keepalive{HTTPKeepaliveTime: 10 * time.Second}})
	mustGet(t, p, o.url("/"))
	e := o.awaitEnd(3 * time.Second)
	if !e.byHost {
		t.Fatal("the origin closed the idle connection; want the host to retire it first")
	}
	if idle := e.at.Sub(e.lastWrite); idle >= time.Second {
		t.Errorf("host kept the connection idle %v, want less than the origin's 1s", idle)
	}
	mustGet(t, p, o.url("/"))
	st := p.Stats()
	if st.Closed.OriginIdleTimeout != 1 || st.Opened != 2 {
		t.Errorf("stats = %+v, want 1 closed for the origin's idle timeout, 2 opened", st)
	}
	checkBalance(t, p)
}

func TestLearnsOriginIdleTimeout(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) { testLearnsOriginIdleTimeout(t, useTLS) })
	}
}

func testLearnsOriginIdleTimeout(t *testing.T, useTLS bool) {
	const originIdle = 400 * time.Millisecond
	o := newOrigin(t, okHandler, originConfig{idleTimeout: originIdle, tls: useTLS})
	s := o.settings()
	s.Keepalive.HTTPKeepaliveTime = 10 * time.Second
	p := testPool(t, s)
	mustGet(t, p, o.url("/"))
	if e := o.awaitEnd(3 * time.Second); e.byHost {
		t.Fatal("the host closed the first connection; want the origin to close it")
	}
	awaitStats(t, p, "origin close seen", func(st Stats) bool { return st.Closed.OriginClose == 1 })
	mustGet(t, p, o.url("/"))
	e := o.awaitEnd(3 * time.Second)
	if !e.byHost {
		t.Fatal("the origin closed the second connection; want the host to retire it first")
	}
	if idle := e.at.Sub(e.lastWrite); idle >= originIdle {
		t.Errorf("host kept the second connection idle %v, want less than the origin's %v", idle, originIdle)
	}
	st := awaitStats(t, p, "one early retirement", func(st Stats) bool { return st.Closed.OriginIdleTimeout == 1 })
	if st.Opened != 2 {
		t.Errorf("stats = %+v, want 2 opened", st)
	}
	checkBalance(t, p)
}

// TestStaleRaceRetry has the origin read the second request on the first
// connection and close it without answering: what a client sees when its
// request crosses the origin's idle close. Idempotent requests with a
// replayable body are retried on another connection; a POST is not.
func TestStaleRaceRetry(t *testing.T) {
	tests := []struct {
		method     string
		body       string
		noGetBody  bool
		header     string
		wantErr    error
		wantTries  uint64 // Stats.Retries
		wantAccept int
	}{
		{method: "GET", wantTries: 1, wantAccept: 2}, // the Transport retries
		{method: "PUT", body: "data", wantTries: 1, wantAccept: 2},
		{method: "DELETE", wantTries: 1, wantAccept: 2},
		{method: "POST", body: "data", header: "Idempotency-Key", wantTries: 1, wantAccept: 2},
		{method: "POST", body: "data", wantErr: ErrConnectionTerminated, wantAccept: 1},
		{method: "PUT", body: "data", noGetBody: true, wantErr: ErrConnectionTerminated, wantAccept: 1},
	}
	for _, tt := range tests {
		for _, useTLS := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s body=%q noGetBody=%v %s tls=%v", tt.method, tt.body, tt.noGetBody, tt.header, useTLS), func(t *testing.T) {
				var mu sync.Mutex
				perConn := map[string]int{} // requests per connection (remote address)
				o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					mu.Lock()
					perConn[r.RemoteAddr]++
					n := perConn[r.RemoteAddr]
					mu.Unlock()
					if r.URL.Path == "/drop" && n == 2 {
						c, _, err := w.(http.Hijacker).Hijack()
						if err == nil {
							c.Close()
						}
						return
					}
					io.WriteString(w, r.Method+" "+string(b))
				}), originConfig{tls: useTLS})
				p := testPool(t, o.settings())
				if got, err := do(t, p, "GET", o.url("/"), "", Timeouts{}); err != nil || got != "GET " {
					t.Fatalf("first request: %q, %v", got, err)
				}
				var body io.Reader
				if tt.body != "" {
					body = strings.NewReader(tt.body)
					if tt.noGetBody {
						body = io.MultiReader(body) // hides the type: no GetBody
					}
				}
				req, _ := http.NewRequest(tt.method, o.url("/drop"), body)
				if tt.header != "" {
					req.Header.Set(tt.header, "k1")
				}
				got, err := send(p, req, Timeouts{})
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("err = %v, want %v", err, tt.wantErr)
					}
				} else if want := tt.method + " " + tt.body; err != nil || got != want {
					t.Errorf("got %q, %v; want %q", got, err, want)
				}
				if accepted, _, _ := o.counts(); accepted != tt.wantAccept {
					t.Errorf("origin accepted %d connections, want %d", accepted, tt.wantAccept)
				}
				st := p.Stats()
				if st.Retries != tt.wantTries || st.Reused != 1 {
					t.Errorf("stats = %+v, want %d retries, 1 reused", st, tt.wantTries)
				}
				st = awaitStats(t, p, "origin close counted", func(st Stats) bool { return st.Closed.OriginClose == 1 })
				checkBalance(t, p)
			})
		}
	}
}

// TestNeverStale: the origin closes connections idle for 1 s, the host
// would keep them 10 s; clients pause 0 to 1.5 s between requests. No
// request may fail.
func TestNeverStale(t *testing.T) {
	if testing.Short() {
		t.Skip("long test (about 25 s)")
	}
	o := newOrigin(t, echoHandler, originConfig{idleTimeout: time.Second})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr(),
		Keepalive: Keepalive{HTTPKeepaliveTime: 10 * time.Second}})
	const clients, total = 16, 500
	var next, failures atomic.Int32
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for {
				i := next.Add(1)
				if i > total {
					return
				}
				method, body := "GET", ""
				if i%2 == 0 {
					method, body = "POST", fmt.Sprintf("body-%d", i)
				}
				got, err := do(t, p, method, o.url("/"), body, Timeouts{})
				if want := method + " " + body; err != nil || got != want {
					failures.Add(1)
					t.Errorf("request %d (%s): got %q, %v; want %q", i, method, got, err, want)
				}
				time.Sleep(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
			}
		})
	}
	wg.Wait()
	st := p.Stats()
	t.Logf("stats: %+v", st)
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed", failures.Load(), total)
	}
	if st.Requests != total || st.Reused == 0 {
		t.Errorf("stats = %+v, want %d requests and reuse", st, total)
	}
	checkBalance(t, p)
}

func TestManagerClose(t *testing.T) {
	o := newOrigin(t, okHandler, originConfig{})
	m := NewManager(nil)
	p := m.Pool(Settings{Scheme: "http", Addr: o.addr()})
	mustGet(t, p, o.url("/"))
	m.Close()
	if e := o.awaitEnd(3 * time.Second); !e.byHost {
		t.Error("idle connection not closed by the host on Close")
	}
	if _, err := do(t, p, "GET", o.url("/"), "", Timeouts{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close: err = %v, want ErrClosed", err)
	}
	if st := p.Stats(); st.Closed.Shutdown != 1 || st.Idle != 0 {
		t.Errorf("stats = %+v, want 1 closed for shutdown", st)
	}
}

func TestRequestRewriting(t *testing.T) {
	type seen struct {
		host, ua, conn, keep, custom, acceptEnc string
	}
	got := make(chan seen, 1)
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Host, r.Header.Get("User-Agent"), r.Header.Get("Connection"),
			r.Header.Get("Keep-Alive"), r.Header.Get("X-Hop"), r.Header.Get("Accept-Encoding")}
		io.WriteString(w, "ok")
	}), originConfig{})
	tests := []struct {
		name     string
		override string
		reqHost  string
		want     seen
	}{
		{"request host", "", "guest.example", seen{host: "guest.example"}},
		{"URL host", "", "", seen{host: "backend.example"}},
		{"override", "override.example", "guest.example", seen{host: "override.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPool(t, Settings{Scheme: "http", Addr: o.addr(), HostOverride: tt.override})
			req, _ := http.NewRequest("GET", "http://backend.example/", nil)
			req.Host = tt.reqHost
			req.Header.Set("Connection", "close, X-Hop")
			req.Header.Set("Keep-Alive", "timeout=5")
			req.Header.Set("X-Hop", "1")
			if _, err := send(p, req, Timeouts{}); err != nil {
				t.Fatal(err)
			}
			if s := <-got; s != tt.want {
				t.Errorf("origin saw %+v, want %+v", s, tt.want)
			}
			if req.Header.Get("Connection") != "close, X-Hop" || req.URL.Host != "backend.example" {
				t.Error("Do modified the caller's request")
			}
			if st := p.Stats(); st.Idle != 1 {
				t.Errorf("stats = %+v, want the connection kept (the caller's Connection: close dropped)", st)
			}
		})
	}
}

func TestKeepAliveTimeoutParsing(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"timeout=5, max=1000", 5 * time.Second, true},
		{"max=10,timeout=2", 2 * time.Second, true},
		{"Timeout = 3", 3 * time.Second, true},
		{`timeout="4"`, 4 * time.Second, true},
		{"timeout=0", 0, true},
		{"max=5", 0, false},
		{"timeout=-1", 0, false},
		{"timeout=abc", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Keep-Alive", tt.header)
		}
		got, ok := keepAliveTimeout(h)
		if got != tt.want || ok != tt.ok {
			t.Errorf("keepAliveTimeout(%q) = %v, %v; want %v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCallerContext(t *testing.T) {
	o := newOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}), originConfig{})
	p := testPool(t, Settings{Scheme: "http", Addr: o.addr()})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequest("GET", o.url("/"), nil)
	_, err := p.Do(ctx, req, Timeouts{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	awaitStats(t, p, "closed for error", func(st Stats) bool { return st.Closed.Error == 1 })
	checkBalance(t, p)
}

func TestDebugLog(t *testing.T) {
	o := newOrigin(t, okHandler, originConfig{})
	var buf guesttest.LogBuffer
	m := NewManager(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer m.Close()
	s := o.settings()
	s.DontPool = true
	p := m.Pool(s)
	mustGet(t, p, o.url("/"))
	awaitStats(t, p, "closed", func(st Stats) bool { return st.Closed.DontPool == 1 })
	for _, want := range []string{
		`msg="origin connection opened" pool=1 addr=` + o.addr() + ` conn=1`,
		`msg="origin connection closed" pool=1 addr=` + o.addr() + ` conn=1 reason=dont_pool uses=1`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, buf.String())
		}
	}
}
