// Package store is the storage port: the operations the engine needs from
// a database, whatever the database is. Adapters live in subpackages
// (store/sqlite) and pass the conformance suite in store/storetest.
package store

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

// Store is a database holding the applied schema, the collections'
// records and the event log. Errors are *mantle.Error where the caller can
// act on them (not_found, conflict, invalid); anything else is internal.
type Store interface {
	// Schema returns the applied schema, or nil when none was applied.
	Schema(ctx context.Context) (*schema.Schema, error)
	// Write runs fn in a transaction shared with other concurrent writes
	// (group commit), isolated from them: if fn returns an error, only its
	// own changes are undone and the error is returned. Write returns nil
	// only after the transaction is durable. Events appended in fn are
	// handed to the commit hook after the commit. fn may be run more than
	// once (when a neighbour in its batch fails, the batch is run again),
	// so it must not change anything outside the transaction except to
	// overwrite its own results.
	Write(ctx context.Context, fn func(Tx) error) error
	// Get returns a record, or not_found.
	Get(ctx context.Context, c *schema.Collection, id string) (*schema.Record, error)
	// GetMany returns the records with the ids that exist, by id.
	GetMany(ctx context.Context, c *schema.Collection, ids []string) (map[string]*schema.Record, error)
	// List returns a page of records matching q.
	List(ctx context.Context, c *schema.Collection, q *query.Query) (*Page, error)
	// Events returns events in sequence order.
	Events(ctx context.Context, f EventFilter) ([]*eventlog.Event, error)
	// RecordEvent returns the last event of a record at or before seq, or
	// not_found when there is none.
	RecordEvent(ctx context.Context, collection, id string, seq int64) (*eventlog.Event, error)
	// LastSeq returns the sequence of the last event, 0 for an empty log.
	LastSeq(ctx context.Context) (int64, error)
	// Secret returns a stored secret, or not_found.
	Secret(ctx context.Context, kind, key string) ([]byte, error)
	// Secrets returns every secret of a kind, by key.
	Secrets(ctx context.Context, kind string) (map[string][]byte, error)
	// Close waits for pending writes and closes the database.
	Close() error
}

// Tx is the view of one write inside a group transaction.
type Tx interface {
	// Get returns a record as the transaction sees it, or not_found.
	Get(c *schema.Collection, id string) (*schema.Record, error)
	// Exists reports whether a record exists.
	Exists(c *schema.Collection, id string) (bool, error)
	// Insert adds a record: conflict when the id or a unique index is taken.
	Insert(c *schema.Collection, r *schema.Record) error
	// Update replaces a record's fields and system columns by id.
	Update(c *schema.Collection, r *schema.Record) error
	// Delete removes a record by id.
	Delete(c *schema.Collection, id string) error
	// Referencing returns up to limit records of c whose relation field
	// holds id, in id order: the records a deletion of id would leave
	// dangling.
	Referencing(c *schema.Collection, field, id string, limit int) ([]*schema.Record, error)
	// Append adds an event to the log. Its Seq is set by the time Write
	// returns; an adapter may number events only at commit, so fn must not
	// rely on Seq.
	Append(e *eventlog.Event) error
	// Secret returns a stored secret as the transaction sees it, or
	// not_found.
	Secret(kind, key string) ([]byte, error)
	// PutSecret stores a secret, replacing any with the same kind and key.
	// Secrets (password hashes, refresh-token families, API keys) live
	// beside the records but never in the event log.
	PutSecret(kind, key string, value []byte) error
	// CreateSecret stores value unless a secret with the same kind and key
	// exists, and returns the secret stored: of writers racing to create
	// one (nodes of a cluster generating a shared key at start), the first
	// wins and every one gets its value.
	CreateSecret(kind, key string, value []byte) ([]byte, error)
	// DeleteSecret removes a secret and reports whether there was one.
	DeleteSecret(kind, key string) (bool, error)
	// Migrate runs the steps from one schema to the next and records the
	// new schema as applied.
	Migrate(from, to *schema.Schema, steps []schema.Step) error
}

// ErrSchemaApplied is what Tx.Migrate may return when the schema it was
// asked to reach is already applied: another node of a cluster applied it
// first. The caller treats the migration as done (and records nothing).
var ErrSchemaApplied = errors.New("the schema is already applied")

// Page is one page of a list.
type Page struct {
	Records []*schema.Record
	JSON    [][]byte // with Query.Encode: each record's JSON, as schema.AppendJSON writes it
	More    bool     // another page follows
	Total   int64    // matching records when counted, else -1

	cursor atomic.Pointer[string]
}

// SetCursor sets the page's next-page cursor: a store that encodes rows
// (Query.Encode) may set it instead of returning the page's last record.
func (p *Page) SetCursor(c string) { p.cursor.Store(&c) }

// Cursor returns the page's next-page cursor, made by next the first time:
// a page a store's cache serves again and again encodes it once.
func (p *Page) Cursor(next func() string) string {
	if c := p.cursor.Load(); c != nil {
		return *c
	}
	c := next()
	p.cursor.Store(&c)
	return c
}

// EventFilter selects events.
type EventFilter struct {
	After       int64
	Limit       int
	Collections []string // empty: all
	Types       []string // empty: all
}

// Match reports whether an event passes the filter's collections and types.
func (f EventFilter) Match(e *eventlog.Event) bool {
	return (len(f.Collections) == 0 || contains(f.Collections, e.Collection)) &&
		(len(f.Types) == 0 || contains(f.Types, e.Type))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
