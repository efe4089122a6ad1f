package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// Op kinds.
const (
	Create = "create"
	Update = "update"
	Delete = "delete"
)

// MaxBatchOps bounds the ops of one batch.
const MaxBatchOps = 1000

// Op is one mutation.
type Op struct {
	Kind       string
	Collection string
	ID         string                     // update, delete
	Data       map[string]json.RawMessage // create, update
	IfMatch    int64                      // update, delete: expected version; 0 means any
	// Trusted skips the collection's rules: for Mantle's own operations
	// (a signup creating its user), never for a request's op.
	Trusted bool
}

// Result is the outcome of one op.
type Result struct {
	Collection *schema.Collection
	Record     *schema.Record  // nil for delete
	JSON       json.RawMessage // the record as JSON (as in its event); nil for delete
	Seq        int64           // the op's event

	event *eventlog.Event // Seq is read from it after the commit: a store may number events only then
}

type prepared struct {
	op   Op
	coll *schema.Collection
	data map[string]any
	// create only, built outside the transaction so the writer does less:
	rec       *schema.Record
	recJSON   []byte
	eventData []byte
}

// Write runs ops atomically: all of them commit, with their events, or none
// does. With more than one op (a batch), errors name the failing op's
// index in their fields ("ops[1].title").
func (e *Engine) Write(ctx context.Context, ops []Op) ([]Result, error) {
	return e.write(ctx, ops, len(ops) > 1, nil)
}

// WriteWith is Write with more work in the same transaction: then runs
// after the ops, with their results, and may store secrets and append
// events of its own. Like the ops it may run more than once.
func (e *Engine) WriteWith(ctx context.Context, ops []Op, then func(tx SystemTx, res []Result) error) ([]Result, error) {
	return e.write(ctx, ops, false, then)
}

func (e *Engine) write(ctx context.Context, ops []Op, batch bool, then func(SystemTx, []Result) error) ([]Result, error) {
	if len(ops) > MaxBatchOps {
		return nil, mantle.Errorf(mantle.Invalid, "batch.too_large", "a batch takes at most %d ops", MaxBatchOps)
	}
	id := mantle.IdentityFrom(ctx)
	preps := make([]prepared, len(ops))
	for i, op := range ops {
		p, err := e.prepare(id, op, prefix(batch, i))
		if err != nil {
			return nil, atOp(err, batch, i)
		}
		preps[i] = p
	}
	results := make([]Result, len(ops))
	err := e.store.Write(ctx, func(tx store.Tx) error {
		for i, p := range preps {
			r, err := e.apply(tx, id, p, prefix(batch, i))
			if err != nil {
				return atOp(err, batch, i)
			}
			results[i] = r
		}
		if then != nil {
			return then(systemTx{tx, e}, results)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range results {
		if results[i].event != nil {
			results[i].Seq = results[i].event.Seq
		}
	}
	return results, nil
}

func prefix(batch bool, i int) string {
	if !batch {
		return ""
	}
	return fmt.Sprintf("ops[%d].", i)
}

// atOp names the failing op of a batch in the error's fields.
func atOp(err error, batch bool, i int) error {
	me := mantle.AsError(err)
	if !batch || me == nil {
		return err
	}
	c := *me
	at := fmt.Sprintf("ops[%d]", i)
	c.Message = at + ": " + me.Message
	c.Fields = map[string]string{}
	for k, v := range me.Fields {
		if !strings.HasPrefix(k, at+".") {
			k = at + "." + k
		}
		c.Fields[k] = v
	}
	if len(c.Fields) == 0 {
		c.Fields[at] = me.Message
	}
	return &c
}

// prepare resolves the collection, decodes and validates the data and
// checks what can be checked before the transaction.
func (e *Engine) prepare(id mantle.Identity, op Op, pfx string) (prepared, error) {
	c, err := e.Collection(op.Collection)
	if err != nil {
		return prepared{}, err
	}
	p := prepared{op: op, coll: c}
	switch op.Kind {
	case Create:
		var merr *mantle.Error
		if p.data, merr = c.Decode(op.Data, false, pfx); merr != nil {
			return p, merr
		}
		if err := protectRoles(id, op, c, p.data, pfx); err != nil {
			return p, err
		}
		if err := normalizeUser(c, p.data, pfx); err != nil {
			return p, err
		}
		if err := e.allow(id, op, c, schema.OpCreate, nil, p.data); err != nil {
			return p, err
		}
		now := e.now()
		p.rec = &schema.Record{ID: mantle.NewID(), CreatedAt: now, UpdatedAt: now, Version: 1, Data: p.data}
		if given, ok := p.data[schema.ColID].(string); ok {
			if c.Name == schema.UsersCollection {
				// A chosen user id could be a deleted user's (inheriting
				// their records) or look like a system identity.
				return p, mantle.FieldError("record.id_not_allowed", "user ids are chosen by the server",
					map[string]string{pfx + schema.ColID: "chosen by the server for users"})
			}
			p.rec.ID = given
			delete(p.data, schema.ColID)
		}
		p.recJSON = c.MarshalRecord(p.rec)
		p.eventData = eventlog.NewRecordData(p.recJSON, nil, nil)
	case Update:
		if !mantle.ValidID(op.ID) {
			return p, notFound(c, op.ID)
		}
		var merr *mantle.Error
		if p.data, merr = c.Decode(op.Data, true, pfx); merr != nil {
			return p, merr
		}
		if err := protectRoles(id, op, c, p.data, pfx); err != nil {
			return p, err
		}
		if err := normalizeUser(c, p.data, pfx); err != nil {
			return p, err
		}
	case Delete:
		if !mantle.ValidID(op.ID) {
			return p, notFound(c, op.ID)
		}
	default:
		return p, mantle.Errorf(mantle.Invalid, "batch.invalid_op", "op must be create, update or delete, not %q", op.Kind)
	}
	return p, nil
}

// normalizeUser checks and normalises the built-in fields of a user
// (email, roles) on every path that writes one: sign-up, the records API,
// the CLI, OIDC, functions and automations.
func normalizeUser(c *schema.Collection, data map[string]any, pfx string) error {
	if c.Name != schema.UsersCollection {
		return nil
	}
	if problems := schema.NormalizeUser(data, pfx); problems != nil {
		return mantle.FieldError("record.validation", "a user's built-in fields are not valid", problems)
	}
	return nil
}

// protectRoles keeps users from granting themselves roles: the roles of
// a user are set by administrators only, whatever the collection's rules
// say.
func protectRoles(id mantle.Identity, op Op, c *schema.Collection, data map[string]any, pfx string) error {
	if _, ok := data[schema.RolesField]; !ok || c.Name != schema.UsersCollection || op.Trusted || id.IsAdmin() {
		return nil
	}
	return &mantle.Error{Code: mantle.PermissionDenied, Reason: "auth.roles_protected",
		Message: "only administrators set a user's roles",
		Fields:  map[string]string{pfx + schema.RolesField: "only administrators set a user's roles"}}
}

// allow checks a rule, unless the op is trusted.
func (e *Engine) allow(id mantle.Identity, op Op, c *schema.Collection, rule string, rec *schema.Record, data map[string]any) error {
	if op.Trusted {
		return nil
	}
	return e.Rules(c).Allow(id, rule, rec, data)
}

func notFound(c *schema.Collection, id string) error {
	return mantle.Errorf(mantle.NotFound, "record.not_found", "no record %q in %q", id, c.Name)
}

// apply runs one prepared op inside the transaction.
func (e *Engine) apply(tx store.Tx, id mantle.Identity, p prepared, pfx string) (Result, error) {
	c, now := p.coll, e.now()
	res := Result{Collection: c}
	ev := &eventlog.Event{Collection: c.Name, Time: now, Actor: id.ID}
	var audit *eventlog.Event // a role change, recorded after the record's event
	switch p.op.Kind {
	case Create:
		if err := checkRelations(tx, e.Schema(), c, p.data, pfx); err != nil {
			return res, err
		}
		if err := tx.Insert(c, p.rec); err != nil {
			return res, err
		}
		ev.Time = p.rec.CreatedAt
		ev.Type, ev.Subject, ev.Data = eventlog.RecordCreated, p.rec.ID, p.eventData
		res.Record, res.JSON = p.rec, p.recJSON
		if roles := p.rec.Data[schema.RolesField]; c.Name == schema.UsersCollection && roles != nil {
			audit = rolesChanged(now, id, p.rec.ID, nil, roles)
		}
	case Update:
		cur, err := e.current(tx, id, c, p.op, schema.OpUpdate, p.data)
		if err != nil {
			return res, err
		}
		if err := checkRelations(tx, e.Schema(), c, p.data, pfx); err != nil {
			return res, err
		}
		r := cur.Clone()
		var changed []string
		for _, f := range c.Fields {
			v, ok := p.data[f.Name]
			if !ok {
				continue
			}
			if !equal(cur.Data[f.Name], v) {
				changed = append(changed, f.Name)
			}
			if v == nil {
				delete(r.Data, f.Name)
			} else {
				r.Data[f.Name] = v
			}
		}
		r.Version++
		r.UpdatedAt = now
		if err := tx.Update(c, r); err != nil {
			return res, err
		}
		ev.Type, ev.Subject = eventlog.RecordUpdated, r.ID
		res.Record, res.JSON = r, c.MarshalRecord(r)
		ev.Data = eventlog.NewRecordData(res.JSON, c.MarshalRecord(cur), changed)
		if c.Name == schema.UsersCollection && slices.Contains(changed, schema.RolesField) {
			audit = rolesChanged(now, id, r.ID, cur.Data[schema.RolesField], r.Data[schema.RolesField])
		}
	case Delete:
		cur, err := e.current(tx, id, c, p.op, schema.OpDelete, nil)
		if err != nil {
			return res, err
		}
		if err := e.resolveReferences(tx, id, now, c, cur.ID); err != nil {
			return res, err
		}
		if err := tx.Delete(c, cur.ID); err != nil {
			return res, err
		}
		ev.Type, ev.Subject = eventlog.RecordDeleted, cur.ID
		ev.Data = eventlog.NewRecordData(c.MarshalRecord(cur), nil, nil)
		if c.Name == schema.UsersCollection {
			if err := voidCredentials(tx, cur.ID, now); err != nil {
				return res, err
			}
		}
	}
	if err := tx.Append(ev); err != nil {
		return res, err
	}
	if audit != nil {
		if err := tx.Append(audit); err != nil {
			return res, err
		}
		if err := voidCredentials(tx, audit.Subject, now); err != nil {
			return res, err
		}
	}
	res.event = ev
	return res, nil
}

// current reads the stored record for an update or delete and checks the
// op's rule (an anonymous caller learns to sign in), the view rule (a
// record the caller may not view is not found) and If-Match.
func (e *Engine) current(tx store.Tx, id mantle.Identity, c *schema.Collection, op Op, rule string, data map[string]any) (*schema.Record, error) {
	cur, err := tx.Get(c, op.ID)
	if err != nil {
		return nil, err
	}
	if op.Trusted {
		return cur, nil
	}
	rules := e.Rules(c)
	if !rules.CanView(id, cur) {
		if err := rules.Allow(id, rule, nil, nil); err != nil {
			return nil, err // administrators only: say so, or ask to sign in
		}
		return nil, notFound(c, op.ID)
	}
	ruleErr := rules.Allow(id, rule, cur, data)
	if ruleErr != nil {
		return nil, ruleErr
	}
	if op.IfMatch != 0 && op.IfMatch != cur.Version {
		return nil, mantle.Errorf(mantle.FailedPrecondition, "record.version_mismatch",
			"record %q is at version %d, not %d; read it again and retry", cur.ID, cur.Version, op.IfMatch)
	}
	return cur, nil
}

// checkRelations makes sure every relation names an existing record.
func checkRelations(tx store.Tx, s *schema.Schema, c *schema.Collection, data map[string]any, pfx string) error {
	for _, f := range c.Fields {
		id, ok := data[f.Name].(string)
		if !ok || f.Type != schema.Relation {
			continue
		}
		target := s.Collection(f.Collection)
		if target == nil {
			continue
		}
		found, err := tx.Exists(target, id)
		if err != nil {
			return err
		}
		if !found {
			return mantle.FieldError("record.relation_not_found",
				fmt.Sprintf("field %q: no record %q in %q", pfx+f.Name, id, f.Collection),
				map[string]string{pfx + f.Name: fmt.Sprintf("no record %q in %q", id, f.Collection)})
		}
	}
	return nil
}

func equal(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	if ra, ok := a.(json.RawMessage); ok {
		rb, ok := b.(json.RawMessage)
		return ok && slices.Equal(ra, rb)
	}
	return a == b
}

// KindUserEpoch is the system state that voids a user's credentials: user
// id → the time (RFC 3339) before which its access tokens no longer
// count, written in the transaction that changes the user's roles,
// password or account. internal/auth reads it at start; after that the
// log's events keep every node up to date.
const KindUserEpoch = "user_epoch"

// voidCredentials records, in tx, that the user's credentials issued
// before at are void.
func voidCredentials(tx store.Tx, user string, at time.Time) error {
	return VoidCredentials(systemTx{tx: tx}, user, at)
}

// VoidCredentials is voidCredentials for auth's own changes (a new
// password), inside its transaction.
func VoidCredentials(tx SystemTx, user string, at time.Time) error {
	return tx.PutSecret(KindUserEpoch, user, []byte(at.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)))
}

// rolesChanged is the audit event of a change to a user's roles.
func rolesChanged(now time.Time, by mantle.Identity, user string, from, to any) *eventlog.Event {
	data, _ := json.Marshal(map[string]any{"user": user, "from": rolesOf(from), "to": rolesOf(to)})
	return &eventlog.Event{Type: eventlog.AuthRolesChanged, Subject: user, Time: now, Actor: by.ID, Data: data}
}

func rolesOf(v any) []string {
	roles := []string{}
	if raw, ok := v.(json.RawMessage); ok {
		json.Unmarshal(raw, &roles)
	}
	return roles
}

// WriteBatch is Write for a batch: even a single op's errors name its
// index.
func (e *Engine) WriteBatch(ctx context.Context, ops []Op) ([]Result, error) {
	return e.write(ctx, ops, true, nil)
}
