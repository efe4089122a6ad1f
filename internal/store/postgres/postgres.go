// Package postgres is the PostgreSQL storage adapter (pgx): the same
// tables, event log and group commit as the SQLite adapter, for any number
// of Mantle nodes sharing one database.
//
// The log's guarantee on PostgreSQL: sequence numbers have no gaps, and a
// reader that has seen sequence N will never later find a committed event
// below N. Both come from one counter row, _mantle_log. A write
// transaction takes its sequences at the very end, with
//
//	UPDATE _mantle_log SET last = last + n RETURNING last
//
// and then inserts its events and commits. The row lock it takes is held
// until the commit, so the next transaction, on this node or any other,
// gets its sequences only after this one has committed and become visible:
// sequences are handed out in commit order, and a reader's snapshot that
// contains sequence N contains every sequence below it. A transaction that
// rolls back gives its sequences back with its update of the counter, so
// there are no gaps. Only this last step is serialised across the cluster;
// each node's writes run in parallel until then.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
)

var _ store.Store = (*DB)(nil)

// Options configure Open.
type Options struct {
	// Schema is the PostgreSQL schema that holds Mantle's tables; empty
	// means the connection's default (usually public). It is created if it
	// does not exist.
	Schema string
	// OnCommit receives the events of each committed batch, in order, from
	// the writer goroutine. It must not block for long.
	OnCommit func([]*eventlog.Event)
	// MaxBatch bounds how many writes share one transaction; 0 means 256.
	MaxBatch int
	// MaxConns bounds the read pool; 0 means pgxpool's default.
	MaxConns int32
}

// DB is a PostgreSQL-backed store.
type DB struct {
	opts   Options
	pool   *pgxpool.Pool // reads
	wconn  *pgx.Conn     // the writer's own connection
	tables sync.Map      // *schema.Collection -> *tableSQL

	queue   *sqlkit.Queue
	closeMu sync.Once
}

// Open connects to the database at url (a postgres:// URL or a libpq
// keyword string), creates Mantle's tables if needed and starts the writer.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres settings: %w", err)
	}
	if opts.Schema != "" {
		pcfg.ConnConfig.RuntimeParams["search_path"] = opts.Schema
	} else if sp := pcfg.ConnConfig.RuntimeParams["search_path"]; identifier.MatchString(sp) {
		opts.Schema = sp // one schema named in the URL: create it if needed
	}
	if opts.MaxConns > 0 {
		pcfg.MaxConns = opts.MaxConns
	}
	db := &DB{opts: opts, queue: sqlkit.NewQueue(opts.MaxBatch)}
	if db.wconn, err = pgx.ConnectConfig(ctx, pcfg.ConnConfig.Copy()); err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := db.bootstrap(ctx); err != nil {
		db.wconn.Close(ctx)
		return nil, err
	}
	if db.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		db.wconn.Close(ctx)
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	go db.queue.Run(db.run)
	return db, nil
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// bootstrapLock is the advisory lock key that serialises the creation of
// Mantle's tables when several nodes start at once.
const bootstrapLock = 0x6d616e746c65 // "mantle"

func (db *DB) bootstrap(ctx context.Context) error {
	tx, err := db.wconn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(bootstrapLock)); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if db.opts.Schema != "" {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+quote(db.opts.Schema)); err != nil {
			return fmt.Errorf("create schema %s: %w", db.opts.Schema, err)
		}
	}
	for _, q := range bootstrap {
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("bootstrap: %s: %w", q, err)
		}
	}
	return tx.Commit(ctx)
}

var bootstrap = []string{
	`CREATE TABLE IF NOT EXISTS _mantle_events (
		seq BIGINT PRIMARY KEY,
		type TEXT COLLATE "C" NOT NULL,
		collection TEXT COLLATE "C" NOT NULL,
		subject TEXT COLLATE "C" NOT NULL,
		time TEXT COLLATE "C" NOT NULL,
		actor TEXT COLLATE "C" NOT NULL,
		data BYTEA NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS _mantle_events_record ON _mantle_events (collection, subject, seq)`,
	`CREATE TABLE IF NOT EXISTS _mantle_log (id INTEGER PRIMARY KEY CHECK (id = 1), last BIGINT NOT NULL)`,
	`INSERT INTO _mantle_log (id, last) VALUES (1, 0) ON CONFLICT (id) DO NOTHING`,
	`CREATE TABLE IF NOT EXISTS _mantle_meta (key TEXT COLLATE "C" PRIMARY KEY, value BYTEA NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS _mantle_secrets (
		kind TEXT COLLATE "C" NOT NULL,
		key TEXT COLLATE "C" NOT NULL,
		value BYTEA NOT NULL,
		PRIMARY KEY (kind, key)
	)`,
}

// Schema implements store.Store.
func (db *DB) Schema(ctx context.Context) (*schema.Schema, error) {
	var raw []byte
	err := db.pool.QueryRow(ctx, `SELECT value FROM _mantle_meta WHERE key = 'schema'`).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read applied schema: %w", err)
	}
	var s schema.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode applied schema: %w", err)
	}
	return &s, nil
}

// LastSeq implements store.Store.
func (db *DB) LastSeq(ctx context.Context) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT last FROM _mantle_log WHERE id = 1`).Scan(&n)
	return n, wrap("read last sequence", err)
}

// Ping checks that the database answers (for readiness).
func (db *DB) Ping(ctx context.Context) error { return db.pool.Ping(ctx) }

// Close implements store.Store: pending writes finish first.
func (db *DB) Close() error {
	db.closeMu.Do(func() {
		db.queue.Stop()
		db.wconn.Close(context.Background())
		db.pool.Close()
	})
	return nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
