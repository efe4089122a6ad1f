package sqlite

import (
	"sync"

	"github.com/mantlehq/mantle/internal/schema"
)

// recordCache keeps recently read and written records so that a get by id
// skips SQLite. The writer updates it after each commit, in commit order;
// readers fill it only when no commit happened during their read, so a
// slow reader never puts back a version older than one a writer stored.
// Just before each COMMIT the writer drops the records it changed and
// makes the generation odd until the commit is applied: no read fills the
// cache meanwhile. A reader that read the old version before the commit
// could otherwise store it after another had already read the new one,
// and a third would then see the record go back.
// Records in the cache are shared and must not be changed.
type recordCache struct {
	mu  sync.Mutex
	gen uint64 // bumped before and after every commit; odd while one is under way
	max int
	m   map[cacheKey]*schema.Record
}

type cacheKey struct{ coll, id string }

// change is one committed change to a record; r is nil for a delete.
type change struct {
	coll, id string
	r        *schema.Record
}

func newRecordCache(max int) *recordCache {
	if max <= 0 {
		return nil
	}
	return &recordCache{max: max, m: make(map[cacheKey]*schema.Record)}
}

func (c *recordCache) get(coll, id string) (*schema.Record, uint64, bool) {
	if c == nil {
		return nil, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[cacheKey{coll, id}]
	return r, c.gen, ok
}

// fill stores a record read from the database at generation gen, unless a
// commit happened since.
func (c *recordCache) fill(gen uint64, coll string, r *schema.Record) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.gen == gen && !committing(gen) {
		c.put(cacheKey{coll, r.ID}, r)
	}
	c.mu.Unlock()
}

func (c *recordCache) put(k cacheKey, r *schema.Record) {
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m { // evict an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[k] = r
}

// begin marks a commit under way, before its COMMIT: it drops what the
// commit changes (everything for a schema change), and no read fills the
// cache until apply or reset.
func (c *recordCache) begin(changes []change, all bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen = duringCommit(c.gen)
	if all {
		clear(c.m)
	}
	for _, ch := range changes {
		delete(c.m, cacheKey{ch.coll, ch.id})
	}
	c.mu.Unlock()
}

// The caches' generations are even while no commit is under way and odd
// from just before a COMMIT until the commit is applied; a read fills a
// cache only if the generation it saw before reading was even and has not
// moved.

// duringCommit returns the odd generation of a commit under way.
func duringCommit(gen uint64) uint64 { return gen | 1 }

// committing reports whether gen is that of a commit under way.
func committing(gen uint64) bool { return gen%2 == 1 }

// afterCommit returns the even generation that follows gen.
func afterCommit(gen uint64) uint64 { return gen + 2 - gen%2 }

// apply records the changes of a commit (none if it failed) and ends what
// begin started.
func (c *recordCache) apply(changes []change) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen = afterCommit(c.gen)
	for _, ch := range changes {
		k := cacheKey{ch.coll, ch.id}
		if ch.r == nil {
			delete(c.m, k)
		} else {
			c.put(k, ch.r)
		}
	}
	c.mu.Unlock()
}

// reset empties the cache, after a schema change.
func (c *recordCache) reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen = afterCommit(c.gen)
	clear(c.m)
	c.mu.Unlock()
}
