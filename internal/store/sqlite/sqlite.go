// Package sqlite is the embedded storage adapter: one SQLite database file
// in WAL mode, one writer goroutine that group-commits concurrent writes
// (each in its own savepoint), and a pool of read-only connections.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
	sqlite3 "github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"
)

var _ store.Store = (*DB)(nil)

// FileName is the database file inside the data directory.
const FileName = "mantle.db"

// Options configure Open.
type Options struct {
	// OnCommit receives the events of each committed batch, in order, from
	// the writer goroutine. It must not block for long.
	OnCommit func([]*eventlog.Event)
	// Readers is the size of the read pool; 0 means 2 per CPU.
	Readers int
	// MaxBatch bounds how many writes share one transaction; 0 means 256.
	MaxBatch int
	// NoLock skips the data directory lock (for tools that open a copy).
	NoLock bool
	// CacheRecords bounds the in-memory record cache; 0 means 50,000 and
	// a negative number turns the cache off.
	CacheRecords int
	// CachePages bounds the list page cache, in bytes; 0 means 32 MiB and
	// a negative number turns the cache off.
	CachePages int
	// ReaderCache is each read connection's SQLite page cache, in bytes;
	// 0 means 16 MiB. Every connection keeps its own copy of the pages it
	// reads, so the pool's share of memory is this times Readers.
	ReaderCache int

	// manualCheckpoints stops the background checkpointer from running
	// (tests that drive checkpoints themselves).
	manualCheckpoints bool
}

// DB is a SQLite-backed store.
type DB struct {
	path   string
	opts   Options
	unlock func()

	wdb   *sql.DB // the one writer connection
	wconn *sql.Conn
	rdb   *sql.DB   // readers
	raw   *readPool // readers for the hot queries

	wraw   *sqlite3.Conn            // the driver connection under wconn, for the writer
	wstmts map[string]*sqlite3.Stmt // writer statements, used only by the writer goroutine
	rstmts sync.Map                 // reader statements by SQL text
	tables sync.Map                 // *schema.Collection -> *tableSQL

	cache   *recordCache
	pages   *pageCache
	stats   writerStats
	wmu     sync.Mutex // held by the writer around each batch; the checkpointer takes it to restart the WAL
	queue   *sqlkit.Queue
	ckWake  chan struct{} // a commit happened
	ckDone  chan struct{}
	closeMu sync.Once
	nextSeq int64 // owned by the writer goroutine

	disk      fullState     // see full.go
	prio      error         // raiseWriter's answer
	writerTID int           // the writer's thread when it started (Linux)
	prioDone  chan struct{} // closed once prio is set
}

// DefaultReaders is the size of the read pool unless set: two per P.
func DefaultReaders() int { return 2 * runtime.GOMAXPROCS(0) }

// Open opens (creating if needed) the database in dir and starts its
// writer. It takes an exclusive lock on the directory.
func Open(ctx context.Context, dir string, opts Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	unlock := func() {}
	if !opts.NoLock {
		var err error
		if unlock, err = lockDir(dir); err != nil {
			return nil, err
		}
	}
	if opts.Readers <= 0 {
		opts.Readers = DefaultReaders()
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.CacheRecords == 0 {
		opts.CacheRecords = 50000
	}
	if opts.CachePages == 0 {
		opts.CachePages = 32 << 20
	}
	db := &DB{path: filepath.Join(dir, FileName), opts: opts, unlock: unlock,
		wstmts: map[string]*sqlite3.Stmt{}, cache: newRecordCache(opts.CacheRecords), pages: newPageCache(opts.CachePages), queue: sqlkit.NewQueue(opts.MaxBatch),
		ckWake: make(chan struct{}, 1), ckDone: make(chan struct{}), prioDone: make(chan struct{})}
	if err := db.open(ctx); err != nil {
		db.closeConns()
		unlock()
		return nil, err
	}
	cdb, err := driverOpen(db.path)
	if err != nil {
		db.closeConns()
		unlock()
		return nil, err
	}
	go db.writer()
	go db.checkpointer(cdb)
	return db, nil
}

// driverOpen opens a one-connection handle for the checkpointer.
func driverOpen(path string) (*sql.DB, error) {
	cdb, err := driver.Open(dsn(path, "busy_timeout(10000)"))
	if err != nil {
		return nil, err
	}
	cdb.SetMaxOpenConns(1)
	return cdb, nil
}

func dsn(path string, pragmas ...string) string {
	v := url.Values{}
	for _, p := range pragmas {
		v.Add("_pragma", p)
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + v.Encode()
}

func (db *DB) open(ctx context.Context) error {
	var err error
	// The writer's page cache is 4 MiB: SQLite scans the whole cache's hash
	// table at the end of every write transaction (pcache1Truncate), which
	// with 16 MiB took a tenth of the writer's time; the pages it misses are
	// in the operating system's cache.
	db.wdb, err = driver.Open(dsn(db.path,
		"busy_timeout(10000)", "journal_mode(wal)", "synchronous(full)", "foreign_keys(0)", "cache_size(-4096)",
		fmt.Sprintf("wal_autocheckpoint(%d)", backstopPages))+"&vfs="+useWALVFS(), stablePlans)
	if err != nil {
		return fmt.Errorf("open %s: %w", db.path, err)
	}
	db.wdb.SetMaxOpenConns(1)
	if db.wconn, err = db.wdb.Conn(ctx); err != nil {
		return fmt.Errorf("open %s: %w", db.path, err)
	}
	err = db.wconn.Raw(func(dc any) error {
		rc, ok := dc.(interface{ Raw() *sqlite3.Conn })
		if !ok {
			return fmt.Errorf("driver connection %T has no Raw", dc)
		}
		db.wraw = rc.Raw()
		return nil
	})
	if err != nil {
		return err
	}
	for _, stmt := range bootstrap {
		if _, err := db.wconn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("prepare %s: %w", db.path, err)
		}
	}
	if err := db.wconn.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM _mantle_events`).Scan(&db.nextSeq); err != nil {
		return fmt.Errorf("read last sequence: %w", err)
	}
	db.nextSeq++
	db.rdb, err = driver.Open(dsn(db.path, "busy_timeout(10000)", "query_only(1)"), stablePlans)
	if err != nil {
		return fmt.Errorf("open %s: %w", db.path, err)
	}
	db.rdb.SetMaxOpenConns(db.opts.Readers)
	db.rdb.SetMaxIdleConns(db.opts.Readers)
	if db.raw, err = openReadPool(db.path, db.opts.Readers, db.opts.ReaderCache); err != nil {
		return err
	}
	return nil
}

// stablePlans turns on the query planner stability guarantee: a prepared
// statement keeps its plan whatever values are bound, instead of being
// re-prepared on each run when a bound value could change the plan (which
// cost a tenth of the CPU of a filtered list).
func stablePlans(c *sqlite3.Conn) error {
	_, err := c.Config(sqlite3.DBCONFIG_ENABLE_QPSG, true)
	return err
}

var bootstrap = []string{
	`CREATE TABLE IF NOT EXISTS _mantle_events (
		seq INTEGER PRIMARY KEY,
		type TEXT NOT NULL,
		collection TEXT NOT NULL,
		subject TEXT NOT NULL,
		time TEXT NOT NULL,
		actor TEXT NOT NULL,
		data BLOB NOT NULL
	) STRICT`,
	`CREATE INDEX IF NOT EXISTS _mantle_events_record ON _mantle_events (collection, subject, seq)`,
	`CREATE TABLE IF NOT EXISTS _mantle_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT`,
	`CREATE TABLE IF NOT EXISTS _mantle_secrets (
		kind TEXT NOT NULL,
		key TEXT NOT NULL,
		value BLOB NOT NULL,
		PRIMARY KEY (kind, key)
	) STRICT, WITHOUT ROWID`,
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Schema implements store.Store.
func (db *DB) Schema(ctx context.Context) (*schema.Schema, error) {
	var raw []byte
	err := db.rdb.QueryRowContext(ctx, `SELECT value FROM _mantle_meta WHERE key = 'schema'`).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
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
	err := db.rdb.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM _mantle_events`).Scan(&n)
	return n, err
}

// Close implements store.Store: pending writes finish first.
func (db *DB) Close() error {
	db.closeMu.Do(func() {
		db.queue.Stop()
		<-db.ckDone
		db.closeConns()
		db.unlock()
	})
	return nil
}

func (db *DB) closeConns() {
	for _, s := range db.wstmts {
		s.Close()
	}
	db.rstmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	if db.wconn != nil {
		db.wconn.Close()
	}
	if db.wdb != nil {
		db.wdb.Close()
	}
	if db.rdb != nil {
		db.rdb.Close()
	}
	if db.raw != nil {
		db.raw.close()
	}
}

// readStmt returns a cached prepared statement for a read query.
func (db *DB) readStmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if s, ok := db.rstmts.Load(q); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.rdb.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if prev, loaded := db.rstmts.LoadOrStore(q, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}
