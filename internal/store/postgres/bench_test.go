package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/postgres"
	"github.com/mantlehq/mantle/internal/store/storetest"
)

// BenchmarkPgxCommit is the reference: one durable single-row commit at a
// time on one pgx connection, no Mantle in between.
func BenchmarkPgxCommit(b *testing.B) {
	url, name := testSchema(b)
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range []string{`CREATE SCHEMA ` + name, `CREATE TABLE ` + name + `.t (id TEXT PRIMARY KEY, body TEXT)`} {
		if _, err := c.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := c.Exec(ctx, `INSERT INTO `+name+`.t (id, body) VALUES ($1, $2)`, fmt.Sprint(i), "x"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGroupCommit measures durable single-record writes (row and
// event) from 32 concurrent writers through the store: each is answered
// after its batch's commit.
func BenchmarkGroupCommit(b *testing.B) {
	url, name := testSchema(b)
	ctx := context.Background()
	db, err := postgres.Open(ctx, url, postgres.Options{Schema: name})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := storetest.Fixture()
	c := s.Collections[0]
	if err := db.Write(ctx, func(tx store.Tx) error { return tx.Migrate(nil, s, schema.Diff(nil, s)) }); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(16) // 16 × GOMAXPROCS(2) = 32 writers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("b%09d", n.Add(1))
			now := time.Now().UTC()
			err := db.Write(ctx, func(tx store.Tx) error {
				r := &schema.Record{ID: id, CreatedAt: now, UpdatedAt: now, Version: 1, Data: map[string]any{"name": id, "n": float64(n.Load() % 1000)}}
				if err := tx.Insert(c, r); err != nil {
					return err
				}
				return tx.Append(&eventlog.Event{Type: eventlog.RecordCreated, Collection: c.Name, Subject: id, Time: now,
					Data: eventlog.NewRecordData(c.MarshalRecord(r), nil, nil)})
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}
