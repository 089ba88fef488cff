package guesttest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Origin is a real origin server on loopback (an httptest.Server) that
// counts the TCP connections it accepts.
type Origin struct {
	*httptest.Server
	conns atomic.Int64
}

// NewOrigin starts an Origin serving h; it is closed when the test ends.
func NewOrigin(t testing.TB, h http.HandlerFunc) *Origin {
	o := &Origin{}
	o.Server = httptest.NewUnstartedServer(h)
	o.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}
	o.Start()
	t.Cleanup(o.Close)
	return o
}

// Conns returns how many connections the origin has accepted.
func (o *Origin) Conns() int64 { return o.conns.Load() }
