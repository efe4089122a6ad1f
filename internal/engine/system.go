package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

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

// SystemTx is what Mantle's own packages (auth, consumers, the Kafka
// coordinator) may do in a transaction: read and write system state, and
// append the audit events that record it. Records change only through
// Write, and only the engine appends record.* and schema.* events: there
// is no second write path.
type SystemTx interface {
	// Secret returns a stored value as the transaction sees it, or not_found.
	Secret(kind, key string) ([]byte, error)
	// PutSecret stores a value, replacing any with the same kind and key.
	PutSecret(kind, key string, value []byte) error
	// CreateSecret stores value unless one exists, and returns the one stored.
	CreateSecret(kind, key string, value []byte) ([]byte, error)
	// DeleteSecret removes a value and reports whether there was one.
	DeleteSecret(kind, key string) (bool, error)
	// Append adds an audit event; record.* and schema.* are refused
	// (internal: a bug, not a caller's mistake).
	Append(e *eventlog.Event) error
}

// systemTx narrows a store transaction to SystemTx; e checks the kinds
// (nil: any kind, for the engine's own writes).
type systemTx struct {
	tx store.Tx
	e  *Engine
}

func (s systemTx) Secret(kind, key string) ([]byte, error) { return s.tx.Secret(kind, key) }
func (s systemTx) PutSecret(kind, key string, value []byte) error {
	if err := s.e.registered(kind); err != nil {
		return err
	}
	return s.tx.PutSecret(kind, key, value)
}
func (s systemTx) CreateSecret(kind, key string, value []byte) ([]byte, error) {
	if err := s.e.registered(kind); err != nil {
		return nil, err
	}
	return s.tx.CreateSecret(kind, key, value)
}
func (s systemTx) DeleteSecret(kind, key string) (bool, error) { return s.tx.DeleteSecret(kind, key) }
func (s systemTx) Append(e *eventlog.Event) error {
	if err := checkSystemEvent(e); err != nil {
		return err
	}
	return s.tx.Append(e)
}

// checkSystemEvent refuses the events only the engine writes.
func checkSystemEvent(e *eventlog.Event) error {
	t := strings.ToLower(e.Type)
	if strings.HasPrefix(t, "record.") || strings.HasPrefix(t, "schema.") {
		return fmt.Errorf("engine: a %s event can only come from the engine's own write path", e.Type)
	}
	return nil
}

// Transact runs fn in one durable transaction of the log: for changes to
// system state together with the audit events that record them.
func (e *Engine) Transact(ctx context.Context, fn func(tx SystemTx) error) error {
	return e.store.Write(ctx, func(tx store.Tx) error { return fn(systemTx{tx, e}) })
}

// Audit appends events that stand alone, such as a failed login; record.*
// and schema.* are refused.
func (e *Engine) Audit(ctx context.Context, evs ...*eventlog.Event) error {
	for _, ev := range evs {
		if err := checkSystemEvent(ev); err != nil {
			return err
		}
	}
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
