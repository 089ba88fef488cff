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
// function after the benchmark loop. It also reports the system part as
// "sys-ns/op" and the minor page faults (every thread) as "minflt/op".
func ReportCPU(b *testing.B) (stop func()) {
	var start syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &start)
	return func() {
		var end syscall.Rusage
		if b.N == 0 || syscall.Getrusage(syscall.RUSAGE_SELF, &end) != nil {
			return
		}
		n := float64(b.N)
		cpu := end.Utime.Nano() + end.Stime.Nano() - start.Utime.Nano() - start.Stime.Nano()
		b.ReportMetric(float64(cpu)/n, "cpu-ns/op")
		b.ReportMetric(float64(end.Stime.Nano()-start.Stime.Nano())/n, "sys-ns/op")
		b.ReportMetric(float64(end.Minflt-start.Minflt)/n, "minflt/op")
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
