package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// The writer does not copy the WAL back into the database file itself
// (that would stall every write waiting behind it). A checkpointer with its
// own connection does it in the background, in PASSIVE mode, which never
// blocks the writer or readers. The writer keeps SQLite's own automatic
// checkpoint only as a backstop for a WAL that grows past backstopPages.
const (
	checkpointEvery = 100 * time.Millisecond
	backstopPages   = 10000
)

func (db *DB) checkpointer(cdb *sql.DB) {
	defer close(db.ckDone)
	defer cdb.Close()
	var last time.Time
	for {
		select {
		case <-db.stop:
			cdb.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
			return
		case <-db.ckWake:
		}
		if wait := checkpointEvery - time.Since(last); wait > 0 {
			select {
			case <-time.After(wait):
			case <-db.stop:
				continue
			}
		}
		cdb.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		last = time.Now()
	}
}

// wakeCheckpointer tells the checkpointer that a commit happened.
func (db *DB) wakeCheckpointer() {
	select {
	case db.ckWake <- struct{}{}:
	default:
	}
}
