package app

import (
	"runtime"

	"github.com/mantlehq/mantle/internal/config"
)

// budget is how the memory budget (--memory-limit) is shared out. The Go
// heap gets five eighths as its soft limit (GOMEMLIMIT, set by serve): the
// collector runs harder near it instead of letting the heap grow to GOGC's
// multiple of the live data. The rest is memory outside the Go heap, chiefly
// SQLite's page caches (one per connection, in the connections' own
// memory): a quarter for the read pool, and the list page cache, which
// lives in the Go heap, at most an eighth.
type budget struct {
	heap        int64 // the Go heap's soft limit
	readers     int   // read connections
	readerCache int   // SQLite page cache of each, in bytes
	listCache   int   // list page cache in bytes; -1: off
	records     int   // record cache entries
}

func budgetOf(cfg config.Config) budget {
	m := cfg.MemoryLimit
	if m <= 0 {
		m = config.DefaultMemoryLimit
	}
	b := budget{heap: m * 5 / 8, readers: 2 * runtime.GOMAXPROCS(0)}
	b.readerCache = int(max(m/4/int64(b.readers), 1<<20))
	b.listCache = -1
	if cfg.ListCacheMB > 0 {
		b.listCache = int(min(int64(cfg.ListCacheMB)<<20, m/8))
	}
	// A cached record costs about a kibibyte of heap with a body of a few
	// hundred bytes; a sixteenth of the budget holds them.
	b.records = int(max(m/16/1024, 1000))
	return b
}

// HeapLimit is the Go heap's soft limit that the settings' memory budget
// gives (see budget).
func HeapLimit(cfg config.Config) int64 { return budgetOf(cfg).heap }
