package gcfloor

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

var sink []byte

// cycles counts the collections while f runs.
func cycles(f func()) uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	before := s[0].Value.Uint64()
	f()
	metrics.Read(s)
	return s[0].Value.Uint64() - before
}

// churn allocates 256 MiB in 4 KiB pieces, keeping none.
func churn() {
	for range 256 << 8 {
		sink = make([]byte, 4<<10)
	}
}

func TestKeepFewerCollections(t *testing.T) {
	runtime.GC()
	without := cycles(churn)
	ctx, cancel := context.WithCancel(context.Background())
	Keep(ctx, 64<<20, 100)
	runtime.GC() // the first collection after Keep sets the percentage from the live heap
	with := cycles(churn)
	cancel()
	// The test's live heap is well under 1 MiB: at the default about 4 MiB
	// between collections (64 for 256 MiB), with the floor about 64 MiB (4).
	t.Logf("collections for 256 MiB: %d without a floor, %d with a 64 MiB floor", without, with)
	if with > 10 || with*4 > without {
		t.Errorf("collections with a 64 MiB floor: %d (without: %d), want at most 10 and a quarter", with, without)
	}
}

func TestKeepRestoresPercent(t *testing.T) {
	old := debug.SetGCPercent(150)
	defer debug.SetGCPercent(old)
	ctx, cancel := context.WithCancel(context.Background())
	Keep(ctx, 64<<20, 150)
	runtime.GC()
	runtime.GC()
	if p := debug.SetGCPercent(150); p <= 150 {
		t.Errorf("percentage under Keep: %d, want above 150 for a live heap under the floor", p)
	}
	debug.SetGCPercent(160) // what Keep put back must be its starting value, whatever is set since
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := debug.SetGCPercent(150)
		if p == 150 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("percentage after ctx is done: %d, want 150", p)
		}
		debug.SetGCPercent(p)
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC() // a cleanup still armed must not set it again
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if p := debug.SetGCPercent(150); p != 150 {
		t.Errorf("percentage after ctx is done and two collections: %d, want 150", p)
	}
}

func TestKeepLargeLiveHeap(t *testing.T) {
	live := make([]byte, 48<<20) // over a 32 MiB floor
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	Keep(ctx, 32<<20, 100)
	runtime.GC()
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	runtime.KeepAlive(live)
	if p != 100 {
		t.Errorf("percentage with 48 MiB live over a 32 MiB floor: %d, want the base 100", p)
	}
}

func TestKeepOff(t *testing.T) {
	old := debug.SetGCPercent(120)
	defer debug.SetGCPercent(old)
	Keep(context.Background(), 0, 100)
	if p := debug.SetGCPercent(120); p != 120 {
		t.Errorf("percentage after Keep with floor 0: %d, want 120 untouched", p)
	}
}

// BenchmarkChurn is a 4 KiB allocation, none kept, at Go's default and
// under a 32 MiB floor, with the collections per 1,000.
func BenchmarkChurn(b *testing.B) {
	for _, floor := range []uint64{0, 32 << 20} {
		b.Run(fmt.Sprintf("floor=%dMiB", floor>>20), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			Keep(ctx, floor, 100)
			runtime.GC()
			b.ReportAllocs()
			n := cycles(func() {
				for b.Loop() {
					sink = make([]byte, 4<<10)
				}
			})
			b.ReportMetric(float64(n)*1000/float64(b.N), "gcs/1000ops")
		})
	}
}
