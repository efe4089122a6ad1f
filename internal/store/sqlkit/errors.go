package sqlkit

import (
	"slices"
	"strings"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

// NotFound is the error of a record that does not exist.
func NotFound(c *schema.Collection, id string) error {
	return mantle.Errorf(mantle.NotFound, "record.not_found", "no record %q in %q", id, c.Name)
}

// RecordExists is the error of an insert whose id is taken.
func RecordExists(c *schema.Collection) error {
	return mantle.Errorf(mantle.Conflict, "record.exists", "a record with this id already exists in %q", c.Name)
}

// UniqueConflict is the error of a write that breaks a unique index over
// fields (none known: "values").
func UniqueConflict(c *schema.Collection, fields []string) error {
	fields = slices.Sorted(slices.Values(fields))
	what := "values"
	if len(fields) > 0 {
		what = strings.Join(fields, ", ")
	}
	e := mantle.Errorf(mantle.Conflict, "record.unique", "another record in %q has the same %s", c.Name, what)
	e.Fields = map[string]string{}
	for _, f := range fields {
		e.Fields[f] = "already taken"
	}
	return e
}

// UniqueIndexConflict is the error of a migration step that adds a unique
// index over values that records already share.
func UniqueIndexConflict(s schema.Step) error {
	return mantle.Errorf(mantle.Conflict, "schema.unique_violation",
		"cannot add unique index on %s(%s): existing records share a value; fix them first",
		s.Collection, strings.Join(s.Index.Fields, ", "))
}

// OrderBy writes a list's ORDER BY keys. Nulls come first going up and
// last going down, as query.Eval and the keyset cursor have it; a column
// that cannot be null (the system columns) gets no NULLS clause, so that
// its plain index (the primary key) serves the order.
func OrderBy(b *strings.Builder, keys []query.SortKey) {
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(Quote(k.Col.Name))
		switch {
		case k.Desc && k.Col.Nullable:
			b.WriteString(" DESC NULLS LAST")
		case k.Desc:
			b.WriteString(" DESC")
		case k.Col.Nullable:
			b.WriteString(" ASC NULLS FIRST")
		}
	}
}
