package eventlog

import (
	"sync"
	"sync/atomic"
	"time"
)

// DefaultHubSize is how many recent events the hub keeps in memory.
const DefaultHubSize = 8192

// Wake coalescing. Every wake costs each waiting subscriber a goroutine
// switch, a look at the ring and a socket write, whether it brings one new
// event or fifty. So while publishes come faster than the subscribers can
// usefully be woken, the hub wakes them at most once per gap, where the
// gap grows with the number of subscribers waiting (wakeCostPerWaiter
// each, at most maxWakeGap): a hundred subscribers wait at most 1 ms
// longer, a thousand at most 10 ms, and the CPU spent on wakes stays
// about the same whatever the write rate. A publish after a quiet spell
// (longer than the gap) wakes at once.
const (
	wakeCostPerWaiter = 10 * time.Microsecond
	maxWakeGap        = 20 * time.Millisecond
)

// Hub keeps the most recent committed events in a ring and wakes
// subscribers when new ones arrive. Subscribers that fall behind the ring
// read older events from the store. Publish must be called in sequence
// order, once per committed event; the store's writer does that.
//
// Reading (Since, Last, Wake) takes no lock: a thousand subscribers woken
// together do not queue on a mutex.
type Hub struct {
	ring []atomic.Pointer[Event]
	last atomic.Int64                  // highest published seq
	wake atomic.Pointer[chan struct{}] // closed and replaced on every wake
	// waiters counts the subscribers that found nothing new since the
	// last wake: about how many the next wake will wake.
	waiters atomic.Int64

	mu       sync.Mutex // publishers and the wake timer
	lastWake time.Time
	pending  bool // a wake is scheduled
	timer    *time.Timer
}

// NewHub returns a hub whose log ends at last.
func NewHub(size int, last int64) *Hub {
	if size <= 0 {
		size = DefaultHubSize
	}
	h := &Hub{ring: make([]atomic.Pointer[Event], size)}
	h.last.Store(last)
	w := make(chan struct{})
	h.wake.Store(&w)
	return h
}

// Publish adds committed events, in order, and wakes subscribers, at once
// or, while publishes come thick and fast, within the wake gap.
func (h *Hub) Publish(evs []*Event) {
	if len(evs) == 0 {
		return
	}
	for _, e := range evs {
		if e.encoded == nil {
			e.encoded = e.AppendJSON(nil)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range evs {
		h.ring[e.Seq%int64(len(h.ring))].Store(e)
	}
	h.last.Store(evs[len(evs)-1].Seq)
	if h.pending {
		return // the scheduled wake will bring these too
	}
	now := time.Now()
	gap := min(maxWakeGap, time.Duration(h.waiters.Load())*wakeCostPerWaiter)
	if since := now.Sub(h.lastWake); since < gap {
		h.pending = true
		if h.timer == nil {
			h.timer = time.AfterFunc(gap-since, h.fire)
		} else {
			h.timer.Reset(gap - since)
		}
		return
	}
	h.wakeLocked(now)
}

func (h *Hub) fire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending {
		h.pending = false
		h.wakeLocked(time.Now())
	}
}

func (h *Hub) wakeLocked(now time.Time) {
	w := make(chan struct{})
	old := h.wake.Swap(&w)
	close(*old)
	h.lastWake = now
	h.waiters.Store(0)
}

// Reset forgets the ring and sets the end of the log, for a log that was
// changed outside the hub (a replay).
func (h *Hub) Reset(last int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.ring {
		h.ring[i].Store(nil)
	}
	h.last.Store(last)
	h.pending = false
	if h.timer != nil {
		h.timer.Stop()
	}
	h.wakeLocked(time.Now())
}

// Wake returns a channel that is closed at the next wake after a Publish.
// Take it before reading the log: then no publish can be missed.
func (h *Hub) Wake() <-chan struct{} {
	h.waiters.Add(1)
	return *h.wake.Load()
}

// Last returns the highest published sequence.
func (h *Hub) Last() int64 { return h.last.Load() }

// Since returns up to max events after seq after. ok is false when the
// ring no longer holds event after+1 and the caller must read the store.
// wait is closed when events newer than the returned ones are published.
func (h *Hub) Since(after int64, max int) (evs []*Event, ok bool, wait <-chan struct{}) {
	// The channel first, then the end of the log: a publish that this
	// read misses closes this channel or one taken after it, which is
	// closed only after this one.
	w := *h.wake.Load()
	last := h.last.Load()
	for s := after + 1; s <= last && len(evs) < max; s++ {
		e := h.ring[s%int64(len(h.ring))].Load()
		if e == nil || e.Seq != s {
			// Not in the ring (older than it, or overwritten while we
			// read): what was read so far is good, the rest is the store's.
			return evs, len(evs) > 0, w
		}
		evs = append(evs, e)
	}
	if len(evs) == 0 {
		h.waiters.Add(1)
	}
	return evs, true, w
}
