package sqlite

import (
	"runtime"
	"syscall"
)

// raiseWriter runs on the writer goroutine before its first batch. It
// locks the goroutine to its own thread and asks the kernel to run that
// thread ahead of the request threads (nice -10; see docs/storage.md,
// "The writer's thread"). Every write waits for this one thread: when
// the two sides share the CPU at equal weight, a batch's SQLite work is
// time-sliced with the very requests that wait for it.
//
// Lowering a nice value needs CAP_SYS_NICE (or RLIMIT_NICE); without it
// the writer runs at normal priority on an ordinary thread. The thread is
// never unlocked: when the writer ends, Go ends the thread with it, so a
// raised thread never runs other goroutines.
func raiseWriter() (tid int, err error) {
	runtime.LockOSThread()
	tid = syscall.Gettid()
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, writerNice); err != nil {
		runtime.UnlockOSThread()
		return tid, err
	}
	return tid, nil
}
