//go:build unix

package app

import (
	"log/slog"
	"syscall"
)

// fdReserve is how many file descriptors are kept for the database, the
// WAL, logs and outbound calls when connections are capped.
const fdReserve = 256

// connCap lowers the connection cap to what the process's file descriptor
// limit allows (Go raises the soft limit to the hard one at start).
func connCap(want int, log *slog.Logger) int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<40 /* unlimited */ {
		return want
	}
	if room := int(r.Cur) - fdReserve; room < want {
		room = max(room, 16)
		log.Warn("the connection cap is lowered to fit the file descriptor limit; raise it with ulimit -n", "cap", room, "nofile", r.Cur)
		return room
	}
	return want
}
