// Package fleettest runs a JetStream cluster of in-process NATS servers
// on loopback for the fleet's tests (README.md, "Fleet").
package fleettest

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edgehost/edgehost/internal/fleet"
)

// Cluster is a running cluster; Servers[i] is nil once stopped.
type Cluster struct {
	Servers []*fleet.Embedded
	URLs    []string // client URLs, nats://127.0.0.1:PORT
}

// freePorts returns n loopback ports free a moment ago.
func freePorts(tb testing.TB, n int) []int {
	var out []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}

// Start runs n servers (n 1: one without clustering) with JetStream under
// tb's temporary directory and waits until JetStream answers (at most
// 20 s). The servers do not advertise each other to clients. Cleanup
// stops them.
func Start(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ports := freePorts(tb, 2*n)
	dir := tb.TempDir()
	c := &Cluster{}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	for i := range n {
		cfg := fleet.EmbeddedConfig{Dir: filepath.Join(dir, fmt.Sprint(i)), Addr: fmt.Sprintf("127.0.0.1:%d", ports[i]),
			Name: fmt.Sprintf("n%d", i), NoAdvertise: true}
		if n > 1 {
			cfg.ClusterAddr = fmt.Sprintf("127.0.0.1:%d", ports[n+i])
			cfg.Routes = routes
		}
		s, err := fleet.StartEmbedded(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		c.Servers = append(c.Servers, s)
		c.URLs = append(c.URLs, s.URL())
	}
	tb.Cleanup(func() {
		for i := range c.Servers {
			c.Stop(i)
		}
	})
	c.waitJetStream(tb)
	return c
}

// Stop shuts server i down (no-op when stopped).
func (c *Cluster) Stop(i int) {
	if c.Servers[i] != nil {
		c.Servers[i].Shutdown()
		c.Servers[i] = nil
	}
}

// waitJetStream waits until a KV bucket with as many replicas as servers
// can be made (the meta leader is elected).
func (c *Cluster) waitJetStream(tb testing.TB) {
	nc, err := nats.Connect(c.URLs[0])
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := nc.Request("$JS.API.INFO", nil, time.Second)
		if err == nil && len(resp.Data) > 0 && !contains(resp.Data, `"error":`) {
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "fleettest_ready", Replicas: len(c.URLs)})
			cancel()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("JetStream cluster not ready after 20s: %v %s", err, respData(resp))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func respData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// Proxy is a TCP proxy on loopback in front of a NATS server, to cut one
// node's link and restore it.
type Proxy struct {
	URL    string // nats://127.0.0.1:PORT
	addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

// NewProxy starts a proxy to target (host:port or nats://host:port);
// cleanup stops it.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{addr: ln.Addr().String(), target: strings.TrimPrefix(target, "nats://")}
	p.URL = "nats://" + p.addr
	p.serve(ln)
	tb.Cleanup(p.Cut)
	return p
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.DialTimeout("tcp", p.target, time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln {
				// Cut while this connection was being made: it must
				// not outlive the cut.
				p.mu.Unlock()
				c.Close()
				u.Close()
				return
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

// Cut closes the listener and every proxied connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore listens again on the same address. Errors: the port was taken
// meanwhile.
func (p *Proxy) Restore() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.serve(ln)
	return nil
}
