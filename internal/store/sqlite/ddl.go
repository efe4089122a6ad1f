package sqlite

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
	sqlite3 "github.com/ncruces/go-sqlite3"
)

// columnType is the STRICT column type that stores a field.
func columnType(f *schema.Field) string {
	switch f.Type {
	case schema.Number:
		if f.Integer {
			return "INTEGER"
		}
		return "REAL"
	case schema.Bool:
		return "INTEGER"
	}
	return "TEXT"
}

// dialect is SQLite's DDL: STRICT tables without rowid, clustered by id
// (so an index on a field also orders by id).
var dialect = sqlkit.Dialect{
	ColumnType:   columnType,
	System:       "id TEXT PRIMARY KEY NOT NULL,\n\tcreatedAt TEXT NOT NULL,\n\tupdatedAt TEXT NOT NULL,\n\tversion INTEGER NOT NULL",
	TableOptions: " STRICT, WITHOUT ROWID",
}

// CreateTableSQL returns the statement that creates a collection's table.
func CreateTableSQL(c *schema.Collection) string { return dialect.CreateTableSQL(c) }

// StepSQL returns the statements that carry out one migration step.
func StepSQL(to *schema.Schema, s schema.Step) []string { return dialect.StepSQL(to, s) }

// Migrate implements store.Tx.
func (t *tx) Migrate(from, to *schema.Schema, steps []schema.Step) error {
	t.migrated = true
	for _, s := range steps {
		for _, q := range StepSQL(to, s) {
			if _, err := t.db.wconn.ExecContext(ctxBG, q); err != nil {
				var se *sqlite3.Error
				if s.Kind == schema.CreateIndex && errors.As(err, &se) && se.Code() == sqlite3.CONSTRAINT {
					return sqlkit.UniqueIndexConflict(s)
				}
				return fmt.Errorf("%s: %s: %w", s, q, err)
			}
		}
	}
	raw, err := json.Marshal(to)
	if err != nil {
		return err
	}
	_, err = t.db.exec(`INSERT INTO _mantle_meta (key, value) VALUES ('schema', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, raw)
	return wrap("record applied schema", err)
}
