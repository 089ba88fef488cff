package pool

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestMaxInFlight: the host-wide cap counts requests across pools from
// Do until their body is done; the one beyond fails at once with
// ErrPoolExhausted, and a finished request makes room.
func TestMaxInFlight(t *testing.T) {
	o := newOrigin(t, okHandler, originConfig{})
	m := NewManagerConfig(ManagerConfig{MaxInFlight: 2})
	t.Cleanup(m.Close)
	a := m.Pool(Settings{Scheme: "http", Addr: o.addr()})
	b, err := m.Acquire(Settings{Scheme: "http", Addr: o.addr(), Limits: Limits{MaxConnections: 5}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(p *Pool) (*http.Response, error) {
		req, _ := http.NewRequest("GET", o.url("/"), nil)
		return p.Do(t.Context(), req, Timeouts{})
	}
	r1, err := get(a)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := get(b)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := get(a); !errors.Is(err, ErrPoolExhausted) || time.Since(start) > time.Second {
		t.Fatalf("third request in flight: %v after %v, want ErrPoolExhausted at once", err, time.Since(start))
	}
	io.Copy(io.Discard, r1.Body) // read to EOF: done
	r1.Body.Close()
	r3, err := get(b)
	if err != nil {
		t.Fatalf("after one finished: %v", err)
	}
	r2.Body.Close()
	r3.Body.Close()
	for range 3 {
		mustGet(t, a, o.url("/"))
	}
}

// TestPoolEviction: pools of dynamic backends nothing uses and that hold
// no connection are evicted by the sweep; at MaxPools, Acquire evicts the
// least recently used unused pool, and fails when every pool is in use;
// static pools stay.
func TestPoolEviction(t *testing.T) {
	o := newOrigin(t, okHandler, originConfig{})
	m := NewManagerConfig(ManagerConfig{MaxPools: 3, PoolSweep: time.Hour})
	t.Cleanup(m.Close)
	set := func(n int) Settings {
		return Settings{Scheme: "http", Addr: o.addr(), Limits: Limits{MaxConnections: n}}
	}
	static := m.Pool(set(100))
	p1, _ := m.Acquire(set(1))
	p2, _ := m.Acquire(set(2))
	if _, err := m.Acquire(set(3)); !errors.Is(err, ErrTooManyPools) {
		t.Fatalf("a fourth pool with three in use: %v, want ErrTooManyPools", err)
	}
	mustGet(t, p1, o.url("/")) // p1 keeps an idle connection
	m.Release(p1)
	m.Release(p2)
	p3, err := m.Acquire(set(3)) // evicts p2 (no connection) first
	if err != nil {
		t.Fatal(err)
	}
	if m.Len() != 3 || !p2.isClosed() || p1.isClosed() {
		t.Fatalf("after evicting for one: %d pools, p1 closed %v, p2 closed %v", m.Len(), p1.isClosed(), p2.isClosed())
	}
	if _, err := m.Acquire(set(4)); err != nil { // evicts p1, closing its idle connection
		t.Fatal(err)
	}
	if !p1.isClosed() || static.isClosed() {
		t.Fatalf("p1 closed %v, static closed %v", p1.isClosed(), static.isClosed())
	}
	m.Release(p3)
	m.evict(false)
	if m.Len() != 2 { // static and set(4), in use
		t.Fatalf("after a sweep: %d pools, want 2", m.Len())
	}
	mustGet(t, static, o.url("/"))
}
