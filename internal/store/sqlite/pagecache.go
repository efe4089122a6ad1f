package sqlite

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"sync"
	"unsafe"

	"github.com/mantlehq/mantle/internal/store"
)

// pageCache keeps list pages, keyed by the exact SQL and arguments that
// produced them, until the next commit that changes their collection. A
// read-mostly collection then serves a repeated list (the same filter,
// sort, cursor and, through the rule's arguments, the same caller's view)
// without SQLite. This is what Convex does for its queries; here the
// dependency is coarser (any change to the collection drops its pages)
// and needs no tracking of what a query read.
//
// Just before a COMMIT the writer drops the pages of the collections it
// changes and makes their generation odd (begin); after the commit, and
// before its writes are answered, it makes it even again (end). A reader
// takes the generation before it queries and fills the cache only if it
// was even and is unchanged: its snapshot then had every commit to the
// collection up to that generation and none after, so no page is ever
// older than a commit that was answered, and no reader sees a page older
// than one another reader already got. Pages in the cache are shared and
// must not be changed.
type pageCache struct {
	mu    sync.Mutex
	max   int // bytes
	bytes int
	epoch uint64 // as a collection's gen, for schema changes
	colls map[string]*collPages
}

// pageGen is the state a reader saw before its query: the cache's epoch
// and its collection's generation.
type pageGen struct{ epoch, gen uint64 }

type collPages struct {
	gen      uint64
	pages    map[string]cachedPage
	rows     map[string][]byte // the pages' row JSON, shared between pages
	bytes    int               // pages and rows
	rowBytes int
}

type cachedPage struct {
	p    *store.Page
	size int // without its rows
}

// pageOverhead is what a cached page costs besides its key and rows' bytes.
const pageOverhead = 256

// recordSize is what a decoded record of a cached page is taken to cost.
const recordSize = 512

func newPageCache(max int) *pageCache {
	if max <= 0 {
		return nil
	}
	return &pageCache{max: max, colls: map[string]*collPages{}}
}

// get returns the cached page under key, or the state to pass to fill.
func (c *pageCache) get(coll, key string) (*store.Page, pageGen) {
	if c == nil {
		return nil, pageGen{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := c.colls[coll]
	if cp == nil {
		return nil, pageGen{epoch: c.epoch}
	}
	return cp.pages[key].p, pageGen{c.epoch, cp.gen}
}

// fill stores page under key if the collection is still at generation gen.
// The page's row JSON is shared with equal rows of pages already cached.
func (c *pageCache) fill(coll, key string, g pageGen, p *store.Page) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != g.epoch || committing(g.epoch) || committing(g.gen) {
		return
	}
	cp := c.colls[coll]
	if cp == nil {
		if g.gen != 0 {
			return
		}
		cp = &collPages{}
		c.colls[coll] = cp
	}
	if cp.gen != g.gen {
		return
	}
	if _, ok := cp.pages[key]; ok {
		return
	}
	size := len(key) + pageOverhead + 24*len(p.JSON) + recordSize*len(p.Records)
	rows := 0
	for i, row := range p.JSON {
		if shared, ok := cp.rows[string(row)]; ok {
			p.JSON[i] = shared
		} else {
			rows += len(row)
		}
	}
	if size+rows > c.max/4 {
		return
	}
	if cp.rowBytes+rows > c.max/2 {
		c.drop(cp) // rows are shared and not counted per page: start over
		rows = 0
		for _, row := range p.JSON {
			rows += len(row)
		}
	}
	for c.bytes+size+rows > c.max && c.evict(cp) {
	}
	if cp.pages == nil {
		cp.pages, cp.rows = map[string]cachedPage{}, map[string][]byte{}
	}
	for _, row := range p.JSON {
		if _, ok := cp.rows[string(row)]; !ok && len(row) > 0 {
			// The key shares the row's bytes (a cached row never
			// changes): a copy would double what the rows cost.
			cp.rows[unsafe.String(unsafe.SliceData(row), len(row))] = row
		}
	}
	cp.pages[key] = cachedPage{p, size}
	cp.bytes += size + rows
	cp.rowBytes += rows
	c.bytes += size + rows
}

// evict drops one page, of the collection being filled if it has any, and
// reports whether there was one. Rows stay until their collection is
// dropped.
func (c *pageCache) evict(filling *collPages) bool {
	for k, cached := range filling.pages {
		delete(filling.pages, k)
		filling.bytes -= cached.size
		c.bytes -= cached.size
		return true
	}
	for _, cp := range c.colls {
		if cp != filling && cp.bytes > 0 {
			c.drop(cp)
			return true
		}
	}
	return false
}

func (c *pageCache) drop(cp *collPages) {
	c.bytes -= cp.bytes
	cp.bytes, cp.rowBytes, cp.pages, cp.rows = 0, 0, nil, nil
}

// begin drops the pages of the collections a commit changes (all of them
// for a schema change) and stops fills until end.
func (c *pageCache) begin(changes []change, all bool) {
	c.step(changes, all, duringCommit)
}

// end follows begin once the commit is done (or failed).
func (c *pageCache) end(changes []change, all bool) {
	c.step(changes, all, afterCommit)
}

// step moves the generations of what a commit changes (duringCommit or
// afterCommit) and drops their pages.
func (c *pageCache) step(changes []change, all bool, next func(uint64) uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if all {
		c.epoch = next(c.epoch)
		for _, cp := range c.colls {
			c.drop(cp)
		}
		return
	}
	last := ""
	for _, ch := range changes {
		if ch.coll == last {
			continue
		}
		last = ch.coll
		cp := c.colls[ch.coll]
		if cp == nil {
			cp = &collPages{}
			c.colls[ch.coll] = cp
		}
		cp.gen = next(cp.gen)
		c.drop(cp)
	}
}

// pageKey returns the cache key of a list query, and false if an argument
// has a type the key cannot hold (the page is then not cached).
func pageKey(sql string, args []any, fields map[string]bool, count, encode bool) (string, bool) {
	b := make([]byte, 0, len(sql)+64)
	b = append(b, sql...)
	b = append(b, 0)
	for _, a := range args {
		switch v := a.(type) {
		case nil:
			b = append(b, 'n')
		case string:
			b = append(b, 's')
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case []byte:
			b = append(b, 'b')
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		case int:
			b = append(b, 'i')
			b = binary.AppendVarint(b, int64(v))
		case int64:
			b = append(b, 'i')
			b = binary.AppendVarint(b, v)
		case float64:
			b = append(b, 'f')
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		case bool:
			b = append(b, 't')
			if v {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		default:
			return "", false
		}
	}
	b = append(b, 0)
	if fields != nil {
		b = append(b, 'F')
		for _, f := range slices.Sorted(maps.Keys(fields)) {
			if fields[f] {
				b = binary.AppendUvarint(b, uint64(len(f)))
				b = append(b, f...)
			}
		}
	}
	b = append(b, 0)
	if count {
		b = append(b, 'c')
	}
	if encode {
		b = append(b, 'e')
	}
	return string(b), true
}
