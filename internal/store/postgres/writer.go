package postgres

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/jackc/pgx/v5"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/store"
)

// The writer is the SQLite adapter's group commit, on one connection of
// its own: every queued write (up to MaxBatch) shares a transaction, run
// first without savepoints and, if one write fails, again with a savepoint
// around each. Sequences are taken at the end (see the package comment),
// so the cluster-wide counter lock is held only for the last insert and
// the commit.

type writeReq struct {
	fn   func(store.Tx) error
	err  error
	done chan error
}

// Write implements store.Store. It queues fn for the writer goroutine and
// waits for the commit, even if ctx ends meanwhile: once queued, the write
// may commit, and the caller must learn whether it did.
func (db *DB) Write(ctx context.Context, fn func(store.Tx) error) error {
	req := &writeReq{fn: fn, done: make(chan error, 1)}
	select {
	case db.queue <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-db.stop:
		return errClosed
	}
	return <-req.done
}

func (db *DB) writer() {
	defer close(db.done)
	batch := make([]*writeReq, 0, db.opts.MaxBatch)
	for {
		var first *writeReq
		select {
		case first = <-db.queue:
		case <-db.stop:
			for {
				select {
				case req := <-db.queue:
					db.run([]*writeReq{req})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < db.opts.MaxBatch {
			select {
			case req := <-db.queue:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		db.run(batch)
	}
}

var bg = context.Background()

func (db *DB) exec(q string, args ...any) (int64, error) {
	tag, err := db.wconn.Exec(bg, q, args...)
	return tag.RowsAffected(), err
}

// reconnect replaces a writer connection that the server closed.
func (db *DB) reconnect() error {
	if !db.wconn.IsClosed() {
		return nil
	}
	c, err := pgx.ConnectConfig(bg, db.wconn.Config())
	if err != nil {
		return fmt.Errorf("reconnect writer: %w", err)
	}
	db.wconn = c
	return nil
}

func (db *DB) run(batch []*writeReq) {
	if err := db.reconnect(); err != nil {
		db.fail(batch, err)
		return
	}
	if db.runFast(batch) {
		return
	}
	db.runSafe(batch)
}

// runFast runs the batch without savepoints and reports whether it is
// done. A lone write that fails is done: its transaction is rolled back
// and its error returned.
func (db *DB) runFast(batch []*writeReq) bool {
	t := &tx{db: db}
	if _, err := db.exec("BEGIN"); err != nil {
		db.fail(batch, fmt.Errorf("begin: %w", err))
		return true
	}
	for _, req := range batch {
		if req.err = call(req.fn, t); req.err != nil {
			db.exec("ROLLBACK")
			if len(batch) == 1 {
				req.done <- req.err
				return true
			}
			for _, r := range batch {
				r.err = nil
			}
			return false
		}
	}
	db.commit(batch, t)
	return true
}

func (db *DB) runSafe(batch []*writeReq) {
	t := &tx{db: db}
	if _, err := db.exec("BEGIN"); err != nil {
		db.fail(batch, fmt.Errorf("begin: %w", err))
		return
	}
	for _, req := range batch {
		if _, err := db.exec("SAVEPOINT w"); err != nil {
			db.abort(batch, fmt.Errorf("savepoint: %w", err))
			return
		}
		nev := len(t.events)
		if req.err = call(req.fn, t); req.err != nil {
			t.events = t.events[:nev]
			if _, err := db.exec("ROLLBACK TO SAVEPOINT w"); err != nil {
				db.abort(batch, fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := db.exec("RELEASE SAVEPOINT w"); err != nil {
			db.abort(batch, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	db.commit(batch, t)
}

// commit numbers the batch's events, inserts them and commits.
func (db *DB) commit(batch []*writeReq, t *tx) {
	if err := t.appendEvents(); err != nil {
		db.abort(batch, err)
		return
	}
	if _, err := db.exec("COMMIT"); err != nil {
		db.abort(batch, fmt.Errorf("commit: %w", err))
		return
	}
	if t.migrated {
		db.tables.Clear()
		db.wconn.DeallocateAll(bg)
		db.pool.Reset()
	}
	if db.opts.OnCommit != nil && len(t.events) > 0 {
		db.opts.OnCommit(t.events)
	}
	for _, req := range batch {
		req.done <- req.err
	}
}

// appendEvents takes the next sequences from the counter row, which stays
// locked until the commit, and inserts the events in one statement.
func (t *tx) appendEvents() error {
	n := int64(len(t.events))
	if n == 0 {
		return nil
	}
	var last int64
	if err := t.db.wconn.QueryRow(bg, `UPDATE _mantle_log SET last = last + $1 WHERE id = 1 RETURNING last`, n).Scan(&last); err != nil {
		return fmt.Errorf("take sequences: %w", err)
	}
	seqs := make([]int64, n)
	types, colls, subjects, times, actors := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	data := make([][]byte, n)
	for i, e := range t.events {
		e.Seq = last - n + 1 + int64(i)
		seqs[i], types[i], colls[i], subjects[i], times[i], actors[i], data[i] = e.Seq, e.Type, e.Collection, e.Subject, formatTime(e.Time), e.Actor, e.Data
	}
	_, err := t.db.exec(`INSERT INTO _mantle_events (seq, type, collection, subject, time, actor, data)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[])`,
		seqs, types, colls, subjects, times, actors, data)
	return wrap("append events", err)
}

// call runs fn, turning a panic into an internal error so that one bad
// write cannot stop the writer.
func call(fn func(store.Tx) error, t store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in write: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(t)
}

// abort rolls the whole transaction back and fails every write that had
// not already failed on its own.
func (db *DB) abort(batch []*writeReq, err error) {
	db.exec("ROLLBACK")
	db.fail(batch, err)
}

func (db *DB) fail(batch []*writeReq, err error) {
	for _, req := range batch {
		if req.err == nil {
			req.err = err
		}
		req.done <- req.err
	}
}

// tx implements store.Tx for the writer goroutine.
type tx struct {
	db       *DB
	events   []*eventlog.Event // numbered at commit
	migrated bool
}

var _ store.Tx = (*tx)(nil)

// Append implements store.Tx. The event's Seq is set when the batch
// commits: read it after Write returns.
func (t *tx) Append(e *eventlog.Event) error {
	if len(e.Data) == 0 {
		e.Data = []byte("null")
	}
	t.events = append(t.events, e)
	return nil
}
