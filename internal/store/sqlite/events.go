package sqlite

import (
	"context"
	"errors"
	"strings"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/store"
)

const eventColumns = `seq, type, collection, subject, time, actor, data`

func scanEvent(rows interface{ Scan(...any) error }) (*eventlog.Event, error) {
	var e eventlog.Event
	var t string
	var data []byte
	if err := rows.Scan(&e.Seq, &e.Type, &e.Collection, &e.Subject, &t, &e.Actor, &data); err != nil {
		return nil, err
	}
	e.Time = parseTime(t)
	e.Data = data
	return &e, nil
}

// Events implements store.Store.
func (db *DB) Events(ctx context.Context, f store.EventFilter) ([]*eventlog.Event, error) {
	var b strings.Builder
	args := []any{f.After}
	b.WriteString(`SELECT ` + eventColumns + ` FROM _mantle_events WHERE seq > ?`)
	in := func(col string, vals []string) {
		if len(vals) == 0 {
			return
		}
		b.WriteString(" AND " + col + " IN (?" + strings.Repeat(", ?", len(vals)-1) + ")")
		for _, v := range vals {
			args = append(args, v)
		}
	}
	in("collection", f.Collections)
	in("type", f.Types)
	b.WriteString(` ORDER BY seq LIMIT ?`)
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	rows, err := db.rdb.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, wrap("read events", err)
	}
	defer rows.Close()
	var out []*eventlog.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, wrap("read events", err)
		}
		out = append(out, e)
	}
	return out, wrap("read events", rows.Err())
}

// RecordEvent implements store.Store.
func (db *DB) RecordEvent(ctx context.Context, collection, id string, seq int64) (*eventlog.Event, error) {
	s, err := db.readStmt(ctx, `SELECT `+eventColumns+` FROM _mantle_events
		WHERE collection = ? AND subject = ? AND seq <= ? ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return nil, wrap("read record history", err)
	}
	e, err := scanEvent(s.QueryRowContext(ctx, collection, id, seq))
	if errors.Is(err, errNoRows) {
		return nil, mantle.Errorf(mantle.NotFound, "record.not_found", "no record %q in %q at sequence %d", id, collection, seq)
	}
	return e, wrap("read record history", err)
}
