package postgres

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store/sqlkit"
)

func quote(name string) string { return sqlkit.Quote(name) }

func formatTime(t time.Time) string { return t.UTC().Format(schema.TimeFormat) }

func parseTime(s string) time.Time {
	t, _ := schema.ParseTime(s)
	return t
}

// columns returns the quoted column list of a collection's table.
func columns(c *schema.Collection) string {
	var b strings.Builder
	b.WriteString(`id, "createdAt", "updatedAt", version`)
	for _, f := range c.Fields {
		b.WriteString(", ")
		b.WriteString(quote(f.Name))
	}
	return b.String()
}

// tableSQL holds the statements of one collection's table, built once per
// applied schema.
type tableSQL struct {
	get, exists, insert, update, delete string
}

func (db *DB) sqlFor(c *schema.Collection) *tableSQL {
	if t, ok := db.tables.Load(c); ok {
		return t.(*tableSQL)
	}
	cols, t := columns(c), quote(c.Name)
	var set, vals strings.Builder
	set.WriteString(`"createdAt" = $1, "updatedAt" = $2, version = $3`)
	vals.WriteString("$1, $2, $3, $4")
	for i, f := range c.Fields {
		set.WriteString(", " + quote(f.Name) + " = $" + strconv.Itoa(4+i))
		vals.WriteString(", $" + strconv.Itoa(5+i))
	}
	ts := &tableSQL{
		get:    `SELECT ` + cols + ` FROM ` + t + ` WHERE id = $1`,
		exists: `SELECT 1 FROM ` + t + ` WHERE id = $1`,
		insert: `INSERT INTO ` + t + ` (` + cols + `) VALUES (` + vals.String() + `)`,
		update: `UPDATE ` + t + ` SET ` + set.String() + ` WHERE id = $` + strconv.Itoa(4+len(c.Fields)),
		delete: `DELETE FROM ` + t + ` WHERE id = $1`,
	}
	db.tables.Store(c, ts)
	return ts
}

// bindField turns a normalised field value into the column's Go value.
func bindField(f *schema.Field, v any) any {
	switch v := v.(type) {
	case nil:
		return nil
	case time.Time:
		return formatTime(v)
	case json.RawMessage:
		return string(v)
	case float64:
		if f.Integer {
			return int64(v)
		}
		return v
	}
	return v
}

// hasNUL reports whether any of ss holds the NUL character.
func hasNUL(ss ...string) bool {
	for _, s := range ss {
		if strings.IndexByte(s, 0) >= 0 {
			return true
		}
	}
	return false
}

// checkNUL refuses text that holds the NUL character, which PostgreSQL's
// text type cannot store (SQLite can: the one difference between the
// stores that a client can see, documented in docs/postgres.md).
func checkNUL(c *schema.Collection, r *schema.Record) error {
	var bad map[string]string
	for _, f := range c.Fields {
		s, ok := r.Data[f.Name].(string)
		if !ok {
			if j, isJSON := r.Data[f.Name].(json.RawMessage); isJSON {
				s, ok = string(j), true
			}
		}
		if ok && hasNUL(s) {
			if bad == nil {
				bad = map[string]string{}
			}
			bad[f.Name] = "must not contain the NUL character (\\u0000): PostgreSQL text cannot store it"
		}
	}
	if hasNUL(r.ID) {
		return notFound(c, r.ID)
	}
	if bad == nil {
		return nil
	}
	return &mantle.Error{Code: mantle.Invalid, Reason: "record.validation",
		Message: "a text value contains the NUL character, which PostgreSQL cannot store", Fields: bad}
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

// scanner holds the scan destinations of one row of a collection.
type scanner struct {
	c                    *schema.Collection
	id, created, updated string
	version              int64
	dest                 []any
}

func newScanner(c *schema.Collection) *scanner {
	s := &scanner{c: c, dest: make([]any, 4+len(c.Fields))}
	s.dest[0], s.dest[1], s.dest[2], s.dest[3] = &s.id, &s.created, &s.updated, &s.version
	for i, f := range c.Fields {
		switch {
		case f.Type == schema.Number && f.Integer:
			s.dest[4+i] = new(*int64)
		case f.Type == schema.Number:
			s.dest[4+i] = new(*float64)
		case f.Type == schema.Bool:
			s.dest[4+i] = new(*bool)
		default:
			s.dest[4+i] = new(*string)
		}
	}
	return s
}

// record builds the record of the row last scanned into s.dest.
func (s *scanner) record() *schema.Record {
	r := &schema.Record{ID: s.id, CreatedAt: parseTime(s.created), UpdatedAt: parseTime(s.updated), Version: s.version,
		Data: make(map[string]any, len(s.c.Fields))}
	for i, f := range s.c.Fields {
		switch d := s.dest[4+i].(type) {
		case **int64:
			if *d != nil {
				r.Data[f.Name] = float64(**d)
			}
		case **float64:
			if *d != nil {
				r.Data[f.Name] = **d
			}
		case **bool:
			if *d != nil {
				r.Data[f.Name] = **d
			}
		case **string:
			if *d == nil {
				continue
			}
			switch f.Type {
			case schema.Datetime:
				r.Data[f.Name] = parseTime(**d)
			case schema.JSON:
				r.Data[f.Name] = json.RawMessage(**d)
			default:
				r.Data[f.Name] = **d
			}
		}
	}
	return r
}

// translate turns constraint violations into *mantle.Error.
func translate(c *schema.Collection, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return err
	}
	if strings.HasSuffix(pe.ConstraintName, "_pkey") {
		return sqlkit.RecordExists(c)
	}
	for _, ix := range c.Indexes {
		if ix.Unique && pgName(sqlkit.IndexName(c.Name, ix)) == pe.ConstraintName {
			return sqlkit.UniqueConflict(c, ix.Fields)
		}
	}
	return sqlkit.UniqueConflict(c, nil)
}

// pgName is an identifier as PostgreSQL keeps it: at most 63 bytes.
func pgName(s string) string {
	if len(s) > 63 {
		return s[:63]
	}
	return s
}

func notFound(c *schema.Collection, id string) error { return sqlkit.NotFound(c, id) }
