package engine

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strconv"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// Get returns a record the caller may view; others are not found.
func (e *Engine) Get(ctx context.Context, coll, id string) (*schema.Collection, *schema.Record, error) {
	c, err := e.Collection(coll)
	if err != nil {
		return nil, nil, err
	}
	caller := mantle.IdentityFrom(ctx)
	rules := e.Rules(c)
	if err := rules.Allow(caller, schema.OpView, nil, nil); mantle.ErrorCode(err) == mantle.Unauthenticated {
		return nil, nil, err
	}
	if !mantle.ValidID(id) {
		return nil, nil, notFound(c, id)
	}
	r, err := e.store.Get(ctx, c, id)
	if err != nil {
		return nil, nil, err
	}
	if !rules.CanView(caller, r) {
		return nil, nil, notFound(c, id)
	}
	return c, r, nil
}

// GetAt returns the record as it was right after event seq: the record
// JSON of its last event at or before seq. A record that did not exist
// then, or had been deleted, is not found. The caller must be allowed to
// view that version and, when the record still exists, its current one:
// time travel shows nothing the view rule hides today.
func (e *Engine) GetAt(ctx context.Context, coll, id string, seq int64) (json.RawMessage, error) {
	c, err := e.Collection(coll)
	if err != nil {
		return nil, err
	}
	caller := mantle.IdentityFrom(ctx)
	rules := e.Rules(c)
	if err := rules.Allow(caller, schema.OpView, nil, nil); err != nil {
		if mantle.ErrorCode(err) == mantle.Unauthenticated {
			return nil, err
		}
		return nil, notFound(c, id)
	}
	if !mantle.ValidID(id) {
		return nil, notFound(c, id)
	}
	ev, err := e.store.RecordEvent(ctx, c.Name, id, seq)
	if err != nil {
		return nil, err
	}
	if ev.Type == eventlog.RecordDeleted {
		return nil, mantle.Errorf(mantle.NotFound, "record.not_found", "record %q in %q was deleted at sequence %d", id, c.Name, ev.Seq)
	}
	var d eventlog.RecordData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return nil, err
	}
	then, err := c.ParseRecord(d.Record)
	if err != nil {
		return nil, err
	}
	if !rules.CanView(caller, then) {
		return nil, notFound(c, id)
	}
	now, err := e.store.Get(ctx, c, id)
	switch {
	case mantle.ErrorCode(err) == mantle.NotFound:
	case err != nil:
		return nil, err
	case !rules.CanView(caller, now):
		return nil, notFound(c, id)
	}
	return d.Record, nil
}

// Page is one page of a list, with what is needed to render it.
type Page struct {
	Collection *schema.Collection
	Query      *query.Query
	Records    []*schema.Record             // nil when JSON is set
	JSON       [][]byte                     // each record's JSON, when no expansion was asked
	Expanded   []map[string]json.RawMessage // per record, when expand was asked
	NextCursor string                       // empty on the last page
	Total      int64                        // -1 unless counted
}

// AppendJSON appends the page as the records API renders it:
// {"items": […], "nextCursor": "…" or null, "total": n when counted}.
func (p *Page) AppendJSON(b []byte) []byte {
	b = append(b, `{"items":[`...)
	for i, item := range p.JSON {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, item...)
	}
	for i, rec := range p.Records {
		if i > 0 {
			b = append(b, ',')
		}
		var exp map[string]json.RawMessage
		if p.Expanded != nil {
			exp = p.Expanded[i]
		}
		b = p.Collection.AppendJSON(b, rec, p.Query.Fields, exp)
	}
	b = append(b, `],"nextCursor":`...)
	if p.NextCursor == "" {
		b = append(b, "null"...)
	} else {
		b = schema.AppendString(b, p.NextCursor)
	}
	if p.Total >= 0 {
		b = append(b, `,"total":`...)
		b = strconv.AppendInt(b, p.Total, 10)
	}
	return append(b, '}')
}

// List returns a page of the records the caller may list.
func (e *Engine) List(ctx context.Context, coll string, params url.Values) (*Page, error) {
	c, err := e.Collection(coll)
	if err != nil {
		return nil, err
	}
	caller := mantle.IdentityFrom(ctx)
	allowed, err := e.Rules(c).ListFilter(caller)
	if err != nil {
		return nil, err
	}
	q, err := query.Parse(c, e.state.Load().compilers[c.Name], params)
	if err != nil {
		return nil, err
	}
	q.Filter = query.Simplify(query.And{L: allowed, R: q.Filter})
	q.Encode = len(q.Expand) == 0
	ctx, gate := e.budget(ctx, caller)
	sp, err := e.store.List(ctx, c, q)
	if err != nil {
		return nil, budgetErr(gate, err)
	}
	p := &Page{Collection: c, Query: q, Records: sp.Records, JSON: sp.JSON, Total: sp.Total}
	if sp.More {
		p.NextCursor = sp.Cursor(func() string {
			if len(sp.Records) == 0 {
				return "" // a store that set no cursor and kept no record
			}
			return q.Cursor(sp.Records[len(sp.Records)-1])
		})
	}
	if q.Encode {
		p.Records = nil
	}
	if len(q.Expand) > 0 {
		ectx, cancel := context.WithTimeout(ctx, gate.Timeout)
		defer cancel()
		if p.Expanded, err = e.expand(ectx, caller, c, q.Expand, sp.Records); err != nil {
			if ectx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
				return nil, overBudget(gate.Timeout)
			}
			return nil, err
		}
	}
	return p, nil
}

func (e *Engine) expand(ctx context.Context, caller mantle.Identity, c *schema.Collection, fields []string, recs []*schema.Record) ([]map[string]json.RawMessage, error) {
	out := make([]map[string]json.RawMessage, len(recs))
	for i := range out {
		out[i] = map[string]json.RawMessage{}
	}
	for _, name := range fields {
		f := c.Field(name)
		target, err := e.Collection(f.Collection)
		if err != nil {
			continue
		}
		var ids []string
		seen := map[string]bool{}
		for _, r := range recs {
			if id, ok := r.Data[name].(string); ok && !seen[id] {
				seen[id] = true
				ids = append(ids, id)
			}
		}
		related, err := e.store.GetMany(ctx, target, ids)
		if err != nil {
			return nil, err
		}
		rules := e.Rules(target)
		for i, r := range recs {
			id, _ := r.Data[name].(string)
			switch rel := related[id]; {
			case id == "":
			case rel != nil && rules.CanView(caller, rel):
				out[i][name] = target.MarshalRecord(rel)
			default: // gone, or not for this caller: null, never the bare id
				out[i][name] = json.RawMessage("null")
			}
		}
	}
	return out, nil
}

// Events returns events after f.After that the caller may see: record
// events of collections whose view rule admits the caller, and, for
// administrators, every event. covered is the sequence to resume after:
// every event up to it was examined (hidden ones skipped).
func (e *Engine) Events(ctx context.Context, f store.EventFilter) (evs []*eventlog.Event, covered int64, err error) {
	last, err := e.store.LastSeq(ctx)
	if err != nil {
		return nil, 0, err
	}
	if err := afterHead(f.After, last); err != nil {
		return nil, 0, err
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	caller := mantle.IdentityFrom(ctx)
	ctx, gate := e.budget(ctx, caller)
	evs, err = e.store.Events(ctx, f)
	if err != nil {
		return nil, 0, budgetErr(gate, err)
	}
	covered = max(last, f.After)
	if len(evs) > 0 {
		if len(evs) == f.Limit || evs[len(evs)-1].Seq > covered {
			covered = evs[len(evs)-1].Seq
		}
	}
	out := evs[:0]
	for _, ev := range evs {
		if v := e.EventFor(caller, ev); v != nil {
			out = append(out, v)
		}
	}
	return out, covered, nil
}

// EventFor returns the event as the caller receives it on any channel:
// nil when the caller may not see it (CanSee); the event without its
// previous state when the caller may view the record now but not as it
// was (CanSeePrevious); otherwise the event itself. Every channel that
// delivers events to a caller decides through it or through the same two
// checks (internal/feed), so none reveals what the view rule hides.
func (e *Engine) EventFor(caller mantle.Identity, ev *eventlog.Event) *eventlog.Event {
	if !e.CanSee(caller, ev) {
		return nil
	}
	if !e.CanSeePrevious(caller, ev) {
		return ev.WithoutPrevious()
	}
	return ev
}

// CanSeePrevious reports whether the caller may view the previous state
// an update event carries: the collection's view rule, evaluated on the
// record as it was before the update. A post that was a draft and is now
// published shows its new state to everyone, and its draft to nobody who
// could not read the draft. Events without a previous state pass.
func (e *Engine) CanSeePrevious(caller mantle.Identity, ev *eventlog.Event) bool {
	if !ev.HasPrevious() {
		return true
	}
	return e.canView(caller, ev, func(c *schema.Collection) (*schema.Record, error) {
		prev, err := ev.Previous(c)
		if prev == nil && err == nil {
			return nil, errNoState
		}
		return prev, err
	})
}

// errNoState: the event carries no state to judge (nothing to hide).
var errNoState = errors.New("no state")

// CanSee reports whether the caller may see an event: administrators see
// every event; others see record events whose record (for a deletion, the
// record as it was) the collection's view rule admits.
func (e *Engine) CanSee(caller mantle.Identity, ev *eventlog.Event) bool {
	return e.canView(caller, ev, ev.Record)
}

// canView is the view rule of an event's collection for the caller, on
// the state that state picks from the event: administrators and open
// collections pass, events of no collection fail (a state that is not
// there passes: errNoState).
func (e *Engine) canView(caller mantle.Identity, ev *eventlog.Event, state func(*schema.Collection) (*schema.Record, error)) bool {
	if caller.IsAdmin() {
		return true
	}
	c := e.Schema().Collection(ev.Collection)
	if c == nil {
		return false
	}
	rules := e.Rules(c)
	if rules.Open(schema.OpView) {
		return true
	}
	r, err := state(c)
	if errors.Is(err, errNoState) {
		return true
	}
	return err == nil && rules.CanView(caller, r)
}

// CheckAfter refuses a resume point past the end of the log: a consumer
// whose cursor is ahead of the log (a log restored from a backup, a
// cursor of another deployment) must notice, not wait in silence for
// sequences that were never written, or were written with other events.
func (e *Engine) CheckAfter(ctx context.Context, after int64) error {
	last, err := e.store.LastSeq(ctx)
	if err != nil {
		return err
	}
	return afterHead(after, last)
}

func afterHead(after, last int64) error {
	if after > last {
		return mantle.Errorf(mantle.Invalid, "query.after_past_head",
			"after %d is past the end of the log (sequence %d): start again from %d or earlier; this log is not the one your cursor came from, or it was restored", after, last, last)
	}
	return nil
}

// LastSeq returns the last sequence of the log.
func (e *Engine) LastSeq(ctx context.Context) (int64, error) { return e.store.LastSeq(ctx) }

// StoreEvents reads events from the log without filtering them by caller;
// transports that tail the log apply CanSee themselves.
// Reads take one of the few catch-up slots (ReadLimits), so that
// thousands of subscriptions starting from the beginning of the log read
// it a few at a time instead of holding every database connection.
func (e *Engine) StoreEvents(ctx context.Context, f store.EventFilter) ([]*eventlog.Event, error) {
	done, err := e.catchUp(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return e.store.Events(ctx, f)
}

// CompileFilter compiles a filter for a collection with the compiler the
// applied schema keeps for it (its cache of checked filters included).
func (e *Engine) CompileFilter(coll, src string) (query.Expr, error) {
	c, err := e.Collection(coll)
	if err != nil {
		return nil, err
	}
	return e.state.Load().compilers[c.Name].Compile(src)
}
