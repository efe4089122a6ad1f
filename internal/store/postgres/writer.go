package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
)

// The writer is the SQLite adapter's group commit, on one connection of
// its own: every queued write (up to MaxBatch) shares a transaction, run
// first without savepoints and, if one write fails, again with a savepoint
// around each. Sequences are taken at the end (see the package comment),
// so the cluster-wide counter lock is held only for the last insert and
// the commit.

// Write implements store.Store: fn joins the next batch of the writer
// goroutine (see sqlkit.Queue).
func (db *DB) Write(ctx context.Context, fn func(store.Tx) error) error {
	return db.queue.Write(ctx, fn)
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

func (db *DB) run(batch []*sqlkit.Req) {
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
// done. Statements are pipelined: a batch of creates costs one round trip
// to the server, BEGIN to COMMIT. So a failing statement's error may
// surface later than the call that made it, even in another write of the
// batch: after any failure but the commit's own, the batch runs again on
// the savepoint path, where each statement is sent at once and its error
// comes back to the write that made it.
func (db *DB) runFast(batch []*sqlkit.Req) bool {
	t := &tx{db: db}
	t.queue(pending{sql: "BEGIN"})
	for _, req := range batch {
		if err := sqlkit.Call(req.Fn, t); err != nil {
			t.queued = nil
			db.exec("ROLLBACK")
			return false
		}
	}
	if err := t.commit(); err != nil {
		db.exec("ROLLBACK")
		if errors.Is(err, errCommit) {
			db.fail(batch, err)
			return true
		}
		return false
	}
	db.committed(batch, t)
	return true
}

func (db *DB) runSafe(batch []*sqlkit.Req) {
	t := &tx{db: db, sync: true}
	if _, err := db.exec("BEGIN"); err != nil {
		db.fail(batch, fmt.Errorf("begin: %w", err))
		return
	}
	for _, req := range batch {
		if err := t.queue(pending{sql: "SAVEPOINT w"}); err != nil {
			db.abort(batch, fmt.Errorf("savepoint: %w", err))
			return
		}
		nev := len(t.events)
		req.Err = full(sqlkit.Call(req.Fn, t))
		if req.Err == nil {
			req.Err = t.flush()
		}
		if req.Err != nil {
			t.events = t.events[:nev]
			if _, err := db.exec("ROLLBACK TO SAVEPOINT w"); err != nil {
				db.abort(batch, fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if err := t.queue(pending{sql: "RELEASE SAVEPOINT w"}); err != nil {
			db.abort(batch, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if err := t.commit(); err != nil {
		db.abort(batch, err)
		return
	}
	db.committed(batch, t)
}

// errCommit marks a failure of the commit itself, not of one write.
var errCommit = errors.New("commit")

// commit numbers the batch's events, inserts them and commits, in the
// same pipeline as the statements still queued.
func (t *tx) commit() error {
	t.sync = false // the events and the commit go together
	if n := int64(len(t.events)); n > 0 {
		types, colls, subjects, times, actors := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		data := make([][]byte, n)
		for i, e := range t.events {
			types[i], colls[i], subjects[i], times[i], actors[i], data[i] = e.Type, e.Collection, e.Subject, formatTime(e.Time), e.Actor, e.Data
		}
		t.queue(pending{sql: appendEvents, args: []any{n, types, colls, subjects, times, actors, data}, row: func(r pgx.Row) error {
			var last int64
			if err := r.Scan(&last); err != nil {
				return fmt.Errorf("%w: append events: %w", errCommit, err)
			}
			for i, e := range t.events {
				e.Seq = last - n + 1 + int64(i)
			}
			return nil
		}})
	}
	t.queue(pending{sql: "COMMIT", translate: func(err error) error { return fmt.Errorf("%w: %w", errCommit, err) }})
	return t.flush()
}

// appendEvents takes the next sequences from the counter row, which stays
// locked until the commit, and inserts the events with them, in one
// statement; it returns the last sequence taken.
const appendEvents = `WITH c AS (UPDATE _mantle_log SET last = last + $1 WHERE id = 1 RETURNING last),
	e AS (INSERT INTO _mantle_events (seq, type, collection, subject, time, actor, data)
		SELECT c.last - $1 + u.ord, u.type, u.collection, u.subject, u.time, u.actor, u.data
		FROM c, unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[])
			WITH ORDINALITY AS u(type, collection, subject, time, actor, data, ord))
	SELECT last FROM c`

// committed updates what follows a commit and answers every write.
func (db *DB) committed(batch []*sqlkit.Req, t *tx) {
	if t.migrated {
		db.tables.Clear()
		db.wconn.DeallocateAll(bg)
		db.pool.Reset()
	}
	if db.opts.OnCommit != nil && len(t.events) > 0 {
		db.opts.OnCommit(t.events)
	}
	sqlkit.Answer(batch)
}

// pending is a statement queued in the pipeline. check looks at an
// executed statement's result; row reads a statement's one row instead.
type pending struct {
	sql       string
	args      []any
	check     func(pgconn.CommandTag) error
	row       func(pgx.Row) error
	translate func(error) error
}

// queue adds a statement to the pipeline. In a synchronous transaction
// (the savepoint path, which runs only after a pipelined batch failed) it
// is sent at once, so that its error comes back from the call that made
// it, to the write (and the op of a batch) that made it.
func (t *tx) queue(p pending) error {
	t.queued = append(t.queued, p)
	if t.sync {
		return t.flush()
	}
	return nil
}

// flush sends the queued statements in one round trip and returns the
// first error among them.
func (t *tx) flush() error {
	if len(t.queued) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, p := range t.queued {
		b.Queue(p.sql, p.args...)
	}
	q := t.queued
	t.queued = nil
	br := t.db.wconn.SendBatch(bg, b)
	var first error
	for _, p := range q {
		if p.row != nil {
			if err := p.row(br.QueryRow()); first == nil {
				first = err
			}
			continue
		}
		tag, err := br.Exec()
		switch {
		case first != nil:
		case err != nil && p.translate != nil:
			first = p.translate(err)
		case err != nil:
			first = err
		case p.check != nil:
			first = p.check(tag)
		}
	}
	if err := br.Close(); first == nil && err != nil {
		first = err
	}
	return first
}

// execNow runs a statement after the queued ones and returns how many
// rows it changed.
func (t *tx) execNow(q string, args ...any) (int64, error) {
	if err := t.flush(); err != nil {
		return 0, err
	}
	return t.db.exec(q, args...)
}

// abort rolls the whole transaction back and fails every write that had
// not already failed on its own.
func (db *DB) abort(batch []*sqlkit.Req, err error) {
	db.exec("ROLLBACK")
	db.fail(batch, err)
}

func (db *DB) fail(batch []*sqlkit.Req, err error) { sqlkit.Fail(batch, full(err)) }

// full turns PostgreSQL's disk_full (53100) into the store.full problem.
func full(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "53100" {
		return sqlkit.ErrFull
	}
	return err
}

// tx implements store.Tx for the writer goroutine.
type tx struct {
	db       *DB
	events   []*eventlog.Event // numbered at commit
	migrated bool
	queued   []pending // statements not yet sent
	sync     bool      // send each statement at once
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
