package sqlite

import (
	"context"
	"database/sql"
	"os"
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
// appended during its passive pass. The next write transaction then finds
// the WAL fully copied and starts writing it again from the beginning,
// overwriting blocks that are already there.
//
// Every write waits while the writer is held, so the hold must be short:
// its cost is the pages it copies (the final fdatasync of the database
// file takes about 10 µs per page written here). A passive pass over a few
// thousand frames takes 10 to 30 ms, and the writer appends hundreds of
// frames meanwhile; copied under the lock, they held every write for 10 ms
// and more (creates had a p99 of 20 ms). So before it takes the lock the
// checkpointer runs more passive passes, each copying only what was
// appended during the one before, and so each shorter than the last, until
// a pass found at most finishFrames new frames (or catchUpPasses ran).
//
// The pages those passes copy are not yet on disk: SQLite syncs the
// database file only at the end of a pass that copied the whole WAL, which
// is the finishing one, under the lock; that fdatasync then flushed every
// page of the earlier passes (10 to 25 ms here). So the checkpointer syncs
// the file itself first, outside the lock, and the finishing pass's sync
// has only its own few pages left to write. The sync takes milliseconds,
// so the frames appended meanwhile are caught up with again before the lock.
const (
	checkpointEvery = 100 * time.Millisecond
	backstopPages   = 20000
	restartFrames   = 16000
	finishFrames    = 128
	catchUpPasses   = 8
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
			db.restartWAL(cdb, frames)
		}
		last = time.Now()
	}
}

// restartWAL copies the whole WAL into the database so that the next
// write transaction starts it over; frames is what the WAL held at the
// passive pass just run. It returns what the finishing pass reported.
func (db *DB) restartWAL(cdb *sql.DB, frames int64) (int64, int64) {
	frames = catchUp(cdb, frames)
	syncFile(db.path)
	catchUp(cdb, frames)
	return db.finishCheckpoint(cdb)
}

// catchUp runs passive passes until one finds few frames appended since
// the pass before it; frames is what the WAL held at the last pass, and so
// is the result.
func catchUp(cdb *sql.DB, frames int64) int64 {
	for range catchUpPasses {
		now, _ := checkpoint(cdb)
		if now < frames || now-frames <= finishFrames {
			return now
		}
		frames = now
	}
	return frames
}

// syncFile flushes a file's written pages to disk. An error is ignored:
// SQLite's own sync in the finishing pass still makes the checkpoint
// durable, only slower.
func syncFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	f.Sync()
	f.Close()
}

// finishCheckpoint copies what is left of the WAL while the writer waits
// between two batches, so that the next write transaction restarts the WAL.
func (db *DB) finishCheckpoint(cdb *sql.DB) (frames, copied int64) {
	db.wmu.Lock()
	t0 := time.Now()
	frames, copied = checkpoint(cdb)
	db.stats.hold(time.Since(t0))
	db.wmu.Unlock()
	return frames, copied
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
