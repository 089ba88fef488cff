// Package gcfloor keeps the Go collector's heap goal from falling below a
// floor.
//
// Go's collector starts a cycle when the heap has grown by GOGC percent
// (default 100) of the live heap, with a heap goal of at least 4 MiB times
// GOGC/100. A host serving small guests keeps a live heap of a few MiB
// while every request allocates a few KiB: at the default, a collection
// every few hundred requests (host/bench/README.md, "Session 11,
// throughput"). Keep sets the GC percentage after each collection so that
// the next heap goal is at least the floor, and no more than the base
// percentage once the live heap alone is large enough; the collector's
// pacing, and GOMEMLIMIT, which still bounds the heap, are otherwise
// unchanged.
package gcfloor

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// liveMetric is the heap the last collection marked live, bytes (Go's
// runtime/metrics).
const liveMetric = "/gc/heap/live:bytes"

// heapMinimum is Go's smallest heap goal at GOGC=100, bytes; it scales
// with the percentage (runtime/mgcpacer.go's defaultHeapMinimum).
const heapMinimum = 4 << 20

// Keep keeps the heap goal at floor bytes or more until ctx is done, then
// puts the GC percentage back to what it was. base is the percentage
// never gone below (100 is Go's default). Keep returns at once; the work
// is done after each collection, on the runtime's cleanup goroutine. It
// sets nothing when floor or base is 0 or less, or the running Go has no
// live-heap metric.
func Keep(ctx context.Context, floor uint64, base int) {
	if floor == 0 || base <= 0 {
		return
	}
	t := &tuner{floor: floor, base: base, sample: []metrics.Sample{{Name: liveMetric}}}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	t.mu.Lock()
	t.set = t.percent()
	t.previous = debug.SetGCPercent(t.set)
	t.mu.Unlock()
	context.AfterFunc(ctx, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.done = true
		debug.SetGCPercent(t.previous)
	})
	t.arm()
}

// tuner is one Keep's state.
type tuner struct {
	floor    uint64
	base     int
	mu       sync.Mutex
	done     bool // ctx is done: the percentage is back to previous
	previous int  // the percentage before Keep
	set      int  // the percentage last set
	sample   []metrics.Sample
}

// percent is the GC percentage that puts the next heap goal at the floor
// or above for the live heap of the last collection: at most the one whose
// heap minimum is the floor, at least base.
func (t *tuner) percent() int {
	metrics.Read(t.sample)
	live := t.sample[0].Value.Uint64()
	top := max(int(t.floor*100/heapMinimum), t.base)
	if live == 0 {
		return top
	}
	if live >= t.floor {
		return t.base
	}
	// goal = live × (1 + p/100) ≥ floor
	return min(max(int((t.floor-live)*100/live), t.base), top)
}

// sentinel is an object whose collection marks the end of a GC cycle
// (large enough to be allocated alone, not with others in a tiny block).
type sentinel struct{ _ [32]byte }

// arm registers a cleanup that runs after the next collection: it sets
// the percentage again and arms the next, until ctx is done.
func (t *tuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *tuner) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.done {
			return
		}
		// Setting the percentage stops the world: only when it moved by
		// more than an eighth.
		if p := t.percent(); p < t.set-t.set/8 || p > t.set+t.set/8 {
			debug.SetGCPercent(p)
			t.set = p
		}
		t.arm()
	}, t)
}
