package engine

import (
	"context"
	"errors"
	"time"

	"github.com/mantlehq/mantle"
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

// budget gives a caller's query its context: the caller's time budget
// and, for an anonymous caller, one of the anonymous slots. done releases
// both.
func (e *Engine) budget(ctx context.Context, caller mantle.Identity) (context.Context, func(), error) {
	l := e.limits.Load()
	if !caller.Anonymous() {
		ctx, cancel := context.WithTimeout(ctx, l.QueryTimeout)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.AnonQueryTimeout)
	select {
	case l.anon <- struct{}{}:
		return ctx, func() { <-l.anon; cancel() }, nil
	case <-ctx.Done():
		cancel()
		return nil, nil, overBudget(ctx, l.AnonQueryTimeout)
	}
}

// overBudget turns a query that ran out of its budget into a 503 the
// caller can act on; a request whose client left stays as it was.
func overBudget(ctx context.Context, budget time.Duration) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ctx.Err()
	}
	return &mantle.Error{Code: mantle.Unavailable, Reason: "query.timeout", RetryAfter: 1,
		Message: "the query ran past its budget of " + budget.String() + "; narrow the filter, drop count=true, or sign in for a larger budget"}
}

// budgetErr returns the error of a query that failed under ctx.
func budgetErr(ctx context.Context, caller mantle.Identity, l *limits, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	b := l.QueryTimeout
	if caller.Anonymous() {
		b = l.AnonQueryTimeout
	}
	return overBudget(ctx, b)
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
