package engine

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// gatedStore counts the reads of the log running at once and holds each
// until the test lets it go.
type gatedStore struct {
	store.Store
	in, most atomic.Int64
	gate     chan struct{}
}

func (g *gatedStore) Schema(context.Context) (*schema.Schema, error) { return &schema.Schema{}, nil }

func (g *gatedStore) Events(ctx context.Context, f store.EventFilter) ([]*eventlog.Event, error) {
	n := g.in.Add(1)
	for {
		m := g.most.Load()
		if n <= m || g.most.CompareAndSwap(m, n) {
			break
		}
	}
	<-g.gate
	g.in.Add(-1)
	return nil, nil
}

// Thousands of subscriptions catching up from the start of the log read it
// two at a time, leaving the other database connections to everyone else.
func TestCatchUpReadsAreCapped(t *testing.T) {
	g := &gatedStore{gate: make(chan struct{})}
	e, err := New(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); e.StoreEvents(context.Background(), store.EventFilter{After: 0, Limit: 4096}) }()
	}
	for g.in.Load() < 2 { // both slots taken
		runtime.Gosched()
	}
	for range 1000 { // every other reader has had its chance to get in
		runtime.Gosched()
	}
	for range 50 {
		g.gate <- struct{}{} // one read ends; a waiting one may start
	}
	wg.Wait()
	if most := g.most.Load(); most != 2 {
		t.Errorf("%d reads of the log ran at once, want 2", most)
	}
}

// Nothing outside the engine's write path appends a record or schema
// event: Audit and Transact refuse them, in any letter case.
func TestSystemDoorRefusesRecordEvents(t *testing.T) {
	for _, typ := range []string{"record.created", "Record.Deleted", "schema.applied"} {
		if err := checkSystemEvent(&eventlog.Event{Type: typ}); err == nil {
			t.Errorf("%s passed", typ)
		}
	}
	if err := checkSystemEvent(&eventlog.Event{Type: eventlog.AuthLogin}); err != nil {
		t.Errorf("an auth event: %v", err)
	}
	e, err := New(context.Background(), &gatedStore{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Audit(context.Background(), &eventlog.Event{Type: "record.created", Collection: "posts"}); err == nil {
		t.Error("Audit appended a record event")
	}
}

// writeStore runs every write at once against a transaction that keeps
// nothing.
type writeStore struct{ gatedStore }
type nopTx struct{ store.Tx }

func (nopTx) PutSecret(kind, key string, value []byte) error { return nil }
func (w *writeStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return fn(nopTx{})
}

// A kind of system state nobody registered cannot be written: the
// registry that replay and backups walk is complete by construction.
func TestUnregisteredStateIsRefused(t *testing.T) {
	e, err := New(context.Background(), &writeStore{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.RegisterState(StateKind{Name: "known", Owner: "test", What: "a test value", Copy: true}); err != nil {
		t.Fatal(err)
	}
	put := func(kind string) error {
		return e.Transact(context.Background(), func(tx SystemTx) error { return tx.PutSecret(kind, "k", []byte("v")) })
	}
	if err := put("known"); err != nil {
		t.Errorf("a registered kind: %v", err)
	}
	if err := put("stray"); err == nil {
		t.Error("an unregistered kind was written")
	}
	if err := e.RegisterState(StateKind{Name: "known", Owner: "other"}); err == nil {
		t.Error("a kind registered by two owners")
	}
}
