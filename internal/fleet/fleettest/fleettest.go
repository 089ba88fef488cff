// Package fleettest runs a JetStream cluster of in-process NATS servers
// on loopback for the fleet's tests (README.md, "Fleet").
package fleettest

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

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
			return
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
