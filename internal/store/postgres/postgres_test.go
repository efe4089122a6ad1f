package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/postgres"
	"github.com/mantlehq/mantle/internal/store/storetest"
	"github.com/mantlehq/mantle/internal/testenv"
)

// testSchema makes a PostgreSQL schema of the test's own, dropped after it.
func testSchema(t testing.TB) (url, name string) {
	url = testenv.PostgresURL(t)
	b := make([]byte, 6)
	rand.Read(b)
	name = "mantle_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+name+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return url, name
}

func open(t *testing.T) store.Store { return openTB(t) }

func openTB(t testing.TB) store.Store {
	url, name := testSchema(t)
	db, err := postgres.Open(context.Background(), url, postgres.Options{Schema: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	testenv.PostgresURL(t)
	storetest.Run(t, open)
}

// TestLogAcrossNodes runs writers on three stores (three nodes) over one
// database and a reader tailing the log from a fourth: the reader must
// see every sequence exactly once, in order, although the nodes'
// transactions commit in whatever order they finish. It is the guarantee
// the package comment explains.
func TestLogAcrossNodes(t *testing.T) {
	url, name := testSchema(t)
	ctx := context.Background()
	var nodes []*postgres.DB
	for range 4 {
		db, err := postgres.Open(ctx, url, postgres.Options{Schema: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		nodes = append(nodes, db)
	}
	sc := storetest.Fixture()
	c := sc.Collections[0]
	if err := nodes[0].Write(ctx, func(tx store.Tx) error { return tx.Migrate(nil, sc, schema.Diff(nil, sc)) }); err != nil {
		t.Fatal(err)
	}
	const writersPerNode, each = 8, 60
	total := 3 * writersPerNode * each
	seen := make(chan []int64, 1)
	done := make(chan struct{})
	go func() { // the tailing reader
		var got []int64
		after := int64(0)
		for len(got) < total {
			finished := false
			select {
			case <-done:
				finished = true
			default:
			}
			evs, err := nodes[3].Events(ctx, store.EventFilter{After: after, Limit: 64})
			if err != nil {
				t.Error(err)
				break
			}
			for _, e := range evs {
				got = append(got, e.Seq)
				after = e.Seq
			}
			if finished && len(evs) == 0 {
				break // the writers are done and the log is read to its end
			}
		}
		seen <- got
	}()
	var wg sync.WaitGroup
	for n := range 3 {
		for w := range writersPerNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					id := fmt.Sprintf("n%d-w%d-%d", n, w, i)
					now := time.Now().UTC()
					err := nodes[n].Write(ctx, func(tx store.Tx) error {
						r := &schema.Record{ID: id, CreatedAt: now, UpdatedAt: now, Version: 1, Data: map[string]any{"name": id}}
						if err := tx.Insert(c, r); err != nil {
							return err
						}
						return tx.Append(&eventlog.Event{Type: eventlog.RecordCreated, Collection: c.Name, Subject: id, Time: now})
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(done)
	got := <-seen
	if len(got) != total {
		t.Fatalf("the reader saw %d events, want %d", len(got), total)
	}
	for i, seq := range got {
		if seq != int64(i+1) {
			t.Fatalf("position %d: seq %d, want %d (a gap, a duplicate or a skip)", i, seq, i+1)
		}
	}
	if last, _ := nodes[1].LastSeq(ctx); last != int64(total) {
		t.Errorf("LastSeq %d, want %d", last, total)
	}
}

// TestConcurrentStartsMigrateOnce: nodes that start together with a new
// project all apply it; one migrates, the others find its schema, and the
// log records one schema.applied.
func TestConcurrentStartsMigrateOnce(t *testing.T) {
	url, name := testSchema(t)
	ctx := context.Background()
	var engines []*engine.Engine
	for range 3 {
		db, err := postgres.Open(ctx, url, postgres.Options{Schema: name})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		eng, err := engine.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		engines = append(engines, eng)
	}
	var wg sync.WaitGroup
	for _, eng := range engines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := eng.Apply(ctx, storetest.Fixture(), engine.SafeOnly); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	db, err := postgres.Open(ctx, url, postgres.Options{Schema: name})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evs, err := db.Events(ctx, store.EventFilter{Types: []string{eventlog.SchemaApplied}, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Errorf("%d schema.applied events, want 1", len(evs))
	}
}
