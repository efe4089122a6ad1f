package sqlite

import (
	"syscall"

	"github.com/ncruces/go-sqlite3/vfs"
)

// fileFD returns the descriptor under an operating system VFS file, or -1
// for any other file.
func fileFD(f vfs.File) int {
	if h, ok := f.(interface{ Fd() uintptr }); ok {
		return int(h.Fd())
	}
	return -1
}

// fdatasyncHeld is fdatasync(2) made as a raw system call: the goroutine
// keeps its processor (P) while the kernel writes, instead of handing it
// to Go's scheduler as a blocking call does. After a blocking call of a
// fraction of a millisecond the scheduler has usually given the P to a
// request goroutine, and the writer, the one goroutine every write waits
// for, goes to the back of the global run queue; under load that wait
// was as long again as the sync itself (docs/storage.md, "The writer's
// thread"). The price is that a stop-the-world pause of the collector
// waits for the sync to end, which is why walFile makes the blocking
// call instead while syncs are slow.
func fdatasyncHeld(fd int) error {
	for {
		_, _, e := syscall.RawSyscall(syscall.SYS_FDATASYNC, uintptr(fd), 0, 0)
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return e
	}
}
