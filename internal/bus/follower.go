package bus

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/store"
)

// PollEvery is how often a follower reads the log even without an
// announcement: the bound on how late a lost announcement makes events.
const PollEvery = time.Second

// Follower keeps a node's hub in sequence order while other nodes write to
// the same log. The hub must get every event once, in order; this node's
// own commits come with their events but may follow sequences that other
// nodes committed first, and other nodes' commits come as announcements.
// So the follower publishes this node's events when they are next, and
// otherwise reads the missing sequences from the database, which holds
// every sequence below any committed one (see internal/store/postgres).
type Follower struct {
	hub  *eventlog.Hub
	read func(ctx context.Context, f store.EventFilter) ([]*eventlog.Event, error)
	log  *slog.Logger
	kick chan struct{}

	mu    sync.Mutex
	local []*eventlog.Event // this node's committed events not yet in the hub, in order
	known int64             // the highest sequence announced
}

// NewFollower returns a follower of the log read by read (a store's
// Events) that publishes into hub. Run starts it.
func NewFollower(hub *eventlog.Hub, read func(context.Context, store.EventFilter) ([]*eventlog.Event, error), log *slog.Logger) *Follower {
	if log == nil {
		log = slog.Default()
	}
	return &Follower{hub: hub, read: read, log: log, kick: make(chan struct{}, 1)}
}

// Committed takes this node's committed events (the store's commit hook).
// It does not block.
func (f *Follower) Committed(evs []*eventlog.Event) {
	f.mu.Lock()
	f.local = append(f.local, evs...)
	f.mu.Unlock()
	f.wake()
}

// Announced takes a sequence another node (or this one) committed.
func (f *Follower) Announced(last int64) {
	f.mu.Lock()
	if last > f.known {
		f.known = last
	}
	f.mu.Unlock()
	if last > f.hub.Last() {
		f.wake()
	}
}

func (f *Follower) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run keeps the hub up to date until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	t := time.NewTicker(PollEvery)
	defer t.Stop()
	for {
		poll := false
		select {
		case <-ctx.Done():
			return
		case <-f.kick:
		case <-t.C:
			poll = true
		}
		if err := f.catchUp(ctx, poll); err != nil && ctx.Err() == nil {
			f.log.Warn("bus: read the log", "err", err)
		}
	}
}

// catchUp publishes into the hub everything it lacks: this node's events
// while they are next in sequence, the rest from the database.
func (f *Follower) catchUp(ctx context.Context, poll bool) error {
	for {
		last := f.hub.Last()
		f.mu.Lock()
		i := 0
		for i < len(f.local) && f.local[i].Seq <= last {
			i++ // already published, read from the database
		}
		f.local = f.local[i:]
		j := 0
		for j < len(f.local) && f.local[j].Seq == last+int64(j)+1 {
			j++
		}
		next := f.local[:j:j]
		f.local = f.local[j:]
		behind := len(f.local) > 0 || f.known > last+int64(j)
		f.mu.Unlock()
		if len(next) > 0 {
			f.hub.Publish(next)
			continue
		}
		if !behind && !poll {
			return nil
		}
		evs, err := f.read(ctx, store.EventFilter{After: last, Limit: 1000})
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		f.hub.Publish(evs)
		poll = len(evs) == 1000
	}
}
