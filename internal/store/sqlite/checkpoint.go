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
//
// Under continuous writes a passive checkpoint never catches up: it copies
// the frames that were in the WAL when it started, and by the time it is
// done the writer has appended more. SQLite only goes back to the start of
// the WAL (a "restart") when a write transaction begins with every frame
// copied, so the WAL would grow to the backstop and every commit would
// append to a growing file; on ext4 an fdatasync that extends a file costs
// about twice one that overwrites written blocks (it commits the journal
// too). So once the WAL holds restartFrames, the checkpointer finishes the
// job: it holds the writer between two batches (wmu) and copies what was
// appended during its passive pass, a few milliseconds of writes. The next
// write transaction then finds the WAL fully copied and starts writing it
// again from the beginning, overwriting blocks that are already there.
const (
	checkpointEvery = 100 * time.Millisecond
	backstopPages   = 10000
	restartFrames   = 2000
)

func (db *DB) checkpointer(cdb *sql.DB) {
	defer close(db.ckDone)
	defer cdb.Close()
	var last time.Time
	for {
		select {
		case <-db.queue.Stopped():
			checkpoint(cdb)
			return
		case <-db.ckWake:
		}
		if db.opts.manualCheckpoints {
			continue
		}
		if wait := checkpointEvery - time.Since(last); wait > 0 {
			select {
			case <-time.After(wait):
			case <-db.queue.Stopped():
				continue
			}
		}
		if frames, _ := checkpoint(cdb); frames >= restartFrames {
			db.finishCheckpoint(cdb)
		}
		last = time.Now()
	}
}

// finishCheckpoint copies what is left of the WAL while the writer waits
// between two batches, so that the next write transaction restarts the WAL.
func (db *DB) finishCheckpoint(cdb *sql.DB) (frames, copied int64) {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return checkpoint(cdb)
}

// checkpoint runs a passive checkpoint and returns how many frames the WAL
// held and how many of them are now copied into the database.
func checkpoint(cdb *sql.DB) (frames, copied int64) {
	var busy int64
	row := cdb.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
	if err := row.Scan(&busy, &frames, &copied); err != nil {
		return 0, 0
	}
	return frames, copied
}

// wakeCheckpointer tells the checkpointer that a commit happened.
func (db *DB) wakeCheckpointer() {
	select {
	case db.ckWake <- struct{}{}:
	default:
	}
}
