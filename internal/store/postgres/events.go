package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/store"
)

const eventColumns = `seq, type, collection, subject, time, actor, data`

func scanEvent(row pgx.Row) (*eventlog.Event, error) {
	var e eventlog.Event
	var t string
	var data []byte
	if err := row.Scan(&e.Seq, &e.Type, &e.Collection, &e.Subject, &t, &e.Actor, &data); err != nil {
		return nil, err
	}
	e.Time = parseTime(t)
	e.Data = data
	return &e, nil
}

// Events implements store.Store.
func (db *DB) Events(ctx context.Context, f store.EventFilter) ([]*eventlog.Event, error) {
	// No stored text holds NUL, and PostgreSQL refuses it as a parameter.
	colls, types := withoutNUL(f.Collections), withoutNUL(f.Types)
	if len(colls) < len(f.Collections) && len(colls) == 0 || len(types) < len(f.Types) && len(types) == 0 {
		return nil, nil // every value named holds NUL: nothing matches
	}
	f.Collections, f.Types = colls, types
	ctx, done, err := store.Enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var b strings.Builder
	args := []any{f.After}
	b.WriteString(`SELECT ` + eventColumns + ` FROM _mantle_events WHERE seq > $1`)
	if len(f.Collections) > 0 {
		args = append(args, f.Collections)
		b.WriteString(" AND collection = ANY($" + strconv.Itoa(len(args)) + ")")
	}
	if len(f.Types) > 0 {
		args = append(args, f.Types)
		b.WriteString(" AND type = ANY($" + strconv.Itoa(len(args)) + ")")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	b.WriteString(` ORDER BY seq LIMIT $` + strconv.Itoa(len(args)))
	rows, err := db.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, wrap("read events", err)
	}
	defer rows.Close()
	out := make([]*eventlog.Event, 0, min(limit, 4096))
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, wrap("read events", err)
		}
		out = append(out, e)
	}
	return out, wrap("read events", rows.Err())
}

// withoutNUL drops the values that hold NUL.
func withoutNUL(vals []string) []string {
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if !hasNUL(v) {
			out = append(out, v)
		}
	}
	return out
}

// RecordEvent implements store.Store.
func (db *DB) RecordEvent(ctx context.Context, collection, id string, seq int64) (*eventlog.Event, error) {
	if hasNUL(collection, id) {
		return nil, mantle.Errorf(mantle.NotFound, "record.not_found", "no record %q in %q at sequence %d", id, collection, seq)
	}
	e, err := scanEvent(db.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM _mantle_events
		WHERE collection = $1 AND subject = $2 AND seq <= $3 ORDER BY seq DESC LIMIT 1`, collection, id, seq))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, mantle.Errorf(mantle.NotFound, "record.not_found", "no record %q in %q at sequence %d", id, collection, seq)
	}
	return e, wrap("read record history", err)
}
