//go:build unix

package guesttest

import (
	"syscall"
	"testing"
	"time"
)

// ReportCPU starts counting the process's CPU time (user and system, every
// thread, from getrusage) and returns the function that stops and reports
// it per operation as "cpu-ns/op". On a machine whose cores other work
// shares, CPU time per operation varies far less than wall-clock time:
// compare both. Call it right after b.ResetTimer; call the returned
// function after the benchmark loop.
func ReportCPU(b *testing.B) (stop func()) {
	start := cpuTime()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// CPUTime returns the CPU time (user and system, every thread) the
// process has used so far, from getrusage; 0 where it is not known.
func CPUTime() time.Duration { return cpuTime() }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
