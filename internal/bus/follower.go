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

	mu      sync.Mutex                // guards pending and known, and orders the hub's publishes
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
		f.wake() // announced without its events, or after a gap
	}
}

// take adds committed events and publishes at once what is next in
// sequence, in the caller's goroutine (the store's writer, NATS's
// delivery goroutine): the hub's Publish is quick, and a hop through the
// follower goroutine cost a wake-up on a busy machine. Only a gap wakes
// the follower, to read it from the database.
func (f *Follower) take(evs []*eventlog.Event) {
	if len(evs) == 0 {
		return
	}
	f.mu.Lock()
	done := f.hub.Last()
	for _, e := range evs {
		if e.Seq > done {
			if _, dup := f.pending[e.Seq]; !dup {
				f.pending[e.Seq] = e
			}
		}
	}
	behind := f.publishNext()
	f.mu.Unlock()
	if behind {
		f.wake()
	}
}

// publishNext publishes the pending events that are next in sequence and
// reports whether the hub is still behind (a gap, or announced sequences
// it has not got). f.mu is held.
func (f *Follower) publishNext() (behind bool) {
	last := f.hub.Last()
	var next []*eventlog.Event
	for e := f.pending[last+1]; e != nil; e = f.pending[last+int64(len(next))+1] {
		next = append(next, e)
	}
	last += int64(len(next))
	for seq := range f.pending {
		if seq <= last {
			delete(f.pending, seq)
		}
	}
	if len(next) > 0 {
		f.hub.Publish(next)
	}
	return len(f.pending) > 0 || f.known > last
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
// while they are next in sequence, the rest read from the database
// (outside the lock: a read must not hold up the writer's commits).
func (f *Follower) catchUp(ctx context.Context, poll bool) error {
	for {
		f.mu.Lock()
		behind := f.publishNext()
		last := f.hub.Last()
		f.mu.Unlock()
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
		f.mu.Lock()
		if now := f.hub.Last(); now > last { // published meanwhile: keep the rest
			i := 0
			for i < len(evs) && evs[i].Seq <= now {
				i++
			}
			evs = evs[i:]
		}
		if len(evs) > 0 {
			f.hub.Publish(evs)
		}
		f.mu.Unlock()
		poll = len(evs) == 1000
	}
}
