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
// each, at most maxWakeGap): a hundred subscribers wait at most 2.5 ms
// longer, a thousand at most 25 ms, and the CPU spent on wakes stays
// about the same whatever the write rate. A publish after a quiet spell
// (longer than the gap) starts a wake at once. The cost per waiter was
// measured (docs/BENCHMARKS.md): 10 µs saturated two cores at a thousand
// subscribers and a thousand writes a second, and the queueing that
// followed cost more latency than the longer gap.
//
// Waves. Subscribers are spread over wakeShards wake channels, and a wake
// closes them one after another across the gap rather than all at once.
// Go runs runnable goroutines first come, first served: a thousand
// subscribers made runnable together would put every write request (the
// HTTP handler, the store's writer, the answer) behind all of their socket
// writes, several times over, and a write under fan-out took 50 ms
// instead of 2. In waves, a write waits for an eighth of them at most.
const (
	wakeCostPerWaiter = 25 * time.Microsecond
	maxWakeGap        = 40 * time.Millisecond
	wakeShards        = 8
	minWaveStep       = 50 * time.Microsecond // below this a wake closes every shard at once
)

// Hub keeps the most recent committed events in a ring and wakes
// subscribers when new ones arrive. Subscribers that fall behind the ring
// read older events from the store. Publish must be called in sequence
// order, once per committed event; the store's writer does that.
//
// Reading (SinceIn, Last, Wake) takes no lock: a thousand subscribers woken
// together do not queue on a mutex.
type Hub struct {
	ring []atomic.Pointer[Event]
	last atomic.Int64 // highest published seq
	// wake holds each shard's channel, closed and replaced on every wake.
	wake [wakeShards]atomic.Pointer[chan struct{}]
	// waiters counts the subscribers that found nothing new since the
	// last wake: about how many the next wake will wake.
	waiters   atomic.Int64
	nextShard atomic.Uint32

	observe atomic.Pointer[func([]*Event)] // see Observe

	mu       sync.Mutex // publishers and the wake timer
	lastWake time.Time  // when the last wave began
	pending  bool       // events were published since the last wave began
	wave     int        // the next shard of the wave in progress; 0: none
	step     time.Duration
	timer    *time.Timer
}

// NewHub returns a hub whose log ends at last.
func NewHub(size int, last int64) *Hub {
	if size <= 0 {
		size = DefaultHubSize
	}
	h := &Hub{ring: make([]atomic.Pointer[Event], size)}
	h.last.Store(last)
	for i := range h.wake {
		w := make(chan struct{})
		h.wake[i].Store(&w)
	}
	h.timer = time.AfterFunc(time.Hour, h.fire)
	h.timer.Stop()
	return h
}

// Shard returns the wake shard for a new subscriber (round robin).
func (h *Hub) Shard() int { return int(h.nextShard.Add(1) % wakeShards) }

// Observe sets a function that sees every batch of committed events
// before any subscriber can: state that later events depend on (a
// revoked credential) is in place before they are delivered. It runs on
// the publisher's goroutine and must be quick.
func (h *Hub) Observe(fn func([]*Event)) { h.observe.Store(&fn) }

// Publish adds committed events, in order, and wakes subscribers, at once
// or, while publishes come thick and fast, within the wake gap.
func (h *Hub) Publish(evs []*Event) {
	if len(evs) == 0 {
		return
	}
	if f := h.observe.Load(); f != nil {
		(*f)(evs)
	}
	now := time.Now()
	for _, e := range evs {
		if e.encoded == nil {
			e.encoded = e.AppendJSON(nil)
		}
		e.published = now
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range evs {
		h.ring[e.Seq%int64(len(h.ring))].Store(e)
	}
	h.last.Store(evs[len(evs)-1].Seq)
	if h.pending || h.wave > 0 {
		// A wake is scheduled, or a wave is running: the wave's later
		// shards see these events, and a new wave follows it.
		h.pending = true
		return
	}
	h.schedule(now)
}

// schedule starts a wave now, or when the gap since the last one is over.
func (h *Hub) schedule(now time.Time) {
	gap := min(maxWakeGap, time.Duration(h.waiters.Load())*wakeCostPerWaiter)
	if since := now.Sub(h.lastWake); since < gap {
		h.pending = true
		h.timer.Reset(gap - since)
		return
	}
	h.startWave(now, gap)
}

func (h *Hub) startWave(now time.Time, gap time.Duration) {
	h.pending = false
	h.lastWake = now
	h.waiters.Store(0)
	h.step = gap / wakeShards
	if h.step < minWaveStep {
		for i := range h.wake {
			h.wakeShard(i)
		}
		return
	}
	h.wakeShard(0)
	h.wave = 1
	h.timer.Reset(h.step)
}

// fire runs the wave's next shard, or the scheduled wave.
func (h *Hub) fire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.wave > 0 {
		h.wakeShard(h.wave)
		if h.wave++; h.wave < wakeShards {
			h.timer.Reset(h.step)
			return
		}
		h.wave = 0
	}
	if h.pending {
		h.schedule(time.Now())
	}
}

func (h *Hub) wakeShard(i int) {
	w := make(chan struct{})
	old := h.wake[i].Swap(&w)
	close(*old)
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
	h.timer.Stop()
	h.pending, h.wave = false, 0
	h.lastWake = time.Now()
	for i := range h.wake {
		h.wakeShard(i)
	}
}

// Wake returns a channel that is closed at the next wake after a Publish.
// Take it before reading the log: then no publish can be missed.
func (h *Hub) Wake() <-chan struct{} {
	h.waiters.Add(1)
	return *h.wake[0].Load()
}

// Last returns the highest published sequence.
func (h *Hub) Last() int64 { return h.last.Load() }

// SinceIn returns up to max events after seq after. ok is false when the
// ring no longer holds event after+1 and the caller must read the store.
// wait, the channel of the caller's wake shard, is closed when events
// newer than the returned ones are published.
func (h *Hub) SinceIn(shard int, after int64, max int) (evs []*Event, ok bool, wait <-chan struct{}) {
	return h.SinceInto(shard, after, max, nil)
}

// SinceInto is SinceIn appending to buf[:0]: a subscriber that reuses its
// slice reads the ring without allocating (under fan-out, a thousand new
// slices per wake and the page faults of fresh heap were a tenth of the
// server's CPU).
func (h *Hub) SinceInto(shard int, after int64, max int, buf []*Event) (evs []*Event, ok bool, wait <-chan struct{}) {
	evs = buf[:0]
	// The channel first, then the end of the log: a publish that this
	// read misses closes this channel or one taken after it, which is
	// closed only after this one.
	w := *h.wake[shard%wakeShards].Load()
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
