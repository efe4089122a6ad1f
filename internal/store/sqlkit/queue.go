// Package sqlkit is what the SQL store adapters (store/sqlite,
// store/postgres) share: the group-commit queue in front of their single
// writer, and the DDL of a schema's migration steps with the dialect's
// types and index forms.
package sqlkit

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/store"
)

// ErrClosed is the error of a write made after the store closed.
var ErrClosed = mantle.Errorf(mantle.Internal, "store.closed", "the store is closed")

// Call runs a write's fn, turning a panic into an internal error so that
// one bad write cannot stop the writer.
func Call(fn func(store.Tx) error, tx store.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in write: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(tx)
}

// Req is one queued write.
type Req struct {
	Fn   func(store.Tx) error
	Err  error      // set by the batch runner: fn's own error, or the batch's
	Done chan error // answered once, after the batch is durable or failed
}

// Queue hands concurrent writes to one writer goroutine in batches.
type Queue struct {
	ch   chan *Req
	stop chan struct{}
	done chan struct{}
	max  int
}

// NewQueue returns a queue whose batches hold at most max writes.
func NewQueue(max int) *Queue {
	return &Queue{ch: make(chan *Req, 1024), stop: make(chan struct{}), done: make(chan struct{}), max: max}
}

// Write queues fn and waits for its batch, even if ctx ends meanwhile:
// once queued, the write may commit, and the caller must learn whether it
// did.
func (q *Queue) Write(ctx context.Context, fn func(store.Tx) error) error {
	req := &Req{Fn: fn, Done: make(chan error, 1)}
	select {
	case q.ch <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-q.stop:
		return ErrClosed
	}
	return <-req.Done
}

// Run is the writer goroutine: it takes every queued write (up to the
// batch size) and runs them with run, which answers each, until Stop;
// then it finishes what was queued, one write at a time.
func (q *Queue) Run(run func(batch []*Req)) {
	defer close(q.done)
	batch := make([]*Req, 0, q.max)
	for {
		var first *Req
		select {
		case first = <-q.ch:
		case <-q.stop:
			for {
				select {
				case req := <-q.ch:
					run([]*Req{req})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
	drain:
		for len(batch) < q.max {
			select {
			case req := <-q.ch:
				batch = append(batch, req)
			default:
				break drain
			}
		}
		run(batch)
	}
}

// Stop ends Run after the writes already queued and waits for it.
func (q *Queue) Stop() {
	close(q.stop)
	<-q.done
}

// Stopped is closed when Stop begins.
func (q *Queue) Stopped() <-chan struct{} { return q.stop }

// Fail answers every write of a batch that has no error of its own with
// err.
func Fail(batch []*Req, err error) {
	for _, req := range batch {
		if req.Err == nil {
			req.Err = err
		}
		req.Done <- req.Err
	}
}

// Answer answers every write of a committed batch with its own result.
func Answer(batch []*Req) {
	for _, req := range batch {
		req.Done <- req.Err
	}
}
