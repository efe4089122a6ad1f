package sqlite

import (
	"context"
	"database/sql"

	"encoding/json"
	"fmt"
	sqlite3 "github.com/ncruces/go-sqlite3"
	"sync"
	"time"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
)

// Write implements store.Store: fn joins the next batch of the writer
// goroutine (see sqlkit.Queue).
func (db *DB) Write(ctx context.Context, fn func(store.Tx) error) error {
	return db.queue.Write(ctx, fn)
}

// writer owns the write connection. It takes every queued write (up to
// MaxBatch) into one transaction, runs each in a savepoint, commits once
// and then answers every caller. It runs on a thread of its own with a
// raised priority where it may (raiseWriter).
func (db *DB) writer() {
	db.writerTID, db.prio = raiseWriter()
	close(db.prioDone)
	db.queue.Run(func(batch []*sqlkit.Req) {
		db.wmu.Lock()
		t0 := time.Now()
		db.run(batch)
		db.stats.record(len(batch), time.Since(t0))
		db.wmu.Unlock()
	})
}

// wstmt returns the writer's prepared statement for q. The writer uses
// the driver's connection directly: database/sql's locking and value
// conversion cost the one goroutine every write waits for.
func (db *DB) wstmt(q string) (*sqlite3.Stmt, error) {
	if s, ok := db.wstmts[q]; ok {
		return s, nil
	}
	s, _, err := db.wraw.Prepare(q)
	if err != nil {
		return nil, err
	}
	db.wstmts[q] = s
	return s, nil
}

// exec runs a statement on the write connection and returns how many rows
// it changed.
func (db *DB) exec(q string, args ...any) (int64, error) {
	s, err := db.wstmt(q)
	if err != nil {
		return 0, err
	}
	for i, a := range args {
		if err := bindValue(s, i+1, a); err != nil {
			s.ClearBindings()
			return 0, err
		}
	}
	err = s.Exec()
	s.ClearBindings()
	if err != nil {
		return 0, err
	}
	return db.wraw.Changes(), nil
}

// queryRow runs a query on the write connection and calls row for its
// first row; it reports whether there was one.
func (db *DB) queryRow(q string, row func(*sqlite3.Stmt), args ...any) (bool, error) {
	s, err := db.wstmt(q)
	if err != nil {
		return false, err
	}
	defer s.Reset()
	for i, a := range args {
		if err := bindValue(s, i+1, a); err != nil {
			return false, err
		}
	}
	if !s.Step() {
		return false, s.Err()
	}
	row(s)
	return true, nil
}

// run commits a batch. It first runs every write without savepoints, the
// cheap path; if one fails, it rolls back and runs the batch again with a
// savepoint around each write, so the failure is undone alone.
func (db *DB) run(batch []*sqlkit.Req) {
	if db.runFast(batch) {
		return
	}
	db.runSafe(batch)
}

// runFast runs the batch in one transaction without savepoints and
// reports whether it is done. A lone write that fails is done: its
// transaction is rolled back and its error returned.
func (db *DB) runFast(batch []*sqlkit.Req) bool {
	startSeq := db.nextSeq
	tx := &tx{db: db}
	if _, err := db.exec("BEGIN IMMEDIATE"); err != nil {
		db.fail(batch, fmt.Errorf("begin: %w", err))
		return true
	}
	for _, req := range batch {
		if req.Err = db.classify(sqlkit.Call(req.Fn, tx)); req.Err != nil {
			db.wconn.ExecContext(context.Background(), "ROLLBACK")
			db.nextSeq = startSeq
			if len(batch) == 1 {
				req.Done <- req.Err
				return true
			}
			for _, r := range batch {
				r.Err = nil
			}
			return false
		}
	}
	db.commit(batch, tx, startSeq)
	return true
}

func (db *DB) runSafe(batch []*sqlkit.Req) {
	startSeq := db.nextSeq
	tx := &tx{db: db}
	if _, err := db.exec("BEGIN IMMEDIATE"); err != nil {
		db.fail(batch, fmt.Errorf("begin: %w", err))
		return
	}
	for _, req := range batch {
		if _, err := db.exec("SAVEPOINT w"); err != nil {
			db.abort(batch, startSeq, fmt.Errorf("savepoint: %w", err))
			return
		}
		seq, nev, nch := db.nextSeq, len(tx.events), len(tx.changes)
		req.Err = db.classify(sqlkit.Call(req.Fn, tx))
		if req.Err != nil {
			db.nextSeq, tx.events, tx.changes = seq, tx.events[:nev], tx.changes[:nch]
			if _, err := db.exec("ROLLBACK TO w"); err != nil {
				db.abort(batch, startSeq, fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := db.exec("RELEASE w"); err != nil {
			db.abort(batch, startSeq, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	db.commit(batch, tx, startSeq)
}

// commit commits the transaction, updates the record and page caches,
// hands the events to the commit hook and answers every write of the
// batch.
func (db *DB) commit(batch []*sqlkit.Req, tx *tx, startSeq int64) {
	db.cache.begin(tx.changes, tx.migrated)
	db.pages.begin(tx.changes, tx.migrated)
	t0 := time.Now()
	_, err := db.exec("COMMIT")
	db.stats.mu.Lock()
	db.stats.s.Commit += time.Since(t0)
	db.stats.mu.Unlock()
	if err != nil {
		db.cache.apply(nil)
		db.pages.end(tx.changes, tx.migrated)
		db.abort(batch, startSeq, fmt.Errorf("commit: %w", err))
		return
	}
	db.wrote()
	db.wakeCheckpointer()
	if tx.migrated {
		db.resetStatements()
		db.cache.reset()
	} else {
		db.cache.apply(tx.changes)
	}
	db.pages.end(tx.changes, tx.migrated)
	if db.opts.OnCommit != nil && len(tx.events) > 0 {
		db.opts.OnCommit(tx.events)
	}
	sqlkit.Answer(batch)
}

// abort rolls the whole transaction back and fails every write that had
// not already failed on its own.
func (db *DB) abort(batch []*sqlkit.Req, startSeq int64, err error) {
	db.wconn.ExecContext(context.Background(), "ROLLBACK")
	db.nextSeq = startSeq
	db.fail(batch, err)
}

func (db *DB) fail(batch []*sqlkit.Req, err error) { sqlkit.Fail(batch, db.classify(err)) }

// resetStatements drops cached statements after a schema change.
func (db *DB) resetStatements() {
	for q, s := range db.wstmts {
		s.Close()
		delete(db.wstmts, q)
	}
	db.tables.Clear()
	db.raw.resetAll()
	db.rstmts.Range(func(k, v any) bool {
		db.rstmts.Delete(k)
		v.(*sql.Stmt).Close()
		return true
	})
}

// tx implements store.Tx for the writer goroutine.
type tx struct {
	db       *DB
	events   []*eventlog.Event
	changes  []change // for the record cache, applied after commit
	migrated bool
}

var _ store.Tx = (*tx)(nil)

// Append implements store.Tx.
func (t *tx) Append(e *eventlog.Event) error {
	e.Seq = t.db.nextSeq
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("null")
	}
	if _, err := t.db.exec(`INSERT INTO _mantle_events (seq, type, collection, subject, time, actor, data) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Type, e.Collection, e.Subject, formatTime(e.Time), e.Actor, []byte(e.Data)); err != nil {
		return fmt.Errorf("append event: %w", err)
	}
	t.db.nextSeq++
	t.events = append(t.events, e)
	return nil
}

// WriterStats describes the group commit writer's work so far.
type WriterStats struct {
	Batches int64         // transactions committed or failed
	Writes  int64         // writes in them
	Busy    time.Duration // time spent running batches
	Commit  time.Duration // of which in COMMIT: writing the WAL and the fsync
	Holds   int64         // times the checkpointer held the writer to restart the WAL
	Held    time.Duration // the time it held it
	MaxHeld time.Duration // the longest hold
}

type writerStats struct {
	mu sync.Mutex
	s  WriterStats
}

func (w *writerStats) record(n int, d time.Duration) {
	w.mu.Lock()
	w.s.Batches++
	w.s.Writes += int64(n)
	w.s.Busy += d
	w.mu.Unlock()
}

func (w *writerStats) hold(d time.Duration) {
	w.mu.Lock()
	w.s.Holds++
	w.s.Held += d
	w.s.MaxHeld = max(w.s.MaxHeld, d)
	w.mu.Unlock()
}

// writerNice is the nice value the writer's thread asks for (Linux).
const writerNice = -10

// WriterPriority reports whether the writer's thread runs at nice
// writerNice (nil) or, and why not, at the process's own priority.
func (db *DB) WriterPriority() (nice int, err error) {
	<-db.prioDone
	if db.prio != nil {
		return 0, db.prio
	}
	return writerNice, nil
}

// Stats returns the writer's counters.
func (db *DB) Stats() WriterStats {
	db.stats.mu.Lock()
	defer db.stats.mu.Unlock()
	return db.stats.s
}
