package fn

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/consumer"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/feed"
)

// startTrigger runs f's event trigger: a durable consumer of the log
// (ordered, at least once, retried with backoff, dead-lettered, resumed
// after restart from its saved cursor). A new function starts at the end
// of the log: it reacts to what happens from now on.
func (m *Manager) startTrigger(ctx context.Context, f *function) error {
	var filter *feed.Matcher
	if f.def.Filter != "" {
		var colls []string
		for _, t := range f.def.On {
			if t.Collection != "" {
				colls = append(colls, t.Collection)
			}
		}
		var err error
		filter, err = feed.NewMatcher(m.o.Engine, mantle.Identity{ID: "fn:" + f.def.Name, Roles: []string{"admin"}},
			feed.Spec{Collections: colls, Filter: f.def.Filter})
		if err != nil {
			return err
		}
	}
	match := func(ev *eventlog.Event) bool {
		for _, t := range f.def.On {
			if t.Matches(ev.Type, ev.Collection) {
				return filter == nil || ev.Collection == "" || filter.Match(ev)
			}
		}
		return false
	}
	handle := func(ctx context.Context, ev *eventlog.Event, attempt int) error {
		if p := ev.Published(); attempt == 1 && !p.IsZero() {
			f.lag.record(time.Since(p), nil) // commit to the start of the call
		}
		inv := &Invocation{Trigger: TriggerEvent, Event: json.RawMessage(ev.JSON()), Attempt: attempt, Caller: Caller{ID: ev.Actor}}
		start := time.Now()
		_, err := m.call(ctx, f, inv)
		m.report(Run{Function: f.def.Name, Trigger: TriggerEvent, Seq: ev.Seq, Err: err, Duration: time.Since(start)})
		return err
	}
	c, err := consumer.Start(ctx, consumer.Spec{Name: f.def.Name, Kind: KindTrigger, Match: match, Handle: handle,
		Attempts: f.def.MaxAttempts, RetryMin: f.def.RetryMin, RetryMax: f.def.RetryMax,
		Engine: m.o.Engine, Hub: m.o.Hub, Log: m.o.Log, Lease: m.o.Lease})
	if err != nil {
		return err
	}
	m.mu.Lock()
	f.consumer = c
	m.mu.Unlock()
	m.wg.Add(1)
	go func() { defer m.wg.Done(); c.Wait() }()
	return nil
}
