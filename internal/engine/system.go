package engine

import (
	"context"
	"encoding/json"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// The calls in this file skip the rules: they serve Mantle's own
// machinery (auth looking a user up by email, reading its secrets), never
// a request's query.

// FindBy returns the record of coll whose field equals value, or
// not_found.
func (e *Engine) FindBy(ctx context.Context, coll, field string, value any) (*schema.Record, error) {
	c, err := e.Collection(coll)
	if err != nil {
		return nil, err
	}
	col, ok := query.ColumnOf(c, field)
	if !ok {
		return nil, mantle.Errorf(mantle.Invalid, "query.invalid_filter", "no field %q in %q", field, coll)
	}
	q := &query.Query{Filter: query.Cmp{Col: col, Op: query.Eq, Value: value}, Limit: 1}
	q.Sort, _ = query.ParseSort(c, "")
	p, err := e.store.List(ctx, c, q)
	if err != nil {
		return nil, err
	}
	if len(p.Records) == 0 {
		return nil, mantle.Errorf(mantle.NotFound, "record.not_found", "no record of %q with that %s", coll, field)
	}
	return p.Records[0], nil
}

// GetTrusted returns a record whatever the rules say.
func (e *Engine) GetTrusted(ctx context.Context, coll, id string) (*schema.Record, error) {
	c, err := e.Collection(coll)
	if err != nil {
		return nil, err
	}
	if !mantle.ValidID(id) {
		return nil, notFound(c, id)
	}
	return e.store.Get(ctx, c, id)
}

// Secret reads a stored secret, or not_found.
func (e *Engine) Secret(ctx context.Context, kind, key string) ([]byte, error) {
	return e.store.Secret(ctx, kind, key)
}

// Secrets reads every stored secret of a kind.
func (e *Engine) Secrets(ctx context.Context, kind string) (map[string][]byte, error) {
	return e.store.Secrets(ctx, kind)
}

// Transact runs fn in one durable transaction of the log: for changes to
// secrets together with the audit events that record them.
func (e *Engine) Transact(ctx context.Context, fn func(tx store.Tx) error) error {
	return e.store.Write(ctx, fn)
}

// Audit appends events that stand alone, such as a failed login.
func (e *Engine) Audit(ctx context.Context, evs ...*eventlog.Event) error {
	return e.store.Write(ctx, func(tx store.Tx) error {
		for _, ev := range evs {
			if err := tx.Append(ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// Emit appends a custom event (from a function or an automation) with the
// caller as its actor. The type is 3 to 128 letters, digits and ".-_",
// with at least one dot, and not one of Mantle's own (record.*, schema.*,
// auth.*, mantle.*, fn.*, anomaly.*, points.*, replica.*, in any letter
// case). Custom events are visible to administrators,
// webhooks, functions and automations; data must be a JSON value (null
// when empty).
func (e *Engine) Emit(ctx context.Context, typ, subject string, data json.RawMessage) (int64, error) {
	if err := eventlog.CheckCustomType(typ); err != nil {
		return 0, err
	}
	if len(subject) > 256 {
		return 0, mantle.Errorf(mantle.Invalid, "event.invalid_subject", "the subject is %d bytes; at most 256", len(subject))
	}
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	if !json.Valid(data) {
		return 0, mantle.Errorf(mantle.Invalid, "event.invalid_data", "the event data is not JSON")
	}
	ev := &eventlog.Event{Type: typ, Subject: subject, Time: e.now(), Actor: mantle.IdentityFrom(ctx).ID, Data: data}
	if err := e.Audit(ctx, ev); err != nil {
		return 0, err
	}
	return ev.Seq, nil
}
