package store

import (
	"context"
	"errors"
	"time"
)

// Gate is what a read passes before it runs a statement: the caller's
// time budget and, for some callers, a slot of their class (the engine
// gives anonymous callers a few). The engine puts it in the context; a
// store calls Enter just before it asks the database, after answering
// from its caches, so that a read served from memory neither waits behind
// one that runs a query nor pays for a timer.
type Gate struct {
	// Timeout bounds the statements run through the gate, waiting for a
	// slot included; 0: no bound.
	Timeout time.Duration
	// Slot, when set, waits for a slot within ctx and returns its release.
	Slot func(ctx context.Context) (release func(), err error)

	ctx context.Context // of the last Enter
}

type gateKey struct{}

// WithGate returns ctx with g as the gate of the reads made under it. A
// gate serves one request: its reads run one after another.
func WithGate(ctx context.Context, g *Gate) context.Context {
	return context.WithValue(ctx, gateKey{}, g)
}

// Enter passes ctx's gate, if it has one, and returns the context to run
// the statement in (with the budget's deadline) and what to call when it
// is done. The error is the slot's (the budget ran out waiting).
func Enter(ctx context.Context) (context.Context, func(), error) {
	g, ok := ctx.Value(gateKey{}).(*Gate)
	if !ok {
		return ctx, func() {}, nil
	}
	sctx, cancel := ctx, context.CancelFunc(func() {})
	if g.Timeout > 0 {
		sctx, cancel = context.WithTimeout(ctx, g.Timeout)
	}
	g.ctx = sctx
	if g.Slot == nil {
		return sctx, cancel, nil
	}
	release, err := g.Slot(sctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return sctx, func() { release(); cancel() }, nil
}

// Expired reports whether the budget of the gate's last statement ran
// out.
func (g *Gate) Expired() bool {
	return g.ctx != nil && errors.Is(g.ctx.Err(), context.DeadlineExceeded)
}
