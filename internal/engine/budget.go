package engine

import (
	"context"
	"errors"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/store"
)

// ReadLimits bound what one read may cost, so that a few expensive
// queries (a substring filter with count=true over a large collection,
// thousands of subscriptions catching up from the start of the log)
// cannot take the database from everyone else.
type ReadLimits struct {
	// QueryTimeout bounds a list or an events page: the store interrupts
	// the statement when it runs out (SQLite's progress handler,
	// PostgreSQL's query cancellation). Default 5s.
	QueryTimeout time.Duration
	// AnonQueryTimeout is the budget of an anonymous caller's list,
	// waiting for a slot included. Default 1s.
	AnonQueryTimeout time.Duration
	// AnonConcurrency is how many anonymous lists run at once; more wait
	// their turn (within their budget), so anonymous traffic never holds
	// every database connection. Default 2.
	AnonConcurrency int
	// CatchUpConcurrency is how many reads of the log from the store run
	// at once for streams that fell behind the hub's ring (SSE, WebSocket,
	// Kafka, consumers); the rest wait their turn. Default 2.
	CatchUpConcurrency int
}

type limits struct {
	ReadLimits
	anon, catchUp chan struct{}
}

func newLimits(l ReadLimits) *limits {
	if l.QueryTimeout <= 0 {
		l.QueryTimeout = 5 * time.Second
	}
	if l.AnonQueryTimeout <= 0 {
		l.AnonQueryTimeout = time.Second
	}
	if l.AnonConcurrency <= 0 {
		l.AnonConcurrency = 2
	}
	if l.CatchUpConcurrency <= 0 {
		l.CatchUpConcurrency = 2
	}
	return &limits{ReadLimits: l, anon: make(chan struct{}, l.AnonConcurrency), catchUp: make(chan struct{}, l.CatchUpConcurrency)}
}

// SetReadLimits replaces the read limits; call it before serving.
func (e *Engine) SetReadLimits(l ReadLimits) { e.limits.Store(newLimits(l)) }

// budget gives a caller's query its gate (store.WithGate): the caller's
// time budget and, for an anonymous caller, one of the anonymous slots,
// both taken only when the store runs a statement: a page its cache
// answers waits for nothing and starts no timer.
func (e *Engine) budget(ctx context.Context, caller mantle.Identity) (context.Context, *store.Gate) {
	l := e.limits.Load()
	g := &store.Gate{Timeout: l.QueryTimeout}
	if caller.Anonymous() {
		g.Timeout, g.Slot = l.AnonQueryTimeout, l.anonSlot
	}
	return store.WithGate(ctx, g), g
}

// anonSlot waits for one of the anonymous slots within ctx's budget.
func (l *limits) anonSlot(ctx context.Context) (func(), error) {
	select {
	case l.anon <- struct{}{}:
		return func() { <-l.anon }, nil
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return nil, overBudget(l.AnonQueryTimeout)
		}
		return nil, ctx.Err()
	}
}

// overBudget is a query that ran out of its budget: a 503 the caller can
// act on.
func overBudget(budget time.Duration) error {
	return &mantle.Error{Code: mantle.Unavailable, Reason: "query.timeout", RetryAfter: 1,
		Message: "the query ran past its budget of " + budget.String() + "; narrow the filter, drop count=true, or sign in for a larger budget"}
}

// budgetErr returns the error of a query that failed through gate g: its
// budget's 503 when the budget ran out, the error as it is otherwise (a
// request whose client left included).
func budgetErr(g *store.Gate, err error) error {
	if err == nil || !g.Expired() {
		return err
	}
	var me *mantle.Error
	if errors.As(err, &me) && me.Reason == "query.timeout" {
		return err
	}
	return overBudget(g.Timeout)
}

// catchUp takes a catch-up slot for a read of the log from the store.
func (e *Engine) catchUp(ctx context.Context) (func(), error) {
	l := e.limits.Load()
	select {
	case l.catchUp <- struct{}{}:
		return func() { <-l.catchUp }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
