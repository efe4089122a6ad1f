//go:build !linux

package sqlite

import "errors"

// raiseWriter only raises the writer's thread on Linux, where a thread
// has a nice value of its own.
func raiseWriter() (tid int, err error) {
	return 0, errors.New("per-thread priority is Linux only")
}
