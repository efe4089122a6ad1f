package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/mantlehq/mantle"
)

func secretNotFound(kind, key string) error {
	return mantle.Errorf(mantle.NotFound, "secret.not_found", "no %s %q", kind, key)
}

// Secret implements store.Store.
func (db *DB) Secret(ctx context.Context, kind, key string) ([]byte, error) {
	if hasNUL(kind, key) {
		return nil, secretNotFound(kind, key)
	}
	return secret(db.pool.QueryRow(ctx, `SELECT value FROM _mantle_secrets WHERE kind = $1 AND key = $2`, kind, key), kind, key)
}

func secret(row pgx.Row, kind, key string) ([]byte, error) {
	var v []byte
	err := row.Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, secretNotFound(kind, key)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kind, err)
	}
	return v, nil
}

// Secrets implements store.Store.
func (db *DB) Secrets(ctx context.Context, kind string) (map[string][]byte, error) {
	rows, err := db.pool.Query(ctx, `SELECT key, value FROM _mantle_secrets WHERE kind = $1`, kind)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kind, err)
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// Secret implements store.Tx.
func (t *tx) Secret(kind, key string) ([]byte, error) {
	if hasNUL(kind, key) {
		return nil, secretNotFound(kind, key)
	}
	if err := t.flush(); err != nil {
		return nil, err
	}
	return secret(t.db.wconn.QueryRow(bg, `SELECT value FROM _mantle_secrets WHERE kind = $1 AND key = $2`, kind, key), kind, key)
}

// PutSecret implements store.Tx.
func (t *tx) PutSecret(kind, key string, value []byte) error {
	return t.queue(pending{sql: `INSERT INTO _mantle_secrets (kind, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`, args: []any{kind, key, value},
		translate: func(err error) error { return wrap("store "+kind, err) }})
}

// DeleteSecret implements store.Tx.
func (t *tx) DeleteSecret(kind, key string) (bool, error) {
	n, err := t.execNow(`DELETE FROM _mantle_secrets WHERE kind = $1 AND key = $2`, kind, key)
	return n > 0, wrap("delete "+kind, err)
}

// CreateSecret implements store.Tx. Under READ COMMITTED an insert that
// meets a row another transaction is inserting waits for it; the SELECT
// after it, a new statement, then sees the winner's value.
func (t *tx) CreateSecret(kind, key string, value []byte) ([]byte, error) {
	if hasNUL(kind, key) {
		return nil, fmt.Errorf("store %s: a secret's kind and key cannot hold NUL", kind)
	}
	if _, err := t.execNow(`INSERT INTO _mantle_secrets (kind, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (kind, key) DO NOTHING`, kind, key, value); err != nil {
		return nil, wrap("store "+kind, err)
	}
	return t.Secret(kind, key)
}
