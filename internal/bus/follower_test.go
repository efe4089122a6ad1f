package bus

import (
	"context"
	"sync"
	"testing"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/store"
)

// fakeLog is the shared log of a cluster in memory.
type fakeLog struct {
	mu    sync.Mutex
	evs   []*eventlog.Event
	reads int
}

func (l *fakeLog) commit(n int) []*eventlog.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*eventlog.Event
	for range n {
		e := &eventlog.Event{Seq: int64(len(l.evs) + 1), Type: "test"}
		l.evs = append(l.evs, e)
		out = append(out, e)
	}
	return out
}

func (l *fakeLog) read(_ context.Context, f store.EventFilter) ([]*eventlog.Event, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	var out []*eventlog.Event
	for _, e := range l.evs {
		if e.Seq > f.After && len(out) < f.Limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func hubSeqs(t *testing.T, h *eventlog.Hub) []int64 {
	t.Helper()
	var got []int64
	evs, ok, _ := h.SinceIn(0, 0, 1<<20)
	if !ok {
		t.Fatal("the hub lost its start")
	}
	for _, e := range evs {
		got = append(got, e.Seq)
	}
	return got
}

// TestFollowerKeepsOrder interleaves this node's commits with other
// nodes' (announced or not): the hub must hold every sequence once, in
// order, and this node's own events must go in without a read when they
// are next.
func TestFollowerKeepsOrder(t *testing.T) {
	l := &fakeLog{}
	hub := eventlog.NewHub(0, 0)
	f := NewFollower(hub, l.read, nil)
	ctx := context.Background()

	f.Committed(l.commit(3)) // ours, next: no read needed
	if err := f.catchUp(ctx, false); err != nil {
		t.Fatal(err)
	}
	if l.reads != 0 || hub.Last() != 3 {
		t.Fatalf("own events: %d reads, hub at %d", l.reads, hub.Last())
	}

	other := l.commit(2) // another node's, announced without its events
	f.Announced(other[1].Seq, nil)
	mine := l.commit(2) // ours, after theirs: must wait for 4 and 5
	f.Committed(mine)
	if err := f.catchUp(ctx, false); err != nil {
		t.Fatal(err)
	}
	l.commit(1) // another node's, never announced: the poll finds it
	if err := f.catchUp(ctx, true); err != nil {
		t.Fatal(err)
	}
	got := hubSeqs(t, hub)
	if len(got) != 8 {
		t.Fatalf("hub holds %v, want 1..8", got)
	}
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("hub holds %v, want 1..8 in order", got)
		}
	}
	f.Committed(mine) // a late duplicate of what is in already
	if err := f.catchUp(ctx, false); err != nil || hub.Last() != 8 || len(f.pending) != 0 {
		t.Fatalf("a duplicate moved the hub to %d (pending %d): %v", hub.Last(), len(f.pending), err)
	}

	// Announcements that carry their events go in without a read.
	evs := l.commit(1)
	reads := l.reads
	f.Announced(evs[0].Seq, evs)
	if err := f.catchUp(ctx, false); err != nil {
		t.Fatal(err)
	}
	if l.reads != reads || hub.Last() != 9 {
		t.Fatalf("a carried event: %d reads, hub at %d", l.reads-reads, hub.Last())
	}
	// Crossing announcements: 11 arrives before 10. The gap is read from
	// the database; the late 10 changes nothing.
	evs = l.commit(2)
	f.Announced(evs[1].Seq, evs[1:])
	if err := f.catchUp(ctx, false); err != nil {
		t.Fatal(err)
	}
	f.Announced(evs[0].Seq, evs[:1])
	if err := f.catchUp(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got := hubSeqs(t, hub); len(got) != 11 || got[9] != 10 || got[10] != 11 || len(f.pending) != 0 {
		t.Fatalf("hub holds %v (pending %d)", got, len(f.pending))
	}
}
