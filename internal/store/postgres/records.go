package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mantlehq/mantle/internal/schema"
)

// Get implements store.Tx.
func (t *tx) Get(c *schema.Collection, id string) (*schema.Record, error) {
	if hasNUL(id) {
		return nil, notFound(c, id)
	}
	if err := t.flush(); err != nil {
		return nil, err
	}
	s := newScanner(c)
	err := t.db.wconn.QueryRow(bg, t.db.sqlFor(c).get, id).Scan(s.dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(c, id)
	}
	if err != nil {
		return nil, wrap("get "+c.Name, err)
	}
	return s.record(), nil
}

// Exists implements store.Tx.
func (t *tx) Exists(c *schema.Collection, id string) (bool, error) {
	if hasNUL(id) {
		return false, nil
	}
	if err := t.flush(); err != nil {
		return false, err
	}
	var one int
	err := t.db.wconn.QueryRow(bg, t.db.sqlFor(c).exists, id).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, wrap("check "+c.Name, err)
}

// Insert implements store.Tx.
func (t *tx) Insert(c *schema.Collection, r *schema.Record) error {
	if err := checkNUL(c, r); err != nil {
		return err
	}
	return t.queue(pending{sql: t.db.sqlFor(c).insert, args: rowArgs(c, r),
		translate: func(err error) error { return translate(c, wrap("insert into "+c.Name, err)) }})
}

// Update implements store.Tx.
func (t *tx) Update(c *schema.Collection, r *schema.Record) error {
	if err := checkNUL(c, r); err != nil {
		return err
	}
	args := rowArgs(c, r)
	args = append(args[1:], r.ID)
	return t.queue(pending{sql: t.db.sqlFor(c).update, args: args,
		translate: func(err error) error { return translate(c, wrap("update "+c.Name, err)) },
		check:     changed(c, r.ID)})
}

// Delete implements store.Tx.
func (t *tx) Delete(c *schema.Collection, id string) error {
	if hasNUL(id) {
		return notFound(c, id)
	}
	return t.queue(pending{sql: t.db.sqlFor(c).delete, args: []any{id},
		translate: func(err error) error { return wrap("delete from "+c.Name, err) },
		check:     changed(c, id)})
}

// changed checks that an update or delete found its record. The check
// runs when the statement is sent (Update and Delete return before):
// the error fails the write all the same.
func changed(c *schema.Collection, id string) func(pgconn.CommandTag) error {
	return func(tag pgconn.CommandTag) error {
		if tag.RowsAffected() == 0 {
			return notFound(c, id)
		}
		return nil
	}
}

// Get implements store.Store.
func (db *DB) Get(ctx context.Context, c *schema.Collection, id string) (*schema.Record, error) {
	if hasNUL(id) {
		return nil, notFound(c, id)
	}
	s := newScanner(c)
	err := db.pool.QueryRow(ctx, db.sqlFor(c).get, id).Scan(s.dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(c, id)
	}
	if err != nil {
		return nil, wrap("get "+c.Name, err)
	}
	return s.record(), nil
}

// GetMany implements store.Store.
func (db *DB) GetMany(ctx context.Context, c *schema.Collection, ids []string) (map[string]*schema.Record, error) {
	out := make(map[string]*schema.Record, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT `+columns(c)+` FROM `+quote(c.Name)+` WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, wrap("get "+c.Name, err)
	}
	defer rows.Close()
	s := newScanner(c)
	for rows.Next() {
		if err := rows.Scan(s.dest...); err != nil {
			return nil, wrap("get "+c.Name, err)
		}
		r := s.record()
		out[r.ID] = r
	}
	return out, wrap("get "+c.Name, rows.Err())
}

// Referencing implements store.Tx.
func (t *tx) Referencing(c *schema.Collection, field, id string, limit int) ([]*schema.Record, error) {
	if hasNUL(id) {
		return nil, nil
	}
	if err := t.flush(); err != nil {
		return nil, err
	}
	rows, err := t.db.wconn.Query(bg, `SELECT `+columns(c)+` FROM `+quote(c.Name)+` WHERE `+quote(field)+` = $1 ORDER BY id LIMIT $2`, id, limit)
	if err != nil {
		return nil, wrap("references in "+c.Name, err)
	}
	defer rows.Close()
	var out []*schema.Record
	for rows.Next() {
		sc := newScanner(c)
		if err := rows.Scan(sc.dest...); err != nil {
			return nil, wrap("references in "+c.Name, err)
		}
		out = append(out, sc.record())
	}
	return out, wrap("references in "+c.Name, rows.Err())
}
