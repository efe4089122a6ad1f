// Package replay rebuilds a store from an event log alone: each
// schema.applied event re-runs its migration, each record event re-applies
// its record, and every event is copied with its sequence. It proves that
// the tables are a projection of the log.
package replay

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// Source is where events come from.
type Source interface {
	Events(ctx context.Context, f store.EventFilter) ([]*eventlog.Event, error)
}

// BatchSize is how many events share one transaction of the target.
const BatchSize = 1000

// Run copies every event of src into dst, which must be empty, rebuilding
// its tables. It returns the number of events replayed.
func Run(ctx context.Context, src Source, dst store.Store) (int64, error) {
	if last, err := dst.LastSeq(ctx); err != nil {
		return 0, err
	} else if last != 0 {
		return 0, fmt.Errorf("the target already has %d events; replay into an empty data folder", last)
	}
	var current *schema.Schema
	var after int64
	for {
		evs, err := src.Events(ctx, store.EventFilter{After: after, Limit: BatchSize})
		if err != nil {
			return after, err
		}
		if len(evs) == 0 {
			return after, nil
		}
		next := current
		err = dst.Write(ctx, func(tx store.Tx) error {
			s := current
			for _, ev := range evs {
				var err error
				if s, err = apply(tx, s, ev); err != nil {
					return fmt.Errorf("event %d (%s): %w", ev.Seq, ev.Type, err)
				}
			}
			next = s
			return nil
		})
		if err != nil {
			return after, err
		}
		current = next
		after = evs[len(evs)-1].Seq
	}
}

func apply(tx store.Tx, s *schema.Schema, ev *eventlog.Event) (*schema.Schema, error) {
	switch ev.Type {
	case eventlog.SchemaApplied:
		var d struct {
			Schema *schema.Schema `json:"schema"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.Schema == nil {
			return s, fmt.Errorf("decode schema: %v", err)
		}
		if err := tx.Migrate(s, d.Schema, schema.Diff(s, d.Schema)); err != nil {
			return s, err
		}
		s = d.Schema
	case eventlog.RecordCreated, eventlog.RecordUpdated, eventlog.RecordDeleted:
		c := s.Collection(ev.Collection)
		if c == nil {
			return s, fmt.Errorf("no collection %q at this point of the log", ev.Collection)
		}
		var d eventlog.RecordData
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return s, err
		}
		r, err := c.ParseRecord(d.Record)
		if err != nil {
			return s, err
		}
		switch ev.Type {
		case eventlog.RecordCreated:
			err = tx.Insert(c, r)
		case eventlog.RecordUpdated:
			err = tx.Update(c, r)
		default:
			err = tx.Delete(c, r.ID)
		}
		if err != nil {
			return s, err
		}
	}
	seq := ev.Seq
	copy := &eventlog.Event{Type: ev.Type, Collection: ev.Collection, Subject: ev.Subject, Time: ev.Time, Actor: ev.Actor, Data: ev.Data}
	if err := tx.Append(copy); err != nil {
		return s, err
	}
	if copy.Seq != seq {
		return s, fmt.Errorf("sequence %d was replayed as %d: the source log has a gap", seq, copy.Seq)
	}
	return s, nil
}

// SecretSource is a store whose secrets can be read.
type SecretSource interface {
	Secrets(ctx context.Context, kind string) (map[string][]byte, error)
}

// CopySecrets copies the secrets of the given kinds (password hashes,
// sessions, API keys: what the log does not carry) from src to dst, and
// returns how many it copied.
func CopySecrets(ctx context.Context, src SecretSource, dst store.Store, kinds []string) (int, error) {
	n := 0
	for _, kind := range kinds {
		all, err := src.Secrets(ctx, kind)
		if err != nil {
			return n, err
		}
		err = dst.Write(ctx, func(tx store.Tx) error {
			for k, v := range all {
				if err := tx.PutSecret(kind, k, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(all)
	}
	return n, nil
}
