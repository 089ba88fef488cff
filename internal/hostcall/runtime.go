package hostcall

import (
	"runtime"
	"time"
)

// fastly_compute_runtime: the sandbox's own resource counters.
//
// get_vcpu_ms is the CPU time this sandbox has used, in milliseconds,
// counted from the start of its run (across every request a reused
// sandbox serves). RunGuest runs the guest on a goroutine locked to one
// OS thread, so the thread's CPU clock (CLOCK_THREAD_CPUTIME_ID) counts
// exactly the guest's code and the hostcalls it makes, and nothing of
// other sandboxes; time the guest spends blocked (a sleep, a wait for an
// origin or for its next request) is not counted. Where the host has no
// thread CPU clock, or the guest was not started through RunGuest, the
// counter is the wall-clock time since the run started instead.
//
// get_heap_mib is the guest's linear memory plus the body bytes the host
// buffers for it, in MiB, rounded up.

// cpuClock measures one sandbox's CPU time.
type cpuClock struct {
	thread    bool          // the guest runs locked to this thread: use its CPU clock
	cpuStart  time.Duration // thread CPU time when the run began
	wallStart time.Time     // the fallback's origin
}

// RunGuest calls run (the engine's Module.Run for this session's sandbox)
// on the calling goroutine, locked to its OS thread for the duration, so
// that get_vcpu_ms measures this sandbox's CPU time (see abi/README.md,
// fastly_compute_runtime). It returns run's error.
func (s *Session) RunGuest(run func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s.cpu = cpuClock{wallStart: time.Now()}
	if t, ok := threadCPUTime(); ok {
		s.cpu.thread, s.cpu.cpuStart = true, t
	}
	return run()
}

// used returns the CPU time the sandbox has used so far. It must be
// called on the guest's goroutine (from a hostcall).
func (k *cpuClock) used() time.Duration {
	if k.thread {
		if t, ok := threadCPUTime(); ok {
			return t - k.cpuStart
		}
	}
	return time.Since(k.wallStart)
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
