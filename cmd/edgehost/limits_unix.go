//go:build unix

package main

import "syscall"

// openFileLimit raises the soft RLIMIT_NOFILE to the hard limit where
// it is lower (Go's os package already does at start; this keeps it so
// whatever the runtime does) and returns the soft limit.
func openFileLimit() (int64, bool) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, false
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	if lim.Cur > 1<<31 {
		lim.Cur = 1 << 31
	}
	return int64(lim.Cur), true
}
