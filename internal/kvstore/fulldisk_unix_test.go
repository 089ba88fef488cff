//go:build unix

package kvstore

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

const fullDiskSupported = true

// fullDiskChild opens the database in $KVSTORE_FULLDISK_CHILD, caps the
// size of files this process may write at the database's current size
// (writes past it fail with EFBIG, as they would with ENOSPC on a full
// disk) and tries an insert that needs the file to grow.
func fullDiskChild() {
	dir := os.Getenv("KVSTORE_FULLDISK_CHILD")
	signal.Ignore(syscall.SIGXFSZ)
	d, err := Open(dir, 0)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	lim := uint64(fi.Size())
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: lim, Max: lim}); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(1)
	}
	_, err = d.Insert("s", "k", make([]byte, 4<<20), InsertOptions{})
	if err == nil {
		fmt.Println("insert succeeded")
	} else {
		fmt.Println("insert failed:", err)
	}
	d.Close()
}
