package postgres

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
)

// columnType is the column type that stores a field. Text, datetimes
// (schema.TimeFormat, which sorts as it reads), selects and relations are
// TEXT in the "C" collation: bytewise order, as in SQLite and query.Eval.
// JSON is json, which keeps the text exactly as it was written.
func columnType(f *schema.Field) string {
	switch f.Type {
	case schema.Number:
		if f.Integer {
			return "BIGINT"
		}
		return "DOUBLE PRECISION"
	case schema.Bool:
		return "BOOLEAN"
	case schema.JSON:
		return "JSON"
	}
	return `TEXT COLLATE "C"`
}

// dialect is PostgreSQL's DDL. Indexes are NULLS FIRST, so that a scan
// forward gives a list's ascending order (nulls first) and a scan backward
// its descending order (nulls last); a plain index would force a sort. An
// ordinary index ends with id, the tie-break of every sort, so a page of a
// keyset walk is a range of the index.
var dialect = sqlkit.Dialect{
	ColumnType: columnType,
	System:     "id TEXT COLLATE \"C\" PRIMARY KEY NOT NULL,\n\t\"createdAt\" TEXT COLLATE \"C\" NOT NULL,\n\t\"updatedAt\" TEXT COLLATE \"C\" NOT NULL,\n\tversion BIGINT NOT NULL",
	IndexColumns: func(ix schema.Index) []string {
		cols := make([]string, len(ix.Fields))
		for i, f := range ix.Fields {
			cols[i] = quote(f) + " NULLS FIRST"
		}
		if !ix.Unique {
			cols = append(cols, "id")
		}
		return cols
	},
}

// CreateTableSQL returns the statement that creates a collection's table.
func CreateTableSQL(c *schema.Collection) string { return dialect.CreateTableSQL(c) }

// StepSQL returns the statements that carry out one migration step.
func StepSQL(to *schema.Schema, s schema.Step) []string { return dialect.StepSQL(to, s) }

// migrateLock is the advisory lock key that serialises migrations.
const migrateLock = 0x6d616e746c6501

// appliedSchema reads the applied schema inside the transaction.
func (t *tx) appliedSchema() ([]byte, error) {
	if err := t.flush(); err != nil {
		return nil, err
	}
	var raw []byte
	err := t.db.wconn.QueryRow(bg, `SELECT value FROM _mantle_meta WHERE key = 'schema'`).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return raw, wrap("read applied schema", err)
}

// same reports whether a stored schema is s (both absent counts).
func same(raw []byte, s *schema.Schema) bool {
	if raw == nil || s == nil {
		return raw == nil && s == nil
	}
	var stored schema.Schema
	if json.Unmarshal(raw, &stored) != nil {
		return false
	}
	a, _ := json.Marshal(&stored)
	b, _ := json.Marshal(s)
	return string(a) == string(b)
}

// Migrate implements store.Tx. PostgreSQL's DDL is transactional: a
// failing step undoes the whole migration with the batch.
func (t *tx) Migrate(from, to *schema.Schema, steps []schema.Step) error {
	t.migrated = true
	// Nodes of a cluster that start together with a new project would all
	// migrate: the first does, the others find its schema and stop.
	if _, err := t.execNow(`SELECT pg_advisory_xact_lock($1)`, int64(migrateLock)); err != nil {
		return wrap("lock the schema", err)
	}
	applied, err := t.appliedSchema()
	if err != nil {
		return err
	}
	if same(applied, to) {
		return store.ErrSchemaApplied
	}
	if !same(applied, from) {
		return fmt.Errorf("the applied schema changed while this plan was made (another node applied a different project?): plan again")
	}
	for _, s := range steps {
		for _, q := range StepSQL(to, s) {
			if _, err := t.execNow(q); err != nil {
				var pe *pgconn.PgError
				if s.Kind == schema.CreateIndex && errors.As(err, &pe) && pe.Code == "23505" {
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
	_, err = t.execNow(`INSERT INTO _mantle_meta (key, value) VALUES ('schema', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, raw)
	return wrap("record applied schema", err)
}
