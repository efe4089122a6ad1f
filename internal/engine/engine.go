// Package engine is the one write path and the policy-filtered read path.
// Every mutation, from any transport, is an Engine.Write call that
// validates against the schema, checks the rules, and writes the rows and
// their events in one transaction.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/plan"
	"github.com/mantlehq/mantle/internal/policy"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// Engine serves reads and writes over a store.
type Engine struct {
	store  store.Store
	state  atomic.Pointer[state]
	limits atomic.Pointer[limits]
	reg    registry // the kinds of system state (state.go)
	now    func() time.Time
}

// state is the applied schema and what is derived from it; it is replaced
// whole when a schema is applied.
type state struct {
	schema    *schema.Schema
	compilers map[string]*query.Compiler
	rules     map[string]*policy.Set
}

func newState(s *schema.Schema) (*state, error) {
	if s == nil {
		s = &schema.Schema{}
	}
	st := &state{schema: s, compilers: map[string]*query.Compiler{}, rules: map[string]*policy.Set{}}
	for _, c := range s.Collections {
		comp, err := query.NewCompiler(c)
		if err != nil {
			return nil, err
		}
		st.compilers[c.Name] = comp
		if st.rules[c.Name], err = policy.Compile(c); err != nil {
			return nil, fmt.Errorf("rules of %s: %w", c.Name, err)
		}
	}
	return st, nil
}

// New returns an engine over st, starting from the schema it has applied.
func New(ctx context.Context, st store.Store) (*Engine, error) {
	s, err := st.Schema(ctx)
	if err != nil {
		return nil, err
	}
	e := &Engine{store: st, now: func() time.Time { return time.Now().UTC() }}
	state, err := newState(s)
	if err != nil {
		return nil, err
	}
	e.state.Store(state)
	e.limits.Store(newLimits(ReadLimits{}))
	return e, nil
}

// Rules returns the compiled rules of a collection of the applied schema.
// A collection of an older schema (one replaced while a request ran) gets
// its own rules compiled anew.
func (e *Engine) Rules(c *schema.Collection) *policy.Set {
	if s := e.state.Load().rules[c.Name]; s != nil && s.Collection() == c {
		return s
	}
	s, err := policy.Compile(c)
	if err != nil {
		return policy.DenyAll(c)
	}
	return s
}

// Schema returns the applied schema.
func (e *Engine) Schema() *schema.Schema { return e.state.Load().schema }

// Collection returns a collection of the applied schema, or not_found.
func (e *Engine) Collection(name string) (*schema.Collection, error) {
	if c := e.state.Load().schema.Collection(name); c != nil {
		return c, nil
	}
	return nil, mantle.Errorf(mantle.NotFound, "collection.not_found", "no collection %q", name)
}

// Plan returns the plan from the applied schema to s.
func (e *Engine) Plan(s *schema.Schema) *plan.Plan {
	applied := e.Schema()
	if len(applied.Collections) == 0 {
		applied = nil
	}
	return plan.New(applied, s)
}

// ApplyMode says which steps Apply may run.
type ApplyMode int

// Apply modes.
const (
	SafeOnly          ApplyMode = iota // run the steps that lose no data, skip the rest
	RefuseDestructive                  // run all steps, or none if any is destructive
	AllowDestructive                   // run all steps
)

// Apply migrates the database to s in one transaction and records a
// schema.applied event. It returns the plan it ran (nil if nothing to do)
// and, in SafeOnly mode, the destructive steps it skipped.
func (e *Engine) Apply(ctx context.Context, s *schema.Schema, mode ApplyMode) (ran *plan.Plan, skipped []schema.Step, err error) {
	p := e.Plan(s)
	switch d := p.Destructive(); {
	case len(d) > 0 && mode == RefuseDestructive:
		return nil, d, mantle.Errorf(mantle.FailedPrecondition, "schema.destructive",
			"the plan has %d destructive step(s) (first: %s); pass --allow-destructive to run them", len(d), d[0])
	case len(d) > 0 && mode == SafeOnly:
		skipped = d
		p = plan.New(p.From, schema.Safe(p.From, s))
	}
	if p.Empty() {
		return nil, skipped, nil
	}
	next, err := newState(p.To)
	if err != nil {
		return nil, nil, err
	}
	data, err := json.Marshal(map[string]any{"schema": p.To, "steps": p.StepStrings()})
	if err != nil {
		return nil, nil, err
	}
	actor := mantle.IdentityFrom(ctx).ID
	err = e.store.Write(ctx, func(tx store.Tx) error {
		if err := tx.Migrate(p.From, p.To, p.Steps); err != nil {
			return err
		}
		return tx.Append(&eventlog.Event{Type: eventlog.SchemaApplied, Time: e.now(), Actor: actor, Data: data})
	})
	if errors.Is(err, store.ErrSchemaApplied) { // another node of the cluster was first
		e.state.Store(next)
		return nil, skipped, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("apply schema: %w", err)
	}
	e.state.Store(next)
	return p, skipped, nil
}
