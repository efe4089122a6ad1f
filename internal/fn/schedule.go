package fn

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/robfig/cron/v3"
)

// KindSchedule is the store's secret kind of schedules' last ticks.
const KindSchedule = "fn_schedule"

// ScheduleStatus is a schedule's state.
type ScheduleStatus struct {
	Last time.Time `json:"lastTick,omitzero"` // the last tick run (or skipped)
	Next time.Time `json:"nextTick"`
}

type scheduleState struct {
	mu     sync.Mutex
	status ScheduleStatus
}

// schedule returns the schedule's state, nil for none; m.mu is held.
func (f *function) schedule() *ScheduleStatus {
	st := f.sched
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.status
	return &s
}

// plan decides what a schedule does at start: last is the last tick run
// (or the time the schedule first started), now the clock. It returns the
// latest tick missed in between (zero: none) and the tick to wait for.
//
// A schedule never fires a tick twice and never skips one silently: a
// tick is recorded after it ran, so the ticks between last and now are
// the ones missed while the server was down. With catchUp the latest of
// them runs once, late; without, they are skipped and the skip is logged.
func plan(sched cron.Schedule, last, now time.Time) (missed, next time.Time) {
	for t := sched.Next(last); !t.After(now); t = sched.Next(t) {
		missed = t
	}
	return missed, sched.Next(now)
}

func (m *Manager) startSchedule(ctx context.Context, f *function) error {
	sched, err := cron.ParseStandard(f.def.Cron)
	if err != nil {
		return err
	}
	last, err := m.lastTick(ctx, f.def.Name)
	if err != nil {
		return err
	}
	st := &scheduleState{}
	m.mu.Lock()
	f.sched = st
	m.mu.Unlock()
	now := m.o.Now()
	if last.IsZero() { // a new schedule: ticks count from now on
		m.saveTick(ctx, f, st, now)
		last = now
	}
	missed, next := plan(sched, last, now)
	st.status = ScheduleStatus{Last: last, Next: next}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if !missed.IsZero() {
			if f.def.CatchUp {
				m.tick(ctx, f, st, missed, true)
			} else {
				f.logs.add(LevelWarn, TriggerSchedule, "ticks were missed while the server was down, the last at "+missed.UTC().Format(time.RFC3339)+"; not run (set catchUp: true to run one)")
				m.saveTick(ctx, f, st, missed)
			}
		}
		for {
			wait := time.NewTimer(next.Sub(m.o.Now()))
			select {
			case <-ctx.Done():
				wait.Stop()
				return
			case <-wait.C:
			}
			m.tick(ctx, f, st, next, false)
			next = sched.Next(next)
			if now := m.o.Now(); next.Before(now) { // the tick ran past its successors: skip them
				next = sched.Next(now)
			}
			st.mu.Lock()
			st.status.Next = next
			st.mu.Unlock()
		}
	}()
	return nil
}

// tick runs one tick and records it as done, failed or not.
func (m *Manager) tick(ctx context.Context, f *function, st *scheduleState, at time.Time, catchUp bool) {
	inv := &Invocation{Trigger: TriggerSchedule, Tick: &Tick{Cron: f.def.Cron, At: at.UTC().Format(time.RFC3339), CatchUp: catchUp}}
	start := time.Now()
	_, err := m.call(ctx, f, inv)
	if ctx.Err() != nil {
		return // stopped mid-tick: not recorded, so a catch-up can run it
	}
	m.report(Run{Function: f.def.Name, Trigger: TriggerSchedule, Tick: at, Err: err, Duration: time.Since(start)})
	m.saveTick(ctx, f, st, at)
}

func (m *Manager) saveTick(ctx context.Context, f *function, st *scheduleState, at time.Time) {
	err := m.o.Engine.Transact(context.WithoutCancel(ctx), func(tx store.Tx) error {
		return tx.PutSecret(KindSchedule, f.def.Name, []byte(strconv.FormatInt(at.UnixNano(), 10)))
	})
	if err != nil {
		m.o.Log.Error("functions: save a schedule's last tick", "function", f.def.Name, "err", err)
	}
	st.mu.Lock()
	st.status.Last = at
	st.mu.Unlock()
}

func (m *Manager) lastTick(ctx context.Context, name string) (time.Time, error) {
	raw, err := m.o.Engine.Secret(ctx, KindSchedule, name)
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
