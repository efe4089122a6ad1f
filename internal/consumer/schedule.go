package consumer

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
)

// ScheduleSpec is a cron schedule whose last tick is kept in the store
// (secret kind Kind+"_schedule", key Name).
type ScheduleSpec struct {
	Name    string
	Kind    string
	Cron    string // five fields, a descriptor (@daily, @every 90s), CRON_TZ= prefix allowed
	CatchUp bool   // run the latest tick missed while down, once, at start
	// Run runs one tick; at is its scheduled time. Its error is logged:
	// a failed tick is not retried, the next one comes.
	Run func(ctx context.Context, at time.Time, catchUp bool) error
	// Skipped is told of ticks missed while down when CatchUp is off.
	Skipped func(last time.Time)
	Engine  *engine.Engine
	Log     *slog.Logger
	Now     func() time.Time // default time.Now
	// Lease, when set, elects the one node of a cluster that runs the
	// schedule (internal/bus), so each tick fires once cluster-wide.
	Lease Leaser
}

// ScheduleStatus is a schedule's state.
type ScheduleStatus struct {
	Last time.Time `json:"lastTick,omitzero"` // the last tick run or skipped (or when the schedule first started)
	Next time.Time `json:"nextTick"`
}

// Schedule is a running schedule.
type Schedule struct {
	s    ScheduleSpec
	done chan struct{}

	mu     sync.Mutex
	status ScheduleStatus
}

// plan decides what a schedule does at start: last is the last tick run
// (or the time the schedule first started), now the clock. It returns the
// latest tick missed in between (zero: none) and the tick to wait for.
//
// A schedule never fires a tick twice and never skips one silently: a
// tick is recorded after it ran, so the ticks between last and now are
// the ones missed while the server was down. With catchUp the latest of
// them runs once, late; without, they are skipped and the skip reported.
func plan(sched cron.Schedule, last, now time.Time) (missed, next time.Time) {
	for t := sched.Next(last); !t.After(now); t = sched.Next(t) {
		missed = t
	}
	return missed, sched.Next(now)
}

// StartSchedule loads the schedule's last tick and runs it until ctx
// ends. A new schedule counts its ticks from now.
func StartSchedule(ctx context.Context, s ScheduleSpec) (*Schedule, error) {
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	sched, err := cron.ParseStandard(s.Cron)
	if err != nil {
		return nil, err
	}
	sc := &Schedule{s: s, done: make(chan struct{})}
	if s.Lease != nil {
		sc.status.Next = sched.Next(s.Now())
		go func() {
			defer close(sc.done)
			for {
				held, release, err := s.Lease.Hold(ctx, s.Kind+".schedule."+s.Name)
				if err != nil {
					return // ctx ended
				}
				if err := sc.start(held, sched); err != nil {
					s.Log.Error("schedule: load the last tick", "kind", s.Kind, "name", s.Name, "err", err)
					sleep(held, time.Second)
				}
				release()
				if ctx.Err() != nil {
					return
				}
			}
		}()
		return sc, nil
	}
	last, err := s.lastTick(ctx)
	if err != nil {
		return nil, err
	}
	missed, next := sc.prepare(ctx, sched, last)
	go func() {
		defer close(sc.done)
		sc.loop(ctx, sched, missed, next)
	}()
	return sc, nil
}

// start loads the last tick (the previous holder of the lease saved it)
// and runs the schedule until ctx ends.
func (sc *Schedule) start(ctx context.Context, sched cron.Schedule) error {
	last, err := sc.s.lastTick(ctx)
	if err != nil {
		return err
	}
	missed, next := sc.prepare(ctx, sched, last)
	sc.loop(ctx, sched, missed, next)
	return nil
}

// prepare records the start of a new schedule and plans from the last
// tick: the tick missed meanwhile, if any, and the next one.
func (sc *Schedule) prepare(ctx context.Context, sched cron.Schedule, last time.Time) (missed, next time.Time) {
	now := sc.s.Now()
	if last.IsZero() {
		sc.save(ctx, now)
		last = now
	}
	missed, next = plan(sched, last, now)
	sc.mu.Lock()
	sc.status = ScheduleStatus{Last: last, Next: next}
	sc.mu.Unlock()
	return missed, next
}

// loop fires the missed tick (or reports it) and then every tick from
// next on until ctx ends.
func (sc *Schedule) loop(ctx context.Context, sched cron.Schedule, missed, next time.Time) {
	s := sc.s
	if !missed.IsZero() {
		if s.CatchUp {
			sc.tick(ctx, missed, true)
		} else {
			if s.Skipped != nil {
				s.Skipped(missed)
			}
			sc.save(ctx, missed)
		}
	}
	for {
		wait := time.NewTimer(next.Sub(s.Now()))
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-wait.C:
		}
		sc.tick(ctx, next, false)
		next = sched.Next(next)
		if now := s.Now(); next.Before(now) { // the tick ran past its successors: skip them
			next = sched.Next(now)
		}
		sc.mu.Lock()
		sc.status.Next = next
		sc.mu.Unlock()
	}
}

// Wait blocks until the schedule has stopped.
func (sc *Schedule) Wait() { <-sc.done }

// Status returns the schedule's state.
func (sc *Schedule) Status() ScheduleStatus {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.status
}

// tick runs one tick and records it as done, failed or not. A tick cut
// short by shutdown is not recorded, so a catch-up can run it again.
func (sc *Schedule) tick(ctx context.Context, at time.Time, catchUp bool) {
	err := sc.s.Run(ctx, at, catchUp)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		sc.s.Log.Warn("schedule: a tick failed", "kind", sc.s.Kind, "name", sc.s.Name, "tick", at, "err", err)
	}
	sc.save(ctx, at)
}

func (sc *Schedule) save(ctx context.Context, at time.Time) {
	err := sc.s.Engine.Transact(context.WithoutCancel(ctx), func(tx engine.SystemTx) error {
		return tx.PutSecret(sc.s.Kind+"_schedule", sc.s.Name, []byte(strconv.FormatInt(at.UnixNano(), 10)))
	})
	if err != nil {
		sc.s.Log.Error("schedule: save the last tick", "kind", sc.s.Kind, "name", sc.s.Name, "err", err)
	}
	sc.mu.Lock()
	sc.status.Last = at
	sc.mu.Unlock()
}

func (s ScheduleSpec) lastTick(ctx context.Context) (time.Time, error) {
	raw, err := s.Engine.Secret(ctx, s.Kind+"_schedule", s.Name)
	if mantle.ErrorCode(err) == mantle.NotFound {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return time.Time{}, nil
	}
	return time.Unix(0, n), nil
}
