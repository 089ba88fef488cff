package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/fleet"
	"github.com/edgehost/edgehost/internal/fleet/fleettest"
	"github.com/edgehost/edgehost/internal/kvstore"
)

func connect(t *testing.T, node string, urls ...string) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Connect(fleet.Config{URLs: urls, Node: node, Replicas: len(urls), NoDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	deadline := time.Now().Add(10 * time.Second)
	for !f.Connected() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not connected after 10s", node)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return f
}

// TestActivateCompareAndSet: two activations expecting the same revision
// cannot both win: exactly one gets ErrConflict, and the entry holds the
// winner's version.
func TestActivateCompareAndSet(t *testing.T) {
	c := fleettest.Start(t, 1)
	a, b := connect(t, "a", c.URLs...), connect(t, "b", c.URLs...)
	ctx := context.Background()
	n1, err := a.Publish(ctx, []byte("\x00asm one"))
	if err != nil {
		t.Fatal(err)
	}
	n2, err := b.Publish(ctx, []byte("\x00asm two"))
	if err != nil || n2 != n1+1 {
		t.Fatalf("second publish: %d, %v (first %d)", n2, err, n1)
	}
	first, err := a.Activate(ctx, n1, nil)
	if err != nil {
		t.Fatal(err)
	}
	rev := first.Revision
	errs := make(chan error, 2)
	for _, x := range []struct {
		f *fleet.Fleet
		n int
	}{{a, n1}, {b, n2}} {
		go func() { _, err := x.f.Activate(ctx, x.n, &rev); errs <- err }()
	}
	e1, e2 := <-errs, <-errs
	conflicts := 0
	for _, e := range []error{e1, e2} {
		if errors.Is(e, fleet.ErrConflict) {
			conflicts++
		} else if e != nil {
			t.Fatalf("activation failed otherwise: %v", e)
		}
	}
	if conflicts != 1 {
		t.Fatalf("%d of two concurrent activations at revision %d conflicted (want 1): %v, %v", conflicts, rev, e1, e2)
	}
	if _, err := a.Fetch(ctx, 99); !errors.Is(err, fleet.ErrNotFound) {
		t.Fatalf("fetching an unknown version: %v", err)
	}
	got, err := b.Fetch(ctx, n2)
	if err != nil || string(got) != "\x00asm two" {
		t.Fatalf("fetch: %q, %v", got, err)
	}
}

// TestKVAcrossNodes: a value written through one node's connection to
// one server is read through another node connected to another server;
// generations, Add and IfGeneration behave as the local store's.
func TestKVAcrossNodes(t *testing.T) {
	c := fleettest.Start(t, 3)
	a := connect(t, "a", c.URLs[0]).KV()
	cc := connect(t, "c", c.URLs[2]).KV()
	if err := a.Declare("shared store", []kvstore.Seed{{Key: "seeded", Value: []byte("s")}}); err != nil {
		t.Fatal(err)
	}
	gen, err := a.Insert("shared store", "k/1", []byte("v1"), kvstore.InsertOptions{Metadata: []byte("m")})
	if err != nil {
		t.Fatal(err)
	}
	e, err := cc.Lookup("shared store", "k/1")
	if err != nil || string(e.Value) != "v1" || string(e.Metadata) != "m" || e.Generation != gen {
		t.Fatalf("lookup on c: %+v, %v (generation written %d)", e, err, gen)
	}
	if _, err := cc.Insert("shared store", "k/1", []byte("x"), kvstore.InsertOptions{Mode: kvstore.Add}); !errors.Is(err, kvstore.ErrPreconditionFailed) {
		t.Fatalf("add of an existing key: %v", err)
	}
	stale := gen
	if _, err := a.Insert("shared store", "k/1", []byte("v2"), kvstore.InsertOptions{IfGeneration: &stale}); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Insert("shared store", "k/1", []byte("v3"), kvstore.InsertOptions{IfGeneration: &stale}); !errors.Is(err, kvstore.ErrPreconditionFailed) {
		t.Fatalf("write at a stale generation: %v", err)
	}
	if _, err := cc.Insert("shared store", "k/1", []byte("+"), kvstore.InsertOptions{Mode: kvstore.Append}); err != nil {
		t.Fatal(err)
	}
	if e, _ := a.Lookup("shared store", "k/1"); string(e.Value) != "v2+" {
		t.Fatalf("after append: %q", e.Value)
	}
	p, err := cc.List("shared store", "", "", 0)
	if err != nil || fmt.Sprint(p.Keys) != "[k/1 seeded]" {
		t.Fatalf("list: %v, %v", p.Keys, err)
	}
	if err := cc.Delete("shared store", "k/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lookup("shared store", "k/1"); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("lookup after delete: %v", err)
	}
	if _, err := a.Lookup("no such store", "k"); !errors.Is(err, kvstore.ErrNoStore) {
		t.Fatalf("unknown store: %v", err)
	}
}

// TestUnavailable: with NATS down, calls fail at once with ErrUnavailable
// (kvstore.ErrUnavailable for KV), never silently.
func TestUnavailable(t *testing.T) {
	c := fleettest.Start(t, 1)
	f := connect(t, "a", c.URLs...)
	if err := f.KV().Declare("s", nil); err != nil {
		t.Fatal(err)
	}
	c.Stop(0)
	for f.Connected() {
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if _, err := f.KV().Insert("s", "k", []byte("v"), kvstore.InsertOptions{}); !errors.Is(err, kvstore.ErrUnavailable) {
		t.Fatalf("insert while cut off: %v", err)
	}
	if _, err := f.KV().Lookup("s", "k"); !errors.Is(err, kvstore.ErrUnavailable) {
		t.Fatalf("lookup while cut off: %v", err)
	}
	if _, err := f.Publish(context.Background(), []byte("x")); !errors.Is(err, fleet.ErrUnavailable) {
		t.Fatalf("publish while cut off: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("failing took %v", d)
	}
}

// TestNodesStale: a node whose last report is older than StaleAfter is
// listed stale; reporting again clears it.
func TestNodesStale(t *testing.T) {
	c := fleettest.Start(t, 1)
	reader, err := fleet.Connect(fleet.Config{URLs: c.URLs, Node: "reader", StaleAfter: 300 * time.Millisecond, NoDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reader.Close)
	gone := connect(t, "gone", c.URLs...)
	ctx := context.Background()
	stale := func() map[string]bool {
		t.Helper()
		nodes, err := reader.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, n := range nodes {
			out[n.Node] = n.Stale
		}
		return out
	}
	if err := gone.Report(ctx, fleet.NodeStatus{Version: 1}); err != nil {
		t.Fatal(err)
	}
	if got := stale(); len(got) != 1 || got["gone"] {
		t.Fatalf("just after a report: %v, want gone listed, not stale", got)
	}
	time.Sleep(400 * time.Millisecond)
	if got := stale(); !got["gone"] {
		t.Fatalf("400 ms after the last report (StaleAfter 300 ms): %v, want gone stale", got)
	}
	if err := gone.Report(ctx, fleet.NodeStatus{Version: 1}); err != nil {
		t.Fatal(err)
	}
	if got := stale(); got["gone"] {
		t.Fatalf("after a new report: %v, want gone not stale", got)
	}
}
