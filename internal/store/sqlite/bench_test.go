package sqlite_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlite"
	"github.com/mantlehq/mantle/internal/store/storetest"
)

func benchDB(b *testing.B, cache int) (*sqlite.DB, *schema.Collection) {
	return benchDBWith(b, sqlite.Options{CacheRecords: cache})
}

func benchDBWith(b *testing.B, opts sqlite.Options) (*sqlite.DB, *schema.Collection) {
	db, err := sqlite.Open(context.Background(), b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s := storetest.Fixture()
	err = db.Write(context.Background(), func(tx store.Tx) error {
		if err := tx.Migrate(nil, s, schema.Diff(nil, s)); err != nil {
			return err
		}
		return tx.Append(&eventlog.Event{Type: "test", Time: time.Now()})
	})
	if err != nil {
		b.Fatal(err)
	}
	return db, s.Collections[0]
}

var benchSeq atomic.Int64

func insertOne(db *sqlite.DB, c *schema.Collection) error {
	n := benchSeq.Add(1)
	id := fmt.Sprintf("b%012d", n)
	now := time.Now().UTC()
	r := &schema.Record{ID: id, CreatedAt: now, UpdatedAt: now, Version: 1,
		Data: map[string]any{"name": id, "n": float64(n % 10000)}}
	data := eventlog.NewRecordData(c.MarshalRecord(r), nil, nil)
	return db.Write(context.Background(), func(tx store.Tx) error {
		if err := tx.Insert(c, r); err != nil {
			return err
		}
		return tx.Append(&eventlog.Event{Type: eventlog.RecordCreated, Collection: c.Name, Subject: id, Time: now, Data: data})
	})
}

// BenchmarkGroupCommit measures durable single-record writes (row + event)
// from 32 concurrent writers: each is answered after its batch's fsync.
func BenchmarkGroupCommit(b *testing.B) {
	db, c := benchDB(b, 0)
	b.SetParallelism(16) // 16 × GOMAXPROCS(2) = 32 writers
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := insertOne(db, c); err != nil {
				b.Error(err)
				return
			}
		}
	})
	s := db.Stats()
	b.ReportMetric(float64(s.Writes)/float64(s.Batches), "writes/batch")
	b.ReportMetric(float64(s.Commit.Microseconds())/float64(s.Batches), "µs-commit/batch")
	b.ReportMetric(float64((s.Busy-s.Commit).Microseconds())/float64(s.Batches), "µs-exec/batch")
}

// BenchmarkGetUncached measures point reads that miss the record cache.
func BenchmarkGetUncached(b *testing.B) {
	db, c := benchDB(b, -1)
	for i := 0; i < 5000; i++ {
		if err := insertOne(db, c); err != nil {
			b.Fatal(err)
		}
	}
	first := benchSeq.Load() - 4999
	b.ResetTimer()
	var i atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("b%012d", first+i.Add(1)%5000)
			if _, err := db.Get(context.Background(), c, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkListTop20 measures the list of the API benchmark: an indexed
// range filter, sorted descending, 20 per page, rows encoded to JSON as
// the API asks; "cached" with the list page cache (10,000 distinct
// filters, all cached after the first pass), "uncached" without it.
func BenchmarkListTop20(b *testing.B) {
	for _, bc := range []struct {
		name  string
		pages int
	}{{"cached", 0}, {"uncached", -1}} {
		b.Run(bc.name, func(b *testing.B) {
			db, c := benchDBWith(b, sqlite.Options{CachePages: bc.pages})
			for i := 0; i < 5000; i++ {
				if err := insertOne(db, c); err != nil {
					b.Fatal(err)
				}
			}
			comp, _ := query.NewCompiler(c)
			sort, _ := query.ParseSort(c, "-n")
			b.ResetTimer()
			var i atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f, err := comp.Compile(fmt.Sprintf("n > %d", i.Add(1)%10000))
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := db.List(context.Background(), c, &query.Query{Filter: f, Sort: sort, Limit: 20, Encode: true}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
