package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mantlehq/mantle"
	"github.com/ncruces/go-sqlite3"
)

func secretNotFound(kind, key string) error {
	return mantle.Errorf(mantle.NotFound, "secret.not_found", "no %s %q", kind, key)
}

// Secret implements store.Store.
func (db *DB) Secret(ctx context.Context, kind, key string) ([]byte, error) {
	var v []byte
	err := db.rdb.QueryRowContext(ctx, `SELECT value FROM _mantle_secrets WHERE kind = ? AND key = ?`, kind, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, secretNotFound(kind, key)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kind, err)
	}
	return v, nil
}

// Secrets implements store.Store.
func (db *DB) Secrets(ctx context.Context, kind string) (map[string][]byte, error) {
	rows, err := db.rdb.QueryContext(ctx, `SELECT key, value FROM _mantle_secrets WHERE kind = ?`, kind)
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
	var v []byte
	found, err := t.db.queryRow(`SELECT value FROM _mantle_secrets WHERE kind = ? AND key = ?`,
		func(s *sqlite3.Stmt) { v = append([]byte(nil), s.ColumnRawBlob(0)...) }, kind, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kind, err)
	}
	if !found {
		return nil, secretNotFound(kind, key)
	}
	return v, nil
}

// PutSecret implements store.Tx.
func (t *tx) PutSecret(kind, key string, value []byte) error {
	_, err := t.db.exec(`INSERT INTO _mantle_secrets (kind, key, value) VALUES (?, ?, ?)
		ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value`, kind, key, value)
	return wrap("store "+kind, err)
}

// DeleteSecret implements store.Tx.
func (t *tx) DeleteSecret(kind, key string) (bool, error) {
	n, err := t.db.exec(`DELETE FROM _mantle_secrets WHERE kind = ? AND key = ?`, kind, key)
	return n > 0, wrap("delete "+kind, err)
}

// CreateSecret implements store.Tx.
func (t *tx) CreateSecret(kind, key string, value []byte) ([]byte, error) {
	if _, err := t.db.exec(`INSERT INTO _mantle_secrets (kind, key, value) VALUES (?, ?, ?)
		ON CONFLICT (kind, key) DO NOTHING`, kind, key, value); err != nil {
		return nil, wrap("store "+kind, err)
	}
	return t.Secret(kind, key)
}
