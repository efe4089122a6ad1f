//go:build !linux

package sqlite

import (
	"errors"

	"github.com/ncruces/go-sqlite3/vfs"
)

// fileFD returns -1: held syncs are Linux only.
func fileFD(vfs.File) int { return -1 }

// fdatasyncHeld is never called where fileFD returns -1.
func fdatasyncHeld(int) error { return errors.New("held sync is Linux only") }
