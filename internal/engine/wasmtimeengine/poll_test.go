//go:build cgo

package wasmtimeengine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/edgehost/edgehost/internal/engine"
	"github.com/edgehost/edgehost/internal/engine/wasmtimeengine"
)

// subscription is one WASI preview 1 subscription, encoded by bytes.
type subscription struct {
	userdata uint64
	tag      byte   // 0 clock, 1 fd_read, 2 fd_write
	clock    uint32 // clock id, or the fd
	timeout  time.Duration
	flags    uint16 // 1: absolute
}

// bytes is the 48-byte record: userdata @0, tag @8, then at 16 either
// the clock's id, timeout @24, precision @32, flags @40, or the fd.
func (s subscription) bytes() []byte {
	b := make([]byte, 48)
	binary.LittleEndian.PutUint64(b[0:], s.userdata)
	b[8] = s.tag
	binary.LittleEndian.PutUint32(b[16:], s.clock)
	binary.LittleEndian.PutUint64(b[24:], uint64(s.timeout))
	binary.LittleEndian.PutUint64(b[32:], 1000)
	binary.LittleEndian.PutUint16(b[40:], s.flags)
	return b
}

// Where the poll guest keeps things in its memory.
const (
	subsAt    = 0    // the subscriptions
	reportAt  = 1024 // errno u32, nevents u32, monotonic clock before and after u64
	neventsAt = reportAt + 4
	eventsAt  = reportAt + 24
)

// pollGuest is a module whose _start reads the monotonic clock, adds it
// to the timeouts at monoFix (offsets of subscriptions), calls poll_oneoff
// (in, out, n, nevents), reads the clock again, and writes to stdout the
// report: errno, nevents, both clock readings, n events.
func pollGuest(t *testing.T, subs []subscription, monoFix []int, in, out, n, nevents uint32) []byte {
	t.Helper()
	var data strings.Builder
	for _, s := range subs {
		for _, c := range s.bytes() {
			fmt.Fprintf(&data, "\\%02x", c)
		}
	}
	var fix strings.Builder
	for _, i := range monoFix {
		at := subsAt + 48*i + 24
		fmt.Fprintf(&fix, "(i64.store (i32.const %d) (i64.add (i64.load (i32.const %d)) (i64.load (i32.const %d))))\n", at, reportAt+8, at)
	}
	wat := fmt.Sprintf(`(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const %d) "%s")
  (func (export "_start")
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const %d)))
    %s
    (i32.store (i32.const %d) (call $poll (i32.const %d) (i32.const %d) (i32.const %d) (i32.const %d)))
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const %d)))
    (i32.store (i32.const 4096) (i32.const %d))
    (i32.store (i32.const 4100) (i32.const %d))
    (drop (call $write (i32.const 1) (i32.const 4096) (i32.const 1) (i32.const 4104)))))`,
		subsAt, data.String(), reportAt+8, fix.String(), reportAt, in, out, n, nevents, reportAt+16,
		reportAt, 24+32*len(subs))
	wasm, err := wasmtime.Wat2Wasm(wat)
	if err != nil {
		t.Fatal(err)
	}
	return wasm
}

// event is one WASI event as the guest got it.
type event struct {
	userdata uint64
	errno    uint16
	typ      byte
}

// TestPollOneoff drives edgehost's poll_oneoff with raw subscriptions:
// clock sleeps on both clocks, relative and absolute, wait for their time
// (as the guest's own monotonic clock sees it); descriptor subscriptions
// are ready at once; bad arguments give their errno; a sleep far beyond
// the run's context ends with the context, as engine.ErrTimeout.
func TestPollOneoff(t *testing.T) {
	eng, err := wasmtimeengine.New(engine.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(context.Background())

	const d = 40 * time.Millisecond
	hour := time.Hour
	clock := func(ud uint64, id uint32, timeout time.Duration, flags uint16) subscription {
		return subscription{userdata: ud, tag: 0, clock: id, timeout: timeout, flags: flags}
	}
	tests := []struct {
		name    string
		subs    []subscription
		realAbs bool  // subs[0].timeout is made absolute realtime (now + timeout)
		monoFix []int // subscriptions made absolute on the guest's monotonic clock
		// in, out, nevents override the defaults when non-zero, n when nSet.
		in, out, n, nevents uint32
		nSet                bool
		limit               time.Duration // the run's context timeout; 10 s when 0

		errno      uint32
		events     []event
		minSleep   time.Duration // on the guest's monotonic clock
		maxElapsed time.Duration // wall clock around Run; 2 s when 0
		timeout    bool          // Run returns engine.ErrTimeout
	}{
		{name: "relative monotonic", subs: []subscription{clock(7, 1, d, 0)},
			events: []event{{7, 0, 0}}, minSleep: d},
		{name: "relative realtime", subs: []subscription{clock(8, 0, d, 0)},
			events: []event{{8, 0, 0}}, minSleep: d},
		{name: "absolute monotonic", subs: []subscription{clock(9, 1, d, 1)}, monoFix: []int{0},
			events: []event{{9, 0, 0}}, minSleep: d},
		{name: "absolute realtime", subs: []subscription{clock(10, 0, d, 1)}, realAbs: true,
			events: []event{{10, 0, 0}}, minSleep: d - 5*time.Millisecond},
		{name: "absolute in the past", subs: []subscription{clock(11, 1, 0, 1)},
			events: []event{{11, 0, 0}}, maxElapsed: time.Second},
		{name: "earliest of two clocks", subs: []subscription{clock(1, 1, hour, 0), clock(2, 1, d, 0)},
			events: []event{{2, 0, 0}}, minSleep: d},
		{name: "fd read and write ready at once", subs: []subscription{clock(1, 1, hour, 0), {userdata: 3, tag: 1, clock: 0}, {userdata: 4, tag: 2, clock: 1}},
			events: []event{{3, 0, 1}, {4, 0, 2}}, maxElapsed: time.Second},
		{name: "unknown clock", subs: []subscription{clock(5, 9, hour, 0)},
			events: []event{{5, 28, 0}}, maxElapsed: time.Second},
		{name: "subscriptions size wraps 32 bits", subs: []subscription{clock(1, 1, 0, 0)}, n: 0x10000000, nSet: true, errno: 21},
		{name: "zero subscriptions", subs: []subscription{clock(1, 1, 0, 0)}, n: 0, nSet: true, errno: 28},
		{name: "unknown tag", subs: []subscription{{userdata: 1, tag: 9}}, errno: 28},
		{name: "unknown flags", subs: []subscription{clock(1, 1, 0, 2)}, errno: 28},
		{name: "in out of bounds", subs: []subscription{clock(1, 1, hour, 0)}, in: 65536 - 40, errno: 21},
		{name: "out out of bounds", subs: []subscription{clock(1, 1, hour, 0)}, out: 65536 - 24, errno: 21},
		{name: "nevents out of bounds", subs: []subscription{clock(1, 1, hour, 0)}, nevents: 65536, errno: 21},
		{name: "misaligned in", subs: []subscription{clock(1, 1, hour, 0)}, in: 4, errno: 28},
		{name: "sleep past the limit", subs: []subscription{clock(1, 1, 5*time.Minute, 0)}, limit: 150 * time.Millisecond, timeout: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := uint32(len(tc.subs))
			in, out, nevents := uint32(subsAt), uint32(eventsAt), uint32(neventsAt)
			if tc.nSet {
				n = tc.n
			}
			if tc.in != 0 {
				in = tc.in
			}
			if tc.out != 0 {
				out = tc.out
			}
			if tc.nevents != 0 {
				nevents = tc.nevents
			}
			var target time.Time
			if tc.realAbs {
				target = time.Now().Add(tc.subs[0].timeout + 200*time.Millisecond)
				tc.subs[0].timeout = time.Duration(target.UnixNano())
			}
			m, err := eng.Compile(context.Background(), pollGuest(t, tc.subs, tc.monoFix, in, out, n, nevents), noImports)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(context.Background())
			limit := tc.limit
			if limit == 0 {
				limit = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), limit)
			defer cancel()
			var stdout bytes.Buffer
			start := time.Now()
			err = m.Run(ctx, engine.RunConfig{Stdout: &stdout})
			elapsed := time.Since(start)

			if tc.timeout {
				if !errors.Is(err, engine.ErrTimeout) {
					t.Fatalf("Run: %v, want ErrTimeout", err)
				}
				if elapsed > limit+time.Second {
					t.Fatalf("stopped after %v, limit %v", elapsed, limit)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			maxElapsed := tc.maxElapsed
			if maxElapsed == 0 {
				maxElapsed = 2 * time.Second
			}
			if elapsed > maxElapsed {
				t.Errorf("took %v, want at most %v", elapsed, maxElapsed)
			}
			if tc.realAbs && time.Now().Before(target) {
				t.Errorf("woke before the absolute realtime deadline %v", target)
			}
			rep := stdout.Bytes()
			if len(rep) != 24+32*len(tc.subs) {
				t.Fatalf("report of %d bytes", len(rep))
			}
			le := binary.LittleEndian
			if got := le.Uint32(rep[0:]); got != tc.errno {
				t.Fatalf("errno %d, want %d", got, tc.errno)
			}
			if tc.errno != 0 {
				return
			}
			if slept := time.Duration(le.Uint64(rep[16:]) - le.Uint64(rep[8:])); slept < tc.minSleep {
				t.Errorf("guest's monotonic clock advanced %v, want at least %v", slept, tc.minSleep)
			}
			var got []event
			for i := range le.Uint32(rep[4:]) {
				e := rep[24+32*i:]
				got = append(got, event{le.Uint64(e[0:]), le.Uint16(e[8:]), e[10]})
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.events) {
				t.Errorf("events %v, want %v", got, tc.events)
			}
		})
	}
}
