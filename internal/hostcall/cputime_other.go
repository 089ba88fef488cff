//go:build !(linux || darwin || freebsd)

package hostcall

import "time"

// threadCPUTime reports that this platform has no thread CPU clock:
// get_vcpu_ms falls back to wall-clock time.
func threadCPUTime() (time.Duration, bool) { return 0, false }
