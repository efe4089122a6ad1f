package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"

	sqlite3 "github.com/ncruces/go-sqlite3"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
)

// A full disk is a state of the store, not a bug: writes fail with 507
// store.full (never 500), the node reports itself not ready, reads go
// on, and writes work again as soon as there is space, without a restart.

// fullState is the store's view of its disk.
type fullState struct {
	full atomic.Bool
	// freeAt is the free space when a write last failed for want of it;
	// Ping calls the disk usable again once it has grown past that.
	freeAt atomic.Int64
}

// lowSpace is the free space under which an I/O error of a write is taken
// for a full disk (SQLite reports some ENOSPC as a plain I/O error).
const lowSpace = 1 << 20

// regrown is how much free space must come back before writes are tried
// again: enough for a batch of writes and their WAL frames.
const regrown = 256 << 10

// classify turns a write error caused by a full disk into the store.full
// problem and remembers the state; other errors pass unchanged.
func (db *DB) classify(err error) error {
	if err == nil || mantle.AsError(err) != nil {
		return err
	}
	free, known := freeBytes(db.path)
	isFull := errors.Is(err, sqlite3.FULL) || (errors.Is(err, sqlite3.IOERR) && known && free < lowSpace)
	if !isFull {
		return err
	}
	db.disk.freeAt.Store(free)
	db.disk.full.Store(true)
	return sqlkit.ErrFull
}

// wrote records a successful commit: the disk takes writes.
func (db *DB) wrote() {
	if db.disk.full.Load() {
		db.disk.full.Store(false)
	}
}

// Ping reports whether the store can serve: an error while its disk is
// full (until space comes back), or when the log cannot be read.
func (db *DB) Ping(ctx context.Context) error {
	if db.disk.full.Load() {
		free, known := freeBytes(db.path)
		if !known || free < db.disk.freeAt.Load()+regrown {
			return fmt.Errorf("the disk of %s is full (%d KiB free): writes fail until space is freed", filepath.Dir(db.path), free>>10)
		}
		db.disk.full.Store(false) // space came back: the next write will tell
	}
	_, err := db.LastSeq(ctx)
	return err
}
