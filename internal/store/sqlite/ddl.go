package sqlite

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/schema"
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

func indexName(c string, ix schema.Index) string {
	prefix := "idx_"
	if ix.Unique {
		prefix = "uq_"
	}
	return prefix + c + "_" + strings.Join(ix.Fields, "_")
}

// CreateTableSQL returns the statement that creates a collection's table.
func CreateTableSQL(c *schema.Collection) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + quote(c.Name) + " (\n\tid TEXT PRIMARY KEY NOT NULL,\n\tcreatedAt TEXT NOT NULL,\n\tupdatedAt TEXT NOT NULL,\n\tversion INTEGER NOT NULL")
	for _, f := range c.Fields {
		b.WriteString(",\n\t" + quote(f.Name) + " " + columnType(f))
	}
	b.WriteString("\n) STRICT, WITHOUT ROWID")
	return b.String()
}

// StepSQL returns the statements that carry out one migration step.
func StepSQL(to *schema.Schema, s schema.Step) []string {
	t := quote(s.Collection)
	switch s.Kind {
	case schema.DropIndex:
		return []string{"DROP INDEX IF EXISTS " + quote(indexName(s.Collection, s.Index))}
	case schema.DropField:
		return []string{"ALTER TABLE " + t + " DROP COLUMN " + quote(s.Field.Name)}
	case schema.DropCollection:
		return []string{"DROP TABLE " + t}
	case schema.CreateCollection:
		return []string{CreateTableSQL(to.Collection(s.Collection))}
	case schema.AddField:
		return []string{"ALTER TABLE " + t + " ADD COLUMN " + quote(s.Field.Name) + " " + columnType(s.Field)}
	case schema.AlterField:
		if !s.Destructive {
			return nil // only validation changed
		}
		return []string{
			"ALTER TABLE " + t + " DROP COLUMN " + quote(s.Field.Name),
			"ALTER TABLE " + t + " ADD COLUMN " + quote(s.Field.Name) + " " + columnType(s.Field),
		}
	case schema.CreateIndex:
		cols := make([]string, len(s.Index.Fields))
		for i, f := range s.Index.Fields {
			cols[i] = quote(f)
		}
		u := ""
		if s.Index.Unique {
			u = "UNIQUE "
		}
		return []string{"CREATE " + u + "INDEX " + quote(indexName(s.Collection, s.Index)) + " ON " + t + " (" + strings.Join(cols, ", ") + ")"}
	}
	return nil
}

// Migrate implements store.Tx.
func (t *tx) Migrate(from, to *schema.Schema, steps []schema.Step) error {
	t.migrated = true
	for _, s := range steps {
		for _, q := range StepSQL(to, s) {
			if _, err := t.db.wconn.ExecContext(ctxBG, q); err != nil {
				var se *sqlite3.Error
				if s.Kind == schema.CreateIndex && errors.As(err, &se) && se.Code() == sqlite3.CONSTRAINT {
					return mantle.Errorf(mantle.Conflict, "schema.unique_violation",
						"cannot add unique index on %s(%s): existing records share a value; fix them first",
						s.Collection, strings.Join(s.Index.Fields, ", "))
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
