package fn

import (
	"context"
	"time"

	"github.com/mantlehq/mantle/internal/consumer"
)

// KindSchedule is the store's secret kind of functions' last ticks.
const KindSchedule = KindTrigger + "_schedule"

// startSchedule runs f's schedule (see consumer.StartSchedule: the last
// tick is kept in the store, so a restart neither skips nor fires a tick
// twice; catchUp runs the latest missed one once).
func (m *Manager) startSchedule(ctx context.Context, f *function) error {
	sc, err := consumer.StartSchedule(ctx, consumer.ScheduleSpec{Name: f.def.Name, Kind: KindTrigger, Cron: f.def.Cron, CatchUp: f.def.CatchUp,
		Engine: m.o.Engine, Log: m.o.Log, Now: m.o.Now, Lease: m.o.Lease,
		Run: func(ctx context.Context, at time.Time, catchUp bool) error {
			inv := &Invocation{Trigger: TriggerSchedule, Tick: &Tick{Cron: f.def.Cron, At: at.UTC().Format(time.RFC3339), CatchUp: catchUp}}
			start := time.Now()
			_, err := m.call(ctx, f, inv)
			if ctx.Err() == nil {
				m.report(Run{Function: f.def.Name, Trigger: TriggerSchedule, Tick: at, Err: err, Duration: time.Since(start)})
			}
			return err
		},
		Skipped: func(last time.Time) {
			f.logs.add(LevelWarn, TriggerSchedule, "ticks were missed while the server was down, the last at "+last.UTC().Format(time.RFC3339)+"; not run (set catchUp: true to run one)")
		},
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	f.sched = sc
	m.mu.Unlock()
	m.wg.Add(1)
	go func() { defer m.wg.Done(); sc.Wait() }()
	return nil
}
