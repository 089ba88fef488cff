package wazeroengine

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapFixed maps fd privately over b (page-aligned, inside a reservation
// this process owns), replacing those pages.
func mapFixed(b []byte, fd int) error {
	_, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED, uintptr(fd), 0)
	if errno != 0 {
		return errno
	}
	return nil
}
