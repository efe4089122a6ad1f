package app

import (
	"runtime/debug"
	"testing"

	"github.com/mantlehq/mantle/internal/config"
)

func TestHeapLimitFor(t *testing.T) {
	for _, c := range []struct{ budget, outside, want int64 }{
		{128 << 20, 40 << 20, 88 << 20},
		{128 << 20, 120 << 20, 32 << 20}, // never under a quarter
		{128 << 20, 0, 128 << 20},
	} {
		if got := heapLimitFor(c.budget, c.outside); got != c.want {
			t.Errorf("heapLimitFor(%d, %d) = %d, want %d", c.budget>>20, c.outside>>20, got>>20, c.want>>20)
		}
	}
}

// Memory resident outside the Go heap (here a mapping as SQLite's and the
// functions' memories are) lowers the heap's soft limit by as much; the
// functions' footprint raises the default budget, not a budget given.
func TestGovernorCountsMemoryOutsideTheHeap(t *testing.T) {
	if _, ok := residentBytes(); !ok {
		t.Skip("the resident size is not measured on this system; the limit stays fixed")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cfg := config.Default()
	cfg.MemoryLimit, cfg.MemoryLimitSet = 1<<30, true
	g := newGovernor(cfg, nil)
	g.step()
	before := debug.SetMemoryLimit(-1)
	mapResident(t, 64<<20)
	g.step()
	after := debug.SetMemoryLimit(-1)
	if drop := before - after; drop < 56<<20 || drop > 72<<20 {
		t.Errorf("64 MiB mapped and touched lowered the heap limit by %d MiB (from %d to %d)", drop>>20, before>>20, after>>20)
	}

	g.extra = func() int64 { return 100 << 20 }
	g.step()
	if got := debug.SetMemoryLimit(-1); got-after < 96<<20 || got-after > 104<<20 {
		t.Errorf("100 MiB of functions raised the limit from %d to %d MiB", after>>20, got>>20)
	}
}
