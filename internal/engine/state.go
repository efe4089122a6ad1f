package engine

import (
	"fmt"
	"slices"
	"sync"
)

// StateKind is a kind of system state: what Mantle keeps beside the
// records that the log does not carry (sessions, keys, cursors, offsets,
// dead letters, links). Every kind is registered once, by the composition
// root, and a transaction refuses a kind that is not: the registry is
// complete by construction, and replay and backups walk it.
type StateKind struct {
	Name  string // the kind, as stored
	Owner string // the package that writes it
	What  string // one line: what a value is
	// Copy says whether a copy of the data folder (replay, a backup) takes
	// it; false for state that belongs to one deployment (its cluster).
	Copy bool
}

// ConsumerKinds are the kinds of a durable consumer kind (internal/consumer):
// cursors, replay requests, dead letters and schedules' last ticks.
func ConsumerKinds(kind, owner string) []StateKind {
	return []StateKind{
		{Name: kind + "_cursor", Owner: owner, What: "a consumer's last handled sequence", Copy: true},
		{Name: kind + "_replay", Owner: owner, What: "a pending replay's starting sequence", Copy: true},
		{Name: kind + "_dead", Owner: owner, What: "an event given up on, with its attempts", Copy: true},
		{Name: kind + "_schedule", Owner: owner, What: "a schedule's last tick", Copy: true},
	}
}

type registry struct {
	mu    sync.RWMutex
	kinds map[string]StateKind
}

// RegisterState adds kinds of system state (the composition root does, at
// start). Registering a name twice with different owners is an error.
func (e *Engine) RegisterState(kinds ...StateKind) error {
	e.reg.mu.Lock()
	defer e.reg.mu.Unlock()
	if e.reg.kinds == nil {
		e.reg.kinds = map[string]StateKind{}
	}
	for _, k := range kinds {
		if old, ok := e.reg.kinds[k.Name]; ok && old.Owner != k.Owner {
			return fmt.Errorf("state kind %q is registered by %s and %s", k.Name, old.Owner, k.Owner)
		}
		e.reg.kinds[k.Name] = k
	}
	return nil
}

// StateKinds returns the registered kinds, by name.
func (e *Engine) StateKinds() []StateKind {
	e.reg.mu.RLock()
	defer e.reg.mu.RUnlock()
	out := make([]StateKind, 0, len(e.reg.kinds))
	for _, k := range e.reg.kinds {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b StateKind) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return out
}

// registered refuses a write of a kind nobody registered (a bug: the kind
// would be missed by replay and backups). An engine with no registry at
// all (tools and tests that build one bare) takes any kind.
func (e *Engine) registered(kind string) error {
	if e == nil {
		return nil // the engine's own writes (user epochs)
	}
	e.reg.mu.RLock()
	defer e.reg.mu.RUnlock()
	if e.reg.kinds == nil {
		return nil
	}
	if _, ok := e.reg.kinds[kind]; !ok {
		return fmt.Errorf("engine: state kind %q is not registered (internal/app.StateKinds)", kind)
	}
	return nil
}
