package erl

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Unix(1_800_000_000, 0).UnixNano())
	return c
}
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestConcurrentIncrements: increments from many goroutines (sandboxes)
// to one entry and to many are all counted.
func TestConcurrentIncrements(t *testing.T) {
	clk := newClock()
	s := New(clk.now)
	const workers, each = 32, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := s.Increment("rc", "hot", 1); err != nil {
					t.Error(err)
					return
				}
				if err := s.Increment("rc", "e"+strconv.Itoa(w*each+i), 2); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n, _ := s.Count("rc", "hot", 10); n != workers*each {
		t.Errorf("hot entry counted %d, want %d", n, workers*each)
	}
	if r, _ := s.Rate("rc", "hot", 10); r != workers*each/10 {
		t.Errorf("rate over 10 s %d, want %d", r, workers*each/10)
	}
	counters, _ := s.Snapshot()
	if len(counters) != 1 || counters[0].Entries != workers*each+1 {
		t.Errorf("snapshot %v, want rc with %d entries", counters, workers*each+1)
	}
}

// TestWindowsAndBuckets: rates over sliding 1, 10, 60 s windows; counts in
// ten-second buckets aligned to the clock.
func TestWindowsAndBuckets(t *testing.T) {
	clk := newClock() // at :00 of a ten-second bucket (1_800_000_000 % 10 == 0)
	s := New(clk.now)
	for i := range 60 { // 10 events a second for a minute
		if i > 0 {
			clk.advance(time.Second)
		}
		s.Increment("rc", "e", 10)
	}
	for _, tc := range []struct {
		window, want uint32
	}{{1, 10}, {10, 10}, {60, 10}} {
		if got, _ := s.Rate("rc", "e", tc.window); got != tc.want {
			t.Errorf("rate over %d s = %d, want %d", tc.window, got, tc.want)
		}
	}
	// Now at :59 of the minute: the current bucket holds :50..:59.
	for _, tc := range []struct{ d, want uint32 }{{10, 100}, {20, 200}, {60, 600}} {
		if got, _ := s.Count("rc", "e", tc.d); got != tc.want {
			t.Errorf("count over %d s = %d, want %d", tc.d, got, tc.want)
		}
	}
	clk.advance(time.Second) // :00: a new bucket begins
	if got, _ := s.Count("rc", "e", 10); got != 0 {
		t.Errorf("count of a fresh bucket = %d", got)
	}
	if got, _ := s.Count("rc", "e", 20); got != 100 {
		t.Errorf("count over 20 s at the bucket edge = %d, want 100", got)
	}
	clk.advance(5 * time.Second)
	if got, _ := s.Rate("rc", "e", 10); got != 4 { // 40 events in :56..:05 over 10 s
		t.Errorf("rate over 10 s after a 6 s pause = %d, want 4", got)
	}
	clk.advance(2 * time.Minute)
	if got, _ := s.Rate("rc", "e", 60); got != 0 {
		t.Errorf("rate over 60 s two minutes later = %d", got)
	}
}

// TestCheckRatePenaltyBox: over the limit the entry is boxed for its TTL
// (truncated to minutes) and blocked meanwhile; then it is let through.
func TestCheckRatePenaltyBox(t *testing.T) {
	clk := newClock()
	s := New(clk.now)
	for i := range 10 {
		if b, err := s.CheckRate("rc", "ip", 1, 1, 10, "pb", 119); err != nil || b {
			t.Fatalf("call %d: %v %v", i, b, err)
		}
	}
	if b, _ := s.CheckRate("rc", "ip", 1, 1, 10, "pb", 119); !b {
		t.Fatal("11th call in a second not blocked")
	}
	clk.advance(59 * time.Second)
	if in, _ := s.PenaltyBoxHas("pb", "ip"); !in {
		t.Error("left the box before its TTL (119 s truncated to 60 s)")
	}
	clk.advance(time.Second)
	if in, _ := s.PenaltyBoxHas("pb", "ip"); in {
		t.Error("still boxed at 60 s (119 s truncated to a minute)")
	}
	if b, _ := s.CheckRate("rc", "ip", 1, 1, 10, "pb", 60); b {
		t.Error("blocked after the TTL at a low rate")
	}
	_, boxes := s.Snapshot()
	if len(boxes) != 1 || boxes[0].Entries != 0 {
		t.Errorf("boxes %v, want pb with no live entry", boxes)
	}
}

func TestArguments(t *testing.T) {
	s := New(nil)
	long := string(make([]byte, MaxNameLen+1))
	for name, err := range map[string]error{
		"empty counter": s.Increment("", "e", 1),
		"long entry":    s.Increment("rc", long, 1),
		"delta":         s.Increment("rc", "e", MaxDelta+1),
		"ttl short":     s.PenaltyBoxAdd("pb", "e", 59),
		"ttl long":      s.PenaltyBoxAdd("pb", "e", 3601),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	for _, w := range []uint32{0, 2, 5, 30, 61} {
		if _, err := s.Rate("rc", "e", w); !errors.Is(err, ErrInvalid) {
			t.Errorf("window %d: %v", w, err)
		}
	}
	for _, d := range []uint32{0, 5, 15, 70} {
		if _, err := s.Count("rc", "e", d); !errors.Is(err, ErrInvalid) {
			t.Errorf("duration %d: %v", d, err)
		}
	}
	for _, l := range []uint32{0, 9, 10001} {
		if _, err := s.CheckRate("rc", "e", 1, 1, l, "pb", 60); !errors.Is(err, ErrInvalid) {
			t.Errorf("limit %d: %v", l, err)
		}
	}
}

// TestCapacity: a full counter drops its least recently incremented
// entry, a full box the entry closest to expiry, and the names are capped.
func TestCapacity(t *testing.T) {
	clk := newClock()
	s := New(clk.now)
	s.Increment("rc", "old", 1)
	for i := range Capacity * 2 {
		s.Increment("rc", strconv.Itoa(i), 1)
	}
	if n, _ := s.Count("rc", "old", 10); n != 0 {
		t.Error("least recently incremented entry kept past capacity")
	}
	counters, _ := s.Snapshot()
	if counters[0].Entries > Capacity {
		t.Errorf("%d entries in a counter of capacity %d", counters[0].Entries, Capacity)
	}
	s.PenaltyBoxAdd("pb", "short", 60)
	for i := range Capacity * 2 {
		s.PenaltyBoxAdd("pb", strconv.Itoa(i), 3600)
	}
	if in, _ := s.PenaltyBoxHas("pb", "short"); in {
		t.Error("entry closest to expiry kept past capacity")
	}
	var err error
	for i := 0; i < MaxNames && err == nil; i++ {
		err = s.Increment("rc-"+strconv.Itoa(i), "e", 1)
	}
	if !errors.Is(err, ErrTooMany) {
		t.Errorf("after %d names: %v, want ErrTooMany", MaxNames, err)
	}
}

// BenchmarkCheckRate is one check_rate call in the store: an entry of a
// counter of 10,000 entries, not blocked; Parallel from every core.
func BenchmarkCheckRate(b *testing.B) {
	s := New(nil)
	entries := make([]string, 10000)
	for i := range entries {
		entries[i] = "192.0.2." + strconv.Itoa(i)
		s.Increment("rc", entries[i], 1)
	}
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.CheckRate("rc", entries[i%len(entries)], 1, 10, 10000, "pb", 60); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(n.Add(1)) * 7919
			for pb.Next() {
				s.CheckRate("rc", entries[i%len(entries)], 1, 10, 10000, "pb", 60)
				i++
			}
		})
	})
}
