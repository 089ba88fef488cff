package pool

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// origin is a test origin on 127.0.0.1 that watches its connections from
// the server side: how many were accepted, how many are open at once, and
// when each one read EOF (the host closed it) or was closed by the server.
type origin struct {
	t   *testing.T
	srv *httptest.Server
	tls bool

	mu       sync.Mutex
	accepted int
	open     int
	maxOpen  int

	// ended receives one event per connection when it ends.
	ended chan connEnd
}

// connEnd describes the end of one origin-side connection.
type connEnd struct {
	id        int
	byHost    bool      // the origin read EOF: the host closed it
	at        time.Time // when the read returned EOF, or the server closed it
	lastWrite time.Time // the origin's last write on it (end of the last response)
}

// originConfig configures a test origin.
type originConfig struct {
	// idleTimeout is the origin server's own idle timeout (0: none).
	idleTimeout time.Duration
	// tls serves HTTPS with httptest's certificate (valid for example.com
	// and 127.0.0.1).
	tls bool
}

func newOrigin(t *testing.T, h http.Handler, cfg originConfig) *origin {
	t.Helper()
	o := &origin{t: t, tls: cfg.tls, ended: make(chan connEnd, 4096)}
	s := httptest.NewUnstartedServer(h)
	s.Listener = &originListener{Listener: s.Listener, o: o}
	s.Config.IdleTimeout = cfg.idleTimeout
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // expected TLS handshake failures
	if cfg.tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	o.srv = s
	t.Cleanup(s.Close)
	return o
}

// addr returns the origin's host:port.
func (o *origin) addr() string { return o.srv.Listener.Addr().String() }

// url returns an absolute URL of the origin for path.
func (o *origin) url(path string) string { return "http://" + o.addr() + path }

// settings returns pool settings for the origin: http, or https trusting
// the origin's certificate as example.com.
func (o *origin) settings() Settings {
	if !o.tls {
		return Settings{Scheme: "http", Addr: o.addr()}
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.srv.Certificate().Raw})
	return Settings{Scheme: "https", Addr: o.addr(),
		TLS: TLS{CACertPEM: string(caPEM), CertHostname: "example.com"}}
}

func (o *origin) counts() (accepted, open, maxOpen int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.accepted, o.open, o.maxOpen
}

// awaitEnd waits for the next connection end.
func (o *origin) awaitEnd(timeout time.Duration) connEnd {
	o.t.Helper()
	select {
	case e := <-o.ended:
		return e
	case <-time.After(timeout):
		o.t.Fatalf("no origin connection ended within %v", timeout)
		return connEnd{}
	}
}

type originListener struct {
	net.Listener
	o *origin
}

func (l *originListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	o := l.o
	o.mu.Lock()
	o.accepted++
	o.open++
	o.maxOpen = max(o.maxOpen, o.open)
	id := o.accepted
	o.mu.Unlock()
	return &originConn{Conn: c, o: o, id: id}, nil
}

type originConn struct {
	net.Conn
	o         *origin
	id        int
	lastWrite atomic.Int64 // UnixNano
	once      sync.Once
}

func (c *originConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err == io.EOF {
		c.end(true)
	}
	return n, err
}

func (c *originConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.lastWrite.Store(time.Now().UnixNano())
	return n, err
}

func (c *originConn) Close() error {
	c.end(false)
	return c.Conn.Close()
}

func (c *originConn) end(byHost bool) {
	c.once.Do(func() {
		now := time.Now()
		c.o.mu.Lock()
		c.o.open--
		c.o.mu.Unlock()
		c.o.ended <- connEnd{id: c.id, byHost: byHost, at: now,
			lastWrite: time.Unix(0, c.lastWrite.Load())}
	})
}

// okHandler answers "ok".
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	io.WriteString(w, "ok")
})

// echoHandler answers with the method and the request body.
var echoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	io.WriteString(w, r.Method+" "+string(b))
})

// do sends method to url through p and returns the response body.
func do(t *testing.T, p *Pool, method, url, body string, to Timeouts) (string, error) {
	t.Helper()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rb)
	if err != nil {
		t.Fatal(err)
	}
	return send(p, req, to)
}

// send sends req through p and reads the whole response body.
func send(p *Pool, req *http.Request, to Timeouts) (string, error) {
	resp, err := p.Do(context.Background(), req, to)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return string(b), err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), errors.New(resp.Status)
	}
	return string(b), nil
}

// mustGet sends a GET that must succeed with "ok".
func mustGet(t *testing.T, p *Pool, url string) {
	t.Helper()
	got, err := do(t, p, "GET", url, "", Timeouts{})
	if err != nil || got != "ok" {
		t.Fatalf("GET %s = %q, %v; want ok", url, got, err)
	}
}

// awaitStats polls p's stats until cond holds (the pool closes connections
// in the background, just after a response), failing after 3 s.
func awaitStats(t *testing.T, p *Pool, what string, cond func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		st := p.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never reached %s: %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkBalance checks Opened == InUse + Idle + Closed.Total() once the
// pool is quiet.
func checkBalance(t *testing.T, p *Pool) {
	t.Helper()
	awaitStats(t, p, "balanced counters", func(st Stats) bool {
		return st.Opened == uint64(st.InUse+st.Idle)+st.Closed.Total()
	})
}

// testPool returns a pool for s from a fresh manager closed at cleanup.
func testPool(t *testing.T, s Settings) *Pool {
	t.Helper()
	// Debug logging on, to run the logging code; the output is dropped.
	m := NewManager(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(m.Close)
	return m.Pool(s)
}

// TestRemoveHopByHop: the hop-by-hop fields and every field Connection
// names go; the message's own fields stay. Blocks with more fields than
// the hop-by-hop list and with fewer (removed by a walk of the block)
// both lose exactly what http.Header.Del of each name removes: a field
// spelled other than canonically stays.
func TestRemoveHopByHop(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want http.Header
	}{
		{"many fields", http.Header{
			"Connection":        {"close, X-Conn-Only", " x-other "},
			"X-Conn-Only":       {"1"},
			"X-Other":           {"2"},
			"Keep-Alive":        {"timeout=5"},
			"Proxy-Connection":  {"keep-alive"},
			"Te":                {"trailers"},
			"Trailer":           {"X-T"},
			"Transfer-Encoding": {"chunked"},
			"Upgrade":           {"h2c"},
			"X-Kept":            {"3"},
			"Content-Type":      {"text/plain"},
		}, http.Header{"X-Kept": {"3"}, "Content-Type": {"text/plain"}}},
		{"few fields", http.Header{
			"Transfer-Encoding": {"chunked"},
			"Content-Type":      {"text/plain"},
			"Upgrade":           {"h2c"},
		}, http.Header{"Content-Type": {"text/plain"}}},
		{"few fields, Connection names one", http.Header{
			"Connection":  {"X-Conn-Only"},
			"X-Conn-Only": {"1"},
			"X-Kept":      {"3"},
		}, http.Header{"X-Kept": {"3"}}},
		{"a name spelled otherwise stays", http.Header{
			"transfer-encoding": {"chunked"},
			"Te":                {"trailers"},
		}, http.Header{"transfer-encoding": {"chunked"}}},
		{"empty", http.Header{}, http.Header{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.h.Clone()
			for _, f := range ref.Values("Connection") {
				for _, name := range strings.Split(f, ",") {
					if name = strings.TrimSpace(name); name != "" {
						ref.Del(name)
					}
				}
			}
			for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
				ref.Del(k)
			}
			if !reflect.DeepEqual(ref, tc.want) {
				t.Fatalf("the case's want %v is not what http.Header.Del leaves, %v", tc.want, ref)
			}
			h := tc.h.Clone()
			RemoveHopByHop(h)
			if !reflect.DeepEqual(h, tc.want) {
				t.Errorf("after RemoveHopByHop: %v, want %v", h, tc.want)
			}
		})
	}
}

// TestOriginHost: the override wins, then the caller's Host, then the
// URL's host, then the origin's address.
func TestOriginHost(t *testing.T) {
	for _, tc := range []struct {
		override, host, urlHost, want string
	}{
		{"over.example", "guest.example", "uri.example", "over.example"},
		{"", "guest.example", "uri.example", "guest.example"},
		{"", "", "uri.example", "uri.example"},
		{"", "", "", "127.0.0.1:9"},
	} {
		p := &Pool{s: Settings{Addr: "127.0.0.1:9", HostOverride: tc.override}}
		if got := p.OriginHost(tc.host, tc.urlHost); got != tc.want {
			t.Errorf("OriginHost(%q, %q) with override %q = %q, want %q", tc.host, tc.urlHost, tc.override, got, tc.want)
		}
	}
}
