package eventlog

import "sync"

// DefaultHubSize is how many recent events the hub keeps in memory.
const DefaultHubSize = 8192

// Hub keeps the most recent committed events in a ring and wakes
// subscribers when new ones arrive. Subscribers that fall behind the ring
// read older events from the store. Publish must be called in sequence
// order, once per committed event; the store's writer does that.
type Hub struct {
	mu    sync.Mutex
	ring  []*Event
	last  int64         // highest published seq
	wake  chan struct{} // closed and replaced on every Publish
	count int           // events in the ring
}

// NewHub returns a hub whose log ends at last.
func NewHub(size int, last int64) *Hub {
	if size <= 0 {
		size = DefaultHubSize
	}
	return &Hub{ring: make([]*Event, size), last: last, wake: make(chan struct{})}
}

// Publish adds committed events, in order, and wakes subscribers.
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
	for _, e := range evs {
		h.ring[e.Seq%int64(len(h.ring))] = e
		h.last = e.Seq
		if h.count < len(h.ring) {
			h.count++
		}
	}
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

// Reset forgets the ring and sets the end of the log, for a log that was
// changed outside the hub (a replay).
func (h *Hub) Reset(last int64) {
	h.mu.Lock()
	h.last, h.count = last, 0
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

// Wake returns a channel that is closed at the next Publish.
func (h *Hub) Wake() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wake
}

// Last returns the highest published sequence.
func (h *Hub) Last() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Since returns up to max events after seq after. ok is false when the
// ring no longer holds event after+1 and the caller must read the store.
// wait is closed when events newer than the returned ones are published.
func (h *Hub) Since(after int64, max int) (evs []*Event, ok bool, wait <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	first := h.last - int64(h.count) + 1
	if after+1 < first {
		return nil, false, h.wake
	}
	for s := after + 1; s <= h.last && len(evs) < max; s++ {
		evs = append(evs, h.ring[s%int64(len(h.ring))])
	}
	return evs, true, h.wake
}
