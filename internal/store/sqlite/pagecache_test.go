package sqlite

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/storetest"
)

func openPages(t *testing.T, opts Options) (*DB, *schema.Collection) {
	t.Helper()
	db, err := Open(context.Background(), t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := storetest.Fixture()
	err = db.Write(context.Background(), func(tx store.Tx) error { return tx.Migrate(nil, s, schema.Diff(nil, s)) })
	if err != nil {
		t.Fatal(err)
	}
	return db, s.Collections[0]
}

func insertThing(t testing.TB, db *DB, c *schema.Collection, id string, n int) {
	t.Helper()
	now := time.Now().UTC()
	err := db.Write(context.Background(), func(tx store.Tx) error {
		r := &schema.Record{ID: id, CreatedAt: now, UpdatedAt: now, Version: 1, Data: map[string]any{"name": id, "n": float64(n)}}
		if err := tx.Insert(c, r); err != nil {
			return err
		}
		return tx.Append(&eventlog.Event{Type: eventlog.RecordCreated, Collection: c.Name, Subject: id, Time: now})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// topQuery is the benchmark's list: n > min, highest first, a page of limit.
func topQuery(t testing.TB, c *schema.Collection, min, limit int, encode bool) *query.Query {
	t.Helper()
	comp, err := query.NewCompiler(c)
	if err != nil {
		t.Fatal(err)
	}
	f, err := comp.Compile(fmt.Sprintf("n > %d", min))
	if err != nil {
		t.Fatal(err)
	}
	sort, err := query.ParseSort(c, "-n")
	if err != nil {
		t.Fatal(err)
	}
	return &query.Query{Filter: f, Sort: sort, Limit: limit, Encode: encode, Count: true}
}

func pageIDs(p *store.Page) string {
	var ids []string
	if p.JSON == nil {
		for _, r := range p.Records {
			ids = append(ids, r.ID)
		}
	}
	for _, b := range p.JSON {
		i := strings.Index(string(b), `"id":"`)
		ids = append(ids, string(b[i+6:i+6+strings.IndexByte(string(b[i+6:]), '"')]))
	}
	return strings.Join(ids, ",") + fmt.Sprintf(" total=%d", p.Total)
}

// TestPageCacheHitsAndInvalidates lists the same page twice (the second
// time from the cache), then writes: the next list must show the write.
func TestPageCacheHitsAndInvalidates(t *testing.T) {
	db, c := openPages(t, Options{})
	ctx := context.Background()
	for i := range 10 {
		insertThing(t, db, c, fmt.Sprintf("r%02d", i), i)
	}
	for _, encode := range []bool{true, false} {
		q := topQuery(t, c, 2, 3, encode)
		first, err := db.List(ctx, c, q)
		if err != nil {
			t.Fatal(err)
		}
		second, err := db.List(ctx, c, q)
		if err != nil {
			t.Fatal(err)
		}
		if second != first {
			t.Errorf("encode=%v: the second list of the same query was not served from the cache", encode)
		}
		if got, want := pageIDs(first), "r09,r08,r07 total=7"; got != want {
			t.Fatalf("encode=%v: first page %s, want %s", encode, got, want)
		}
	}
	insertThing(t, db, c, "top", 100)
	for _, encode := range []bool{true, false} {
		p, err := db.List(ctx, c, topQuery(t, c, 2, 3, encode))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := pageIDs(p), "top,r09,r08 total=8"; got != want {
			t.Errorf("encode=%v: after a write the page is %s, want %s", encode, got, want)
		}
	}
	// Other arguments, fields or a cursor are other pages.
	q := topQuery(t, c, 7, 3, true)
	q.Fields = map[string]bool{"name": true}
	p, err := db.List(ctx, c, q)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pageIDs(p), "top,r09,r08 total=3"; got != want {
		t.Errorf("n > 7: %s, want %s", got, want)
	}
	if strings.Contains(string(p.JSON[0]), `"n":`) {
		t.Errorf("fields=name served a page with every field: %s", p.JSON[0])
	}
}

// TestPageCacheSchemaChange changes the schema: a cached page must not
// outlive it (the new field must appear).
func TestPageCacheSchemaChange(t *testing.T) {
	db, c := openPages(t, Options{})
	ctx := context.Background()
	insertThing(t, db, c, "a", 5)
	q := topQuery(t, c, 0, 10, true)
	if _, err := db.List(ctx, c, q); err != nil {
		t.Fatal(err)
	}
	from := storetest.Fixture()
	to := storetest.Fixture()
	to.Collections[0].Fields = append(to.Collections[0].Fields, &schema.Field{Name: "extra", Type: schema.Text})
	err := db.Write(ctx, func(tx store.Tx) error { return tx.Migrate(from, to, schema.Diff(from, to)) })
	if err != nil {
		t.Fatal(err)
	}
	c2 := to.Collections[0]
	p, err := db.List(ctx, c2, topQuery(t, c2, 0, 10, true))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.JSON) != 1 || !strings.Contains(string(p.JSON[0]), `"extra":`) {
		t.Errorf("after adding a field the page is %q", p.JSON)
	}
}

// TestPageCacheReadsItsWrites lists while writers insert: once a write is
// answered, every list that starts after it must include it, and no page
// may count fewer records than a page listed before it.
func TestPageCacheReadsItsWrites(t *testing.T) {
	db, c := openPages(t, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := 0
	done := make(chan struct{})
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			for {
				select {
				case <-done:
					return
				default:
				}
				mu.Lock()
				want := acked
				mu.Unlock()
				p, err := db.List(ctx, c, topQuery(t, c, -1, 5, r%2 == 0))
				if err != nil {
					t.Error(err)
					return
				}
				if p.Total < int64(want) || p.Total < last {
					t.Errorf("a list counted %d records after %d writes were answered (and %d before)", p.Total, want, last)
					return
				}
				last = p.Total
			}
		}()
	}
	for i := range 200 {
		insertThing(t, db, c, fmt.Sprintf("w%03d", i), i)
		mu.Lock()
		acked++
		mu.Unlock()
	}
	close(done)
	wg.Wait()
}

// TestPageCacheBound fills a small cache with many distinct pages: it
// stays within its budget and keeps serving correct pages.
func TestPageCacheBound(t *testing.T) {
	db, c := openPages(t, Options{CachePages: 64 << 10})
	ctx := context.Background()
	for i := range 30 {
		insertThing(t, db, c, fmt.Sprintf("r%02d", i), i)
	}
	for round := range 2 {
		for min := -1; min < 200; min++ {
			p, err := db.List(ctx, c, topQuery(t, c, min, 2, true))
			if err != nil {
				t.Fatal(err)
			}
			wantTotal := max(0, 29-min)
			if min >= 29 {
				wantTotal = 0
			}
			if p.Total != int64(wantTotal) {
				t.Fatalf("round %d, n > %d: total %d, want %d", round, min, p.Total, wantTotal)
			}
		}
	}
	db.pages.mu.Lock()
	used := db.pages.bytes
	db.pages.mu.Unlock()
	if used > 64<<10 {
		t.Errorf("the cache holds %d bytes, over its 64 KiB", used)
	}
	if used == 0 {
		t.Error("the cache holds nothing")
	}
}

// TestPageCacheOff turns the cache off: lists still work.
func TestPageCacheOff(t *testing.T) {
	db, c := openPages(t, Options{CachePages: -1})
	insertThing(t, db, c, "a", 1)
	q := topQuery(t, c, 0, 5, true)
	a, err := db.List(context.Background(), c, q)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.List(context.Background(), c, q)
	if err != nil {
		t.Fatal(err)
	}
	if a == b || pageIDs(a) != "a total=1" || pageIDs(b) != "a total=1" {
		t.Errorf("with the cache off: %s / %s (same page: %v)", pageIDs(a), pageIDs(b), a == b)
	}
}

func TestPageKeyDistinguishes(t *testing.T) {
	keys := map[string][]any{}
	for _, args := range [][]any{
		{"ab", "c"}, {"a", "bc"}, {int64(1)}, {"1"}, {float64(1)}, {true}, {int64(1), nil}, {nil, int64(1)}, {[]byte("ab"), "c"},
	} {
		k, ok := pageKey("SELECT", args, nil, false, true)
		if !ok {
			t.Fatalf("%v: not cacheable", args)
		}
		if prev, dup := keys[k]; dup {
			t.Errorf("%v and %v have the same key", prev, args)
		}
		keys[k] = args
	}
	a, _ := pageKey("S", nil, map[string]bool{"x": true, "y": true}, false, true)
	b, _ := pageKey("S", nil, map[string]bool{"y": true, "x": true}, false, true)
	c, _ := pageKey("S", nil, map[string]bool{"x": true}, false, true)
	d, _ := pageKey("S", nil, nil, true, true)
	if a != b || a == c || c == d {
		t.Error("fields or count are not keyed right")
	}
	if _, ok := pageKey("S", []any{struct{}{}}, nil, false, true); ok {
		t.Error("an argument of an unknown type was cacheable")
	}
}
