//go:build cgo

package wasmtimeengine

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// This file holds edgehost's poll_oneoff, which replaces Wasmtime's own.
// Wasmtime's sleeps inside its host call, where epoch interruption cannot
// reach: a guest in time.Sleep(5*time.Minute) would outlive its wall-clock
// limit by minutes. This one sleeps in Go, selecting on the run's context,
// and traps when the context ends, so Run returns engine.ErrTimeout as it
// does for a guest stopped by an epoch tick (and as wazero's
// context-aware nanosleep does).
//
// The layouts are those of WASI preview 1 (wasi_snapshot_preview1, the
// witx "subscription" and "event" records, little endian):
//
//	subscription, 48 bytes, align 8:
//	  0  userdata   u64
//	  8  tag        u8   eventtype: 0 clock, 1 fd_read, 2 fd_write
//	  16 clock:     id u32 (0 realtime, 1 monotonic), 24 timeout u64 (ns),
//	                32 precision u64, 40 flags u16 (bit 0: abstime)
//	  16 fd_read / fd_write: fd u32
//	event, 32 bytes, align 8:
//	  0  userdata u64, 8 error u16 (errno), 10 type u8,
//	  16 fd_readwrite: nbytes u64, 24 flags u16 (bit 0: hangup)
//
// Descriptor subscriptions are reported ready at once, with nbytes 0: the
// descriptor table is Wasmtime's and out of reach here, edgehost guests
// have no sockets, and Go's wasip1 runtime only polls descriptors it made
// non-blocking itself, whose reads and writes report EAGAIN when they were
// not in fact ready. A spurious readiness costs such a guest one more
// poll; blocking here instead could not be interrupted, and an error event
// (ENOTSUP) would make Go's poller fail the I/O. A clock's precision is
// not used: the sleep is as exact as a Go timer.

// Constants of WASI preview 1: record sizes, event types, clock ids,
// subscription clock flags, errnos.
const (
	subscriptionSize = 48
	eventSize        = 32

	eventClock   = 0
	eventFdRead  = 1
	eventFdWrite = 2

	clockRealtime  = 0
	clockMonotonic = 1

	subclockAbstime = 1

	errnoSuccess = 0
	errnoFault   = 21 // EFAULT: a buffer out of bounds
	errnoInval   = 28 // EINVAL: misaligned buffer, no subscriptions, bad tag or flags
)

// sub is one parsed subscription.
type sub struct {
	userdata uint64
	tag      uint8
	errno    uint16    // per-event error, reported at once
	deadline time.Time // clock subscriptions without errno
	ready    bool      // reported in the events
}

// pollFuncType is poll_oneoff's type: (in, out, nsubscriptions,
// nevents_ptr i32) -> errno i32.
func pollFuncType() *wasmtime.FuncType {
	i32 := func() *wasmtime.ValType { return wasmtime.NewValType(wasmtime.KindI32) }
	return wasmtime.NewFuncType([]*wasmtime.ValType{i32(), i32(), i32(), i32()}, []*wasmtime.ValType{i32()})
}

// pollOneoff is the FuncNew callback for wasi_snapshot_preview1.poll_oneoff.
// It returns a trap when the run's context has ended (before or during the
// wait), an errno otherwise; a panic becomes a trap.
func pollOneoff(c *wasmtime.Caller, params []wasmtime.Val) (out []wasmtime.Val, trap *wasmtime.Trap) {
	r, _ := c.Data().(*run)
	if r == nil {
		return nil, wasmtime.NewTrap("wasi poll_oneoff: called outside a run")
	}
	if err := r.ctx.Err(); err != nil {
		return nil, wasmtime.NewTrap("wasi poll_oneoff: sandbox context ended: " + err.Error())
	}
	defer func() {
		if p := recover(); p != nil {
			out, trap = nil, wasmtime.NewTrap(fmt.Sprintf("wasi poll_oneoff: host function panicked: %v", p))
		}
	}()
	r.view = memory{c: c, mem: r.mem}
	defer func() { r.view = memory{} }()
	errno, ended := r.poll(&r.view, uint32(params[0].I32()), uint32(params[1].I32()), uint32(params[2].I32()), uint32(params[3].I32()))
	if ended {
		return nil, wasmtime.NewTrap("wasi poll_oneoff: sandbox context ended: " + r.ctx.Err().Error())
	}
	return []wasmtime.Val{wasmtime.ValI32(int32(errno))}, nil
}

// poll waits until at least one subscription at in is ready, writes their
// events to out and their count to neventsPtr, and returns the errno.
// ended is true when the run's context ended during the wait; nothing is
// written then.
func (r *run) poll(mem *memory, in, out, nsubs, neventsPtr uint32) (errno uint16, ended bool) {
	if nsubs == 0 {
		return errnoInval, false
	}
	if in%8 != 0 || out%8 != 0 || neventsPtr%4 != 0 {
		return errnoInval, false
	}
	if uint64(nsubs)*subscriptionSize > math.MaxUint32 {
		return errnoFault, false
	}
	inBuf, ok := mem.Read(in, nsubs*subscriptionSize)
	if !ok {
		return errnoFault, false
	}
	outBuf, ok := mem.Read(out, nsubs*eventSize)
	if !ok {
		return errnoFault, false
	}
	if _, ok := mem.Read(neventsPtr, 4); !ok {
		return errnoFault, false
	}

	var small [4]sub
	subs := small[:0]
	if nsubs > uint32(len(small)) {
		subs = make([]sub, 0, nsubs)
	}
	now := time.Now()
	immediate := false
	next := -1 // the clock subscription with the earliest deadline
	for i := range nsubs {
		b := inBuf[i*subscriptionSize : (i+1)*subscriptionSize]
		s := sub{userdata: binary.LittleEndian.Uint64(b[0:]), tag: b[8]}
		switch s.tag {
		case eventClock:
			id := binary.LittleEndian.Uint32(b[16:])
			timeout := binary.LittleEndian.Uint64(b[24:])
			flags := binary.LittleEndian.Uint16(b[40:])
			if flags&^subclockAbstime != 0 {
				return errnoInval, false
			}
			if id != clockRealtime && id != clockMonotonic {
				s.errno, s.ready = errnoInval, true
				break
			}
			s.deadline = r.deadline(now, id, timeout, flags&subclockAbstime != 0)
			if !s.deadline.After(now) {
				s.ready = true
			} else if next < 0 || s.deadline.Before(subs[next].deadline) {
				next = len(subs)
			}
		case eventFdRead, eventFdWrite:
			s.ready = true
		default:
			return errnoInval, false
		}
		immediate = immediate || s.ready
		subs = append(subs, s)
	}

	if !immediate && next >= 0 {
		if !r.sleep(subs[next].deadline.Sub(now)) {
			return 0, true
		}
		subs[next].ready = true
		now = time.Now()
		for i := range subs {
			if subs[i].tag == eventClock && subs[i].errno == 0 && !subs[i].deadline.After(now) {
				subs[i].ready = true
			}
		}
	}

	n := uint32(0)
	for _, s := range subs {
		if !s.ready {
			continue
		}
		e := outBuf[n*eventSize : (n+1)*eventSize]
		clear(e)
		binary.LittleEndian.PutUint64(e[0:], s.userdata)
		binary.LittleEndian.PutUint16(e[8:], s.errno)
		e[10] = s.tag
		n++
	}
	var nb [4]byte
	binary.LittleEndian.PutUint32(nb[:], n)
	mem.Write(neventsPtr, nb[:])
	return errnoSuccess, false
}

// deadline is when a clock subscription fires. A relative timeout counts
// from now on either clock. An absolute realtime timeout is nanoseconds
// since the Unix epoch; an absolute monotonic one is a reading of the
// guest's monotonic clock, which Wasmtime starts at zero when the store's
// WASI context is built (store.SetWasi): r.monoStart is taken just after,
// so the deadline is at most the few microseconds between them late,
// never early. Timeouts beyond what time.Duration holds (292 years) are
// cut to it.
func (r *run) deadline(now time.Time, id uint32, timeout uint64, abs bool) time.Time {
	d := time.Duration(min(timeout, math.MaxInt64))
	switch {
	case !abs:
		return now.Add(d)
	case id == clockRealtime:
		return time.Unix(0, int64(d))
	default:
		return r.monoStart.Add(d)
	}
}

// sleep waits d or until the run's context ends, reporting which: true
// when the time has passed. The run's timer is reused across calls (a Go
// guest polling every millisecond makes many).
func (r *run) sleep(d time.Duration) bool {
	if r.timer == nil {
		r.timer = time.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	select {
	case <-r.timer.C:
		return true
	case <-r.ctx.Done():
		r.timer.Stop()
		return false
	}
}
