//go:build linux || darwin || freebsd

package hostcall

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPUTime returns the calling OS thread's CPU time
// (CLOCK_THREAD_CPUTIME_ID).
func threadCPUTime() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
