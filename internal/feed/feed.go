// Package feed is what every live channel of the event log shares (the
// SSE stream, the WebSocket realtime API): a subscription's matching
// (collections, types, the caller's view rule, a CEL filter), evaluated
// once per event for all subscribers that ask the same question, and a
// cursor that only moves forward through the log, from the hub's ring or,
// when it has fallen behind, from the store. Because the cursor never
// moves back and every event passes it exactly once, a subscriber sees no
// gap and no duplicate, however it reconnects.
package feed

import (
	"context"
	"slices"
	"strings"
	"unique"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// Source is what a feed reads: the engine.
type Source interface {
	Collection(name string) (*schema.Collection, error)
	Schema() *schema.Schema
	CanSee(caller mantle.Identity, ev *eventlog.Event) bool
	CanSeePrevious(caller mantle.Identity, ev *eventlog.Event) bool
	CompileFilter(coll, src string) (query.Expr, error)
	StoreEvents(ctx context.Context, f store.EventFilter) ([]*eventlog.Event, error)
}

// Spec is what a subscriber asks for.
type Spec struct {
	Collections []string // empty: all
	Types       []string // empty: all
	Filter      string   // CEL over the record of record events; empty: none
}

// Matcher decides which events a subscriber receives.
type Matcher struct {
	src    Source
	base   store.EventFilter
	exprs  map[string]query.Expr // per collection; nil: no filter
	caller mantle.Identity
	key    unique.Handle[string] // identity and spec: subscribers with one key share answers
	prev   unique.Handle[string] // identity: may it view an update's previous state
}

// NewMatcher checks a spec (unknown collections are not_found, a filter
// that fits none of the collections is invalid) and returns its matcher.
func NewMatcher(src Source, caller mantle.Identity, spec Spec) (*Matcher, error) {
	for _, c := range spec.Collections {
		if _, err := src.Collection(c); err != nil {
			return nil, err
		}
	}
	m := &Matcher{src: src, caller: caller, base: store.EventFilter{Collections: spec.Collections, Types: spec.Types}}
	if strings.TrimSpace(spec.Filter) != "" {
		colls := spec.Collections
		if len(colls) == 0 {
			for _, c := range src.Schema().Collections {
				colls = append(colls, c.Name)
			}
		}
		m.exprs = map[string]query.Expr{}
		var firstErr error
		for _, name := range colls {
			e, err := src.CompileFilter(name, spec.Filter)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			m.exprs[name] = e
		}
		if len(m.exprs) == 0 {
			return nil, firstErr
		}
	}
	roles := slices.Clone(caller.Roles)
	slices.Sort(roles)
	m.key = unique.Make(strings.Join([]string{caller.ID, caller.Email, strings.Join(roles, ","),
		strings.Join(spec.Collections, ","), strings.Join(spec.Types, ","), spec.Filter}, "\x00"))
	m.prev = unique.Make(strings.Join([]string{"previous", caller.ID, caller.Email, strings.Join(roles, ",")}, "\x00"))
	return m, nil
}

// View returns the event as this subscriber receives it, once Match has
// said yes: the event itself, or, when the caller may not view the
// record's previous state, the event without it (see
// engine.Engine.EventFor, which decides the same for the events API).
func (m *Matcher) View(ev *eventlog.Event) *eventlog.Event {
	if !ev.HasPrevious() || m.caller.IsAdmin() {
		return ev
	}
	if ev.Memo(m.prev, func() bool { return m.src.CanSeePrevious(m.caller, ev) }) {
		return ev
	}
	return ev.WithoutPrevious()
}

// Match reports whether the subscriber receives ev.
func (m *Matcher) Match(ev *eventlog.Event) bool {
	if !m.base.Match(ev) {
		return false
	}
	return ev.Memo(m.key, func() bool { return m.match(ev) })
}

func (m *Matcher) match(ev *eventlog.Event) bool {
	if !m.src.CanSee(m.caller, ev) {
		return false
	}
	if m.exprs == nil {
		return true
	}
	expr, ok := m.exprs[ev.Collection]
	if !ok {
		return false
	}
	c := m.src.Schema().Collection(ev.Collection)
	if c == nil {
		return false
	}
	rec, err := ev.Record(c)
	if err != nil {
		return false
	}
	return query.Eval(expr, func(name string) any { return query.Value(rec, name) })
}

// Cursor walks the log forward from a sequence.
type Cursor struct {
	hub   *eventlog.Hub
	shard int // the hub's wake shard for this cursor
	src   Source
	buf   []*eventlog.Event // reused by Next for events read from the hub
	After int64             // the last sequence passed
}

// NewCursor starts after sequence after.
func NewCursor(hub *eventlog.Hub, src Source, after int64) *Cursor {
	return &Cursor{hub: hub, shard: hub.Shard(), src: src, After: after}
}

// Next returns up to max events after the cursor and moves past them.
// With none, wait is closed when new events are published. The slice is
// valid until the next call.
func (c *Cursor) Next(ctx context.Context, max int) (evs []*eventlog.Event, wait <-chan struct{}, err error) {
	evs, ok, wait := c.hub.SinceInto(c.shard, c.After, max, c.buf)
	if ok {
		c.buf = evs
	} else {
		if evs, err = c.src.StoreEvents(ctx, store.EventFilter{After: c.After, Limit: max}); err != nil {
			return nil, nil, err
		}
	}
	if len(evs) > 0 {
		c.After = evs[len(evs)-1].Seq
	}
	return evs, wait, nil
}
