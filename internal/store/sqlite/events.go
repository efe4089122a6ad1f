package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/ncruces/go-sqlite3"

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
	ctx, done, err := store.Enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
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
	out := make([]*eventlog.Event, 0, min(limit, 4096))
	// The raw read pool: subscribers and Kafka consumers that fell behind
	// the hub read the log from here, in pages of thousands of events.
	err = db.raw.query(ctx, b.String(), args, func(s *sqlite3.Stmt) bool {
		e := &eventlog.Event{Seq: s.ColumnInt64(0), Type: s.ColumnText(1), Collection: s.ColumnText(2),
			Subject: s.ColumnText(3), Time: parseTime(s.ColumnText(4)), Actor: s.ColumnText(5)}
		e.Data = append(json.RawMessage(nil), s.ColumnRawBlob(6)...)
		out = append(out, e)
		return true
	})
	return out, wrap("read events", err)
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
