package app

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/mantlehq/mantle/internal/config"
)

// GovernMemory keeps the process's resident memory within the memory
// budget (--memory-limit) until ctx ends. Every quarter second it measures
// what is resident outside the Go runtime's own memory (the program's code,
// SQLite's connections, the functions' compiled code and linear memories)
// and sets the Go heap's soft limit to the budget less that, so the
// collector works harder as the whole process, not only its heap, nears
// the budget. The heap always keeps at least a quarter of the budget: a
// project whose functions alone fill the budget gets a warning, not a
// collector that never stops. Where the resident size cannot be read (not
// Linux), the limit is half the budget.
//
// Unless the budget was given (cfg.MemoryLimitSet), it grows by extra:
// what the project's functions take (fn.Footprint), which the default
// budget, sized for the server alone, does not foresee.
//
// serve calls it unless GOMEMLIMIT is set, which then wins.
func GovernMemory(ctx context.Context, cfg config.Config, log *slog.Logger, extra func() int64) {
	g := newGovernor(cfg, log)
	if !cfg.MemoryLimitSet {
		g.extra = extra
	}
	debug.SetMemoryLimit(g.limit)
	if _, ok := residentBytes(); !ok {
		return
	}
	g.step()
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				g.step()
			}
		}
	}()
}

type governor struct {
	budget int64
	extra  func() int64 // added to budget; nil: nothing
	limit  int64        // the soft limit set last
	log    *slog.Logger
	warned bool
	sample []metrics.Sample
}

func newGovernor(cfg config.Config, log *slog.Logger) *governor {
	return &governor{budget: budgetBytes(cfg), limit: budgetOf(cfg).heap, log: log, sample: []metrics.Sample{
		{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}}
}

// step measures and sets the limit.
func (g *governor) step() {
	rss, ok := residentBytes()
	if !ok {
		return
	}
	metrics.Read(g.sample)
	goMem := int64(g.sample[0].Value.Uint64()) - int64(g.sample[1].Value.Uint64())
	outside := max(rss-goMem, 0)
	budget := g.budget
	if g.extra != nil {
		budget += g.extra()
	}
	limit := heapLimitFor(budget, outside)
	if outside > budget*3/4 && !g.warned && g.log != nil {
		g.warned = true
		g.log.Warn("memory outside the Go heap (program code, SQLite connections, functions) fills most of the memory budget; raise --memory-limit",
			"outside_mib", outside>>20, "budget_mib", budget>>20)
	}
	if d := limit - g.limit; d > 1<<20 || d < -(1<<20) {
		g.limit = limit
		debug.SetMemoryLimit(limit)
	}
}

// heapLimitFor is the Go runtime's share of budget when outside bytes are
// resident outside it: the rest, but never under a quarter of the budget.
func heapLimitFor(budget, outside int64) int64 {
	return max(budget-outside, budget/4)
}
