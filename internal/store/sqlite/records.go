package sqlite

import (
	"context"
	"strings"

	"github.com/mantlehq/mantle/internal/schema"
	sqlite3 "github.com/ncruces/go-sqlite3"
)

// Get implements store.Tx.
func (t *tx) Get(c *schema.Collection, id string) (*schema.Record, error) {
	var r *schema.Record
	found, err := t.db.queryRow(t.db.sqlFor(c).get, func(s *sqlite3.Stmt) { r = scanRaw(c, s) }, id)
	if err != nil {
		return nil, wrap("get "+c.Name, err)
	}
	if !found {
		return nil, notFound(c, id)
	}
	return r, nil
}

// Exists implements store.Tx.
func (t *tx) Exists(c *schema.Collection, id string) (bool, error) {
	found, err := t.db.queryRow(t.db.sqlFor(c).exists, func(*sqlite3.Stmt) {}, id)
	return found, wrap("check "+c.Name, err)
}

// Insert implements store.Tx.
func (t *tx) Insert(c *schema.Collection, r *schema.Record) error {
	if _, err := t.db.exec(t.db.sqlFor(c).insert, rowArgs(c, r)...); err != nil {
		return translate(c, wrap("insert into "+c.Name, err))
	}
	t.changes = append(t.changes, change{c.Name, r.ID, r})
	return nil
}

// Update implements store.Tx.
func (t *tx) Update(c *schema.Collection, r *schema.Record) error {
	args := rowArgs(c, r)
	args = append(args[1:], r.ID)
	n, err := t.db.exec(t.db.sqlFor(c).update, args...)
	if err != nil {
		return translate(c, wrap("update "+c.Name, err))
	}
	if n == 0 {
		return notFound(c, r.ID)
	}
	t.changes = append(t.changes, change{c.Name, r.ID, r})
	return nil
}

// Delete implements store.Tx.
func (t *tx) Delete(c *schema.Collection, id string) error {
	n, err := t.db.exec(t.db.sqlFor(c).delete, id)
	if err != nil {
		return wrap("delete from "+c.Name, err)
	}
	if n == 0 {
		return notFound(c, id)
	}
	t.changes = append(t.changes, change{c.Name, id, nil})
	return nil
}

// Get implements store.Store. Records come from the record cache when
// they are there; the returned record must not be changed.
func (db *DB) Get(ctx context.Context, c *schema.Collection, id string) (*schema.Record, error) {
	cached, gen, ok := db.cache.get(c.Name, id)
	if ok {
		return cached, nil
	}
	var r *schema.Record
	err := db.raw.query(ctx, db.sqlFor(c).get, []any{id}, func(s *sqlite3.Stmt) bool {
		r = scanRaw(c, s)
		return false
	})
	if err != nil {
		return nil, wrap("get "+c.Name, err)
	}
	if r == nil {
		return nil, notFound(c, id)
	}
	db.cache.fill(gen, c.Name, r)
	return r, nil
}

// GetMany implements store.Store.
func (db *DB) GetMany(ctx context.Context, c *schema.Collection, ids []string) (map[string]*schema.Record, error) {
	out := make(map[string]*schema.Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	q := `SELECT ` + columns(c) + ` FROM ` + quote(c.Name) + ` WHERE id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
	err := db.raw.query(ctx, q, args, func(s *sqlite3.Stmt) bool {
		r := scanRaw(c, s)
		out[r.ID] = r
		return true
	})
	return out, wrap("get "+c.Name, err)
}

// Referencing implements store.Tx.
func (t *tx) Referencing(c *schema.Collection, field, id string, limit int) ([]*schema.Record, error) {
	q := `SELECT ` + columns(c) + ` FROM ` + quote(c.Name) + ` WHERE ` + quote(field) + ` = ? ORDER BY id LIMIT ?`
	s, err := t.db.wstmt(q)
	if err != nil {
		return nil, wrap("references in "+c.Name, err)
	}
	defer s.Reset()
	if err := bindValue(s, 1, id); err != nil {
		return nil, err
	}
	if err := bindValue(s, 2, limit); err != nil {
		return nil, err
	}
	var out []*schema.Record
	for s.Step() {
		out = append(out, scanRaw(c, s))
	}
	return out, wrap("references in "+c.Name, s.Err())
}
