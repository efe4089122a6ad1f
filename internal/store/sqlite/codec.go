package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
	sqlite3 "github.com/ncruces/go-sqlite3"
)

func quote(name string) string { return sqlkit.Quote(name) }

func formatTime(t time.Time) string { return t.UTC().Format(schema.TimeFormat) }

// columns returns the quoted column list of a collection's table.
func columns(c *schema.Collection) string {
	var b strings.Builder
	b.WriteString(`id, createdAt, updatedAt, version`)
	for _, f := range c.Fields {
		b.WriteString(", ")
		b.WriteString(quote(f.Name))
	}
	return b.String()
}

// tableSQL holds the statements of one collection's table, built once per
// applied schema.
type tableSQL struct {
	cols, get, exists, insert, update, delete string
}

func (db *DB) sqlFor(c *schema.Collection) *tableSQL {
	if t, ok := db.tables.Load(c); ok {
		return t.(*tableSQL)
	}
	cols, t := columns(c), quote(c.Name)
	var set strings.Builder
	set.WriteString(`createdAt = ?, updatedAt = ?, version = ?`)
	for _, f := range c.Fields {
		set.WriteString(", " + quote(f.Name) + " = ?")
	}
	ts := &tableSQL{
		cols:   cols,
		get:    `SELECT ` + cols + ` FROM ` + t + ` WHERE id = ?`,
		exists: `SELECT 1 FROM ` + t + ` WHERE id = ?`,
		insert: `INSERT INTO ` + t + ` (` + cols + `) VALUES (?` + strings.Repeat(", ?", 3+len(c.Fields)) + `)`,
		update: `UPDATE ` + t + ` SET ` + set.String() + ` WHERE id = ?`,
		delete: `DELETE FROM ` + t + ` WHERE id = ?`,
	}
	db.tables.Store(c, ts)
	return ts
}

// bind turns a normalised field value into a SQLite value.
func bind(v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case bool:
		if v {
			return int64(1)
		}
		return int64(0)
	case time.Time:
		return formatTime(v)
	case json.RawMessage:
		return string(v)
	case float64:
		return v
	}
	return v
}

// bindField binds a value for a field, as an integer for integer numbers.
func bindField(f *schema.Field, v any) any {
	if n, ok := v.(float64); ok && f.Integer {
		return int64(n)
	}
	return bind(v)
}

// rowArgs returns the values of a record in column order.
func rowArgs(c *schema.Collection, r *schema.Record) []any {
	args := make([]any, 0, 4+len(c.Fields))
	args = append(args, r.ID, formatTime(r.CreatedAt), formatTime(r.UpdatedAt), r.Version)
	for _, f := range c.Fields {
		args = append(args, bindField(f, r.Data[f.Name]))
	}
	return args
}

func parseTime(s string) time.Time {
	t, _ := schema.ParseTime(s)
	return t
}

// translate turns driver errors the caller can act on into *mantle.Error.
func translate(c *schema.Collection, err error) error {
	var se *sqlite3.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.ExtendedCode() {
	case sqlite3.CONSTRAINT_PRIMARYKEY:
		return sqlkit.RecordExists(c)
	case sqlite3.CONSTRAINT_UNIQUE:
		var fields []string
		msg := se.Error()
		if i := strings.Index(msg, "failed: "); i >= 0 {
			for _, col := range strings.Split(msg[i+len("failed: "):], ", ") {
				if j := strings.LastIndex(col, "."); j >= 0 {
					fields = append(fields, strings.TrimSpace(col[j+1:]))
				}
			}
		}
		if slices.Contains(fields, "id") {
			return sqlkit.RecordExists(c)
		}
		return sqlkit.UniqueConflict(c, fields)
	}
	return err
}

func notFound(c *schema.Collection, id string) error { return sqlkit.NotFound(c, id) }

var errNoRows = sql.ErrNoRows

var ctxBG = context.Background()

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
