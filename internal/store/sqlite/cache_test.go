package sqlite_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/storetest"
)

// TestCacheNeverGoesBack reads a record while it is updated many times:
// no read may see an older version than a read before it, and the last
// read sees the last write.
func TestCacheNeverGoesBack(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	s := storetest.Fixture()
	c := s.Collections[0]
	now := time.Now().UTC()
	err := db.Write(ctx, func(tx store.Tx) error {
		if err := tx.Migrate(nil, s, schema.Diff(nil, s)); err != nil {
			return err
		}
		if err := tx.Insert(c, &schema.Record{ID: "k", CreatedAt: now, UpdatedAt: now, Version: 1, Data: map[string]any{"name": "k"}}); err != nil {
			return err
		}
		return tx.Append(&eventlog.Event{Type: "test", Time: now})
	})
	if err != nil {
		t.Fatal(err)
	}
	const updates = 300
	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last int64
			for {
				select {
				case <-done:
					return
				default:
				}
				rec, err := db.Get(ctx, c, "k")
				if err != nil {
					t.Error(err)
					return
				}
				if rec.Version < last {
					t.Errorf("read version %d after %d", rec.Version, last)
					return
				}
				last = rec.Version
			}
		}()
	}
	for v := int64(2); v <= updates; v++ {
		err := db.Write(ctx, func(tx store.Tx) error {
			cur, err := tx.Get(c, "k")
			if err != nil {
				return err
			}
			next := cur.Clone()
			next.Version = v
			return tx.Update(c, next)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	wg.Wait()
	rec, _ := db.Get(ctx, c, "k")
	if rec.Version != updates {
		t.Errorf("final read: version %d, want %d", rec.Version, updates)
	}
}
