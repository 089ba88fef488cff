package hostcall

import (
	"runtime"
	"time"
)

// fastly_compute_runtime: the sandbox's own resource counters.
//
// get_vcpu_ms is the CPU time this sandbox has used, in milliseconds,
// counted from the start of its run (across every request a reused
// sandbox serves). RunGuest runs the guest on a goroutine locked to its
// OS thread while the guest computes, so the thread's CPU clock
// (CLOCK_THREAD_CPUTIME_ID) counts exactly the guest's code and the
// hostcalls it makes, and nothing of other sandboxes. Where a hostcall
// waits for something outside the sandbox (its next request, a select),
// the clock's segment ends: its CPU time is added up, the goroutine is
// let off its thread for the wait (so that whichever thread hands it the
// next request runs it, without waking a parked thread), and a new
// segment starts on the thread it runs on after the wait. Time the guest
// spends blocked is not counted, whether the wait unlocks or not (a wait
// that does not, such as a sleep, parks the locked thread, whose clock
// stands still). Where the host has no thread CPU clock, or the guest was
// not started through RunGuest, the counter is the wall-clock time since
// the run started instead.
//
// get_heap_mib is the guest's linear memory plus the body bytes the host
// buffers for it, in MiB, rounded up.

// cpuClock measures one sandbox's CPU time, in segments: each segment is
// a stretch the guest's goroutine runs locked to one OS thread.
type cpuClock struct {
	thread    bool          // the guest runs locked to a thread: use the thread CPU clocks
	paused    bool          // a wait (pause) is under way: no segment is open
	done      time.Duration // CPU time of the segments that ended
	cpuStart  time.Duration // thread CPU time when the open segment began
	wallStart time.Time     // the fallback's origin
}

// RunGuest calls run (the engine's Module.Run for this session's sandbox)
// on the calling goroutine, locked to its OS thread except while a
// hostcall waits (see cpuClock), so that get_vcpu_ms measures this
// sandbox's CPU time (see abi/README.md, fastly_compute_runtime). It
// returns run's error.
func (s *Session) RunGuest(run func() error) error {
	runtime.LockOSThread()
	// A wait's UnlockOSThread was matched by its LockOSThread after it;
	// this one undoes the lock above.
	defer runtime.UnlockOSThread()
	s.cpu = cpuClock{wallStart: time.Now()}
	if t, ok := threadCPUTime(); ok {
		s.cpu.thread, s.cpu.cpuStart = true, t
	}
	return run()
}

// used returns the CPU time the sandbox has used so far. It must be
// called on the guest's goroutine (from a hostcall), outside a wait.
func (k *cpuClock) used() time.Duration {
	if k.thread && !k.paused {
		if t, ok := threadCPUTime(); ok {
			return k.done + t - k.cpuStart
		}
	}
	if k.thread {
		return k.done
	}
	return time.Since(k.wallStart)
}

// pause ends the open segment before a hostcall waits for something
// outside the sandbox and unlocks the goroutine from its thread; resume
// undoes it. Both are called on the guest's goroutine, in pairs. Without
// a thread clock they do nothing (the goroutine was not locked by
// RunGuest). On an engine that runs the guest inside a cgo call
// (wasmtime), a hostcall is a cgo callback, whose goroutine stays on its
// thread whatever it asks: the unlock then changes nothing, and the
// segments are still that thread's.
func (k *cpuClock) pause() {
	if !k.thread || k.paused {
		return
	}
	if t, ok := threadCPUTime(); ok {
		k.done += t - k.cpuStart
	}
	k.paused = true
	runtime.UnlockOSThread()
}

// resume locks the goroutine to the thread it now runs on and opens a
// segment there (see pause).
func (k *cpuClock) resume() {
	if !k.paused {
		return
	}
	runtime.LockOSThread()
	k.paused = false
	if t, ok := threadCPUTime(); ok {
		k.cpuStart = t
	}
}

func runtimeImpls() []impl {
	return []impl{
		bindComputeRuntimeGetVcpuMs(func(c *call, a computeRuntimeGetVcpuMsArgs) error {
			return c.putU64(a.VcpuMsOut, uint64(c.s.cpu.used()/time.Millisecond))
		}),
		bindComputeRuntimeGetHeapMiB(func(c *call, a computeRuntimeGetHeapMiBArgs) error {
			const mib = 1 << 20
			n := uint64(c.mem.Size()) + uint64(max(c.s.bufferedLen, 0))
			return c.putU32(a.MemoryMiBOut, uint32((n+mib-1)/mib))
		}),
	}
}
