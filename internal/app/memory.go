package app

import (
	"math/bits"

	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

// budget is how the memory budget (--memory-limit) is shared out. The
// budget is for the whole process's resident memory. The Go heap gets
// what the rest leaves: the governor (governor.go) sets its soft limit to
// the budget less the memory it measures outside the heap (the program's
// code, SQLite's connections, the functions' compiled code and memories),
// so the collector runs harder as the process nears the budget instead of
// letting the heap grow to GOGC's multiple of the live data. The caches
// are sized so that the live heap stays well under that limit: a heap
// whose live data nears its limit spends its time collecting.
type budget struct {
	heap        int64 // the Go heap's soft limit where the governor cannot measure
	readers     int   // read connections
	readerCache int   // SQLite page cache of each, in bytes
	listCache   int   // list page cache in bytes; -1: off
	records     int   // record cache entries
	events      int   // the hub's ring of recent events
}

// budgetBytes is the settings' memory budget, the default where unset.
func budgetBytes(cfg config.Config) int64 {
	if cfg.MemoryLimit <= 0 {
		return config.DefaultMemoryLimit
	}
	return cfg.MemoryLimit
}

func budgetOf(cfg config.Config) budget {
	m := budgetBytes(cfg)
	b := budget{heap: m / 2, readers: sqlite.DefaultReaders()}
	// Each read connection keeps its own page cache in its own memory:
	// a sixteenth of the budget between them.
	b.readerCache = int(max(m/16/int64(b.readers), 1<<20))
	b.listCache = -1
	if cfg.ListCacheMB > 0 {
		b.listCache = int(min(int64(cfg.ListCacheMB)<<20, m/16))
	}
	// A cached record costs about a kibibyte of heap with a body of a few
	// hundred bytes; a thirty-second of the budget holds them.
	b.records = int(max(m/32/1024, 1000))
	// A recent event (its record decoded, its data and its rendering)
	// costs about 2.5 KiB: a thirty-second of the budget, in a power of
	// two between 1,024 and the hub's default.
	n := max(m/32/2560, 1024)
	b.events = min(1<<(bits.Len64(uint64(n))-1), eventlog.DefaultHubSize)
	return b
}
