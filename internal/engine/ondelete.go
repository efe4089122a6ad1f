package engine

import (
	"slices"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// maxCascade bounds the records one deletion may delete or change through
// onDelete: cascade and setNull, so that a deletion stays one bounded
// transaction.
const maxCascade = 1000

// references resolves what deleting a record does to the records that
// point at it, in the deletion's transaction, through the one write path:
// restrict refuses the deletion, cascade deletes them (and what points at
// them, in turn), setNull clears their field. Every change appends its
// event, with the deleting caller as actor, before the deletion's own
// event. The rules of the records cascaded to are not asked: the project
// declared the cascade, and the caller was allowed to delete the target.
type references struct {
	e      *Engine
	tx     store.Tx
	actor  mantle.Identity
	now    time.Time
	done   map[string]bool // collection/id already deleted in this cascade
	budget int
}

func (e *Engine) resolveReferences(tx store.Tx, actor mantle.Identity, now time.Time, c *schema.Collection, id string) error {
	r := &references{e: e, tx: tx, actor: actor, now: now, done: map[string]bool{c.Name + "/" + id: true}, budget: maxCascade}
	return r.of(c, id)
}

func (r *references) of(c *schema.Collection, id string) error {
	for _, rc := range r.e.Schema().Collections {
		for _, f := range rc.Fields {
			if f.Type != schema.Relation || f.Collection != c.Name {
				continue
			}
			refs, err := r.tx.Referencing(rc, f.Name, id, r.budget+1)
			if err != nil {
				return err
			}
			refs = slices.DeleteFunc(refs, func(x *schema.Record) bool { return r.done[rc.Name+"/"+x.ID] })
			if len(refs) == 0 {
				continue
			}
			action := f.OnDeleteAction()
			if action == schema.OnDeleteRestrict {
				return mantle.Errorf(mantle.Conflict, "record.referenced",
					"%s %q is referenced by %s %q (field %s, onDelete: restrict); delete or change that record first, or declare onDelete: cascade or setNull",
					c.Name, id, rc.Name, refs[0].ID, f.Name)
			}
			if r.budget -= len(refs); r.budget < 0 {
				return mantle.Errorf(mantle.Conflict, "record.cascade_too_large",
					"deleting %s %q would delete or change more than %d records through onDelete; delete them in smaller steps", c.Name, id, maxCascade)
			}
			for _, ref := range refs {
				if err := r.apply(rc, f, action, ref); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *references) apply(rc *schema.Collection, f *schema.Field, action string, ref *schema.Record) error {
	ev := &eventlog.Event{Collection: rc.Name, Subject: ref.ID, Time: r.now, Actor: r.actor.ID}
	switch action {
	case schema.OnDeleteCascade:
		r.done[rc.Name+"/"+ref.ID] = true
		if err := r.of(rc, ref.ID); err != nil {
			return err
		}
		if err := r.tx.Delete(rc, ref.ID); err != nil {
			return err
		}
		ev.Type, ev.Data = eventlog.RecordDeleted, eventlog.NewRecordData(rc.MarshalRecord(ref), nil, nil)
		if rc.Name == schema.UsersCollection {
			if err := voidCredentials(r.tx, ref.ID, r.now); err != nil {
				return err
			}
		}
	case schema.OnDeleteSetNull:
		upd := ref.Clone()
		delete(upd.Data, f.Name)
		upd.Version++
		upd.UpdatedAt = r.now
		if err := r.tx.Update(rc, upd); err != nil {
			return err
		}
		ev.Type, ev.Data = eventlog.RecordUpdated, eventlog.NewRecordData(rc.MarshalRecord(upd), rc.MarshalRecord(ref), []string{f.Name})
	}
	return r.tx.Append(ev)
}
