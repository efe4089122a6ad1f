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
// nodes committed first, and other nodes' commits come as announcements,
// usually with their events, in whatever order the nodes' messages cross.
// So the follower publishes the events it holds while they are next, and
// reads the missing sequences from the database, which holds every
// sequence below any committed one (see internal/store/postgres).
type Follower struct {
	hub  *eventlog.Hub
	read func(ctx context.Context, f store.EventFilter) ([]*eventlog.Event, error)
	log  *slog.Logger
	kick chan struct{}

	mu      sync.Mutex
	pending map[int64]*eventlog.Event // committed events not yet in the hub, by sequence
	known   int64                     // the highest sequence announced
}

// NewFollower returns a follower of the log read by read (a store's
// Events) that publishes into hub. Run starts it.
func NewFollower(hub *eventlog.Hub, read func(context.Context, store.EventFilter) ([]*eventlog.Event, error), log *slog.Logger) *Follower {
	if log == nil {
		log = slog.Default()
	}
	return &Follower{hub: hub, read: read, log: log, kick: make(chan struct{}, 1), pending: map[int64]*eventlog.Event{}}
}

// Committed takes this node's committed events (the store's commit hook).
// It does not block.
func (f *Follower) Committed(evs []*eventlog.Event) { f.take(evs) }

// Announced takes an announcement: the last sequence a node committed
// and, when it carried them, the events of that commit.
func (f *Follower) Announced(last int64, evs []*eventlog.Event) {
	f.mu.Lock()
	if last > f.known {
		f.known = last
	}
	f.mu.Unlock()
	f.take(evs)
	if last > f.hub.Last() {
		f.wake()
	}
}

func (f *Follower) take(evs []*eventlog.Event) {
	if len(evs) == 0 {
		return
	}
	done := f.hub.Last()
	f.mu.Lock()
	for _, e := range evs {
		if e.Seq > done {
			if _, dup := f.pending[e.Seq]; !dup {
				f.pending[e.Seq] = e
			}
		}
	}
	f.mu.Unlock()
	f.wake()
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

// catchUp publishes into the hub everything it lacks: the events it holds
// while they are next in sequence, the rest from the database.
func (f *Follower) catchUp(ctx context.Context, poll bool) error {
	for {
		last := f.hub.Last()
		f.mu.Lock()
		var next []*eventlog.Event
		for e := f.pending[last+1]; e != nil; e = f.pending[last+int64(len(next))+1] {
			next = append(next, e)
		}
		for seq := range f.pending {
			if seq <= last+int64(len(next)) {
				delete(f.pending, seq)
			}
		}
		behind := len(f.pending) > 0 || f.known > last+int64(len(next))
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
