package realtime

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/feed"
)

// control is a message from the reader to the event loop: something to
// write, and a subscription to add or drop first.
type control struct {
	raw    []byte
	add    *subscription // added after raw ("subscribed") is written
	remove string        // dropped before raw ("unsubscribed") is written
}

// subscription is one subscription's state, owned by the event loop.
type subscription struct {
	id     string
	idJSON []byte
	m      *feed.Matcher
	cur    *feed.Cursor
	batch  bool
}

// maxStep bounds the events one subscription reads per pass, so one that
// is catching up from the store does not hold up the others for long.
const maxStep = 512

// loop is the connection's only writer. Each pass it answers the reader's
// control messages, then moves every subscription's cursor through the
// log and writes what matches; with nothing new it waits for the hub.
// One goroutine per connection, not one per subscription plus a writer:
// under fan-out every wake then costs one goroutine switch and one write
// per connection.
//
// Back-pressure is the socket's: the loop reads events from the log only
// as fast as the client takes them, so a slow client costs no memory. A
// message the client leaves untaken for SlowTimeout makes it too slow: the
// connection is closed with 4408 once the message is through, or cut off
// 10 s later.
func (s *session) loop(ctx context.Context) {
	// The stall watch sees how long the current write has waited;
	// arming a timer around every write cost more than the write's own
	// bookkeeping under fan-out.
	var writing atomic.Int64 // when the current write began (unix ns); 0: none
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watchDone := make(chan struct{})
	go func() { defer close(watchDone); s.watchStall(watchCtx, &writing) }()
	defer func() { stopWatch(); <-watchDone }()
	// write sends the message built in s.fw.
	write := func() bool {
		writing.Store(time.Now().UnixNano())
		err := s.fw.message()
		writing.Store(0)
		if err != nil {
			s.fail(CloseSlow, "slow consumer: a message could not be written in time")
			return false
		}
		return ctx.Err() == nil
	}
	var subs []*subscription
	handle := func(c control) bool {
		if c.remove != "" {
			for i, sub := range subs {
				if sub.id == c.remove {
					subs = append(subs[:i], subs[i+1:]...)
					break
				}
			}
		}
		s.fw.piece(c.raw...)
		if !write() {
			return false
		}
		if c.add != nil {
			subs = append(subs, c.add)
		}
		return true
	}
	for {
		// Control messages first, in the order the reader sent them.
	controls:
		for {
			select {
			case c := <-s.ctl:
				if !handle(c) {
					return
				}
			default:
				break controls
			}
		}
		// Then every subscription's events. The first wait channel of
		// the pass is the one to wait on: a publish after any of the
		// reads closes it.
		var wait <-chan struct{}
		busy := false
		for _, sub := range subs {
			evs, w, err := sub.cur.Next(ctx, maxStep)
			if err != nil {
				if ctx.Err() == nil {
					s.fail(websocket.StatusInternalError, "the event log could not be read; reconnect and resume")
				}
				return
			}
			if wait == nil {
				wait = w
			}
			if len(evs) > 0 {
				busy = true
				select {
				case <-s.revoked: // in place before any later event was published
					s.failRevoked()
					return
				default:
				}
			}
			if !s.sendEvents(sub, evs, write) {
				return
			}
		}
		if busy {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case c := <-s.ctl:
			if !handle(c) {
				return
			}
		case <-wait:
		}
	}
}

// watchStall checks the write in progress a few times per SlowTimeout:
// one that has waited SlowTimeout makes the client too slow (closed with
// 4408 once the write is through); 10 s later the connection is cut.
func (s *session) watchStall(ctx context.Context, writing *atomic.Int64) {
	tick := time.NewTicker(max(s.h.SlowTimeout/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			began := writing.Load()
			if began == 0 {
				continue
			}
			switch waited := now.Sub(time.Unix(0, began)); {
			case waited >= s.h.SlowTimeout+10*time.Second:
				s.c.CloseNow()
				return
			case waited >= s.h.SlowTimeout:
				s.fail(CloseSlow, "slow consumer: a message waited "+s.h.SlowTimeout.String()+" for the client; reconnect and resume after the last seq you received")
			}
		}
	}
}

var (
	eventHead = []byte(`{"type":"event","id":`)
	seqPart   = []byte(`,"seq":`)
	eventPart = []byte(`,"event":`)

	eventsHead = []byte(`{"type":"events","id":`)
	eventsPart = []byte(`,"events":[`)
	itemHead   = []byte(`{"seq":`)
)

// sendEvents writes the events of evs that sub matches: one message each,
// or, in batch mode, one "events" message per pass (up to about 1 MiB).
func (s *session) sendEvents(sub *subscription, evs []*eventlog.Event, write func() bool) bool {
	f := s.fw
	group, size := s.group[:0], 0
	defer func() { s.group = group[:0] }()
	flush := func() bool {
		if len(group) == 0 {
			return true
		}
		if len(group) == 1 {
			f.piece(eventHead...)
			f.piece(sub.idJSON...)
			f.piece(seqPart...)
			f.small = strconv.AppendInt(f.small, group[0].Seq, 10)
			f.piece(eventPart...)
			f.event(group[0].JSON())
			f.piece('}')
		} else {
			f.piece(eventsHead...)
			f.piece(sub.idJSON...)
			f.piece(eventsPart...)
			for i, ev := range group {
				if i > 0 {
					f.piece(',')
				}
				f.piece(itemHead...)
				f.small = strconv.AppendInt(f.small, ev.Seq, 10)
				f.piece(eventPart...)
				f.event(ev.JSON())
				f.piece('}')
			}
			f.piece(']', '}')
		}
		group, size = group[:0], 0
		return write()
	}
	for _, ev := range evs {
		if !sub.m.Match(ev) {
			continue
		}
		ev = sub.m.View(ev)
		group = append(group, ev)
		size += len(ev.JSON())
		if !sub.batch || size >= 1<<20 {
			if !flush() {
				return false
			}
		}
	}
	return flush()
}
