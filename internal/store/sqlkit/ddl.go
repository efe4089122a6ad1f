package sqlkit

import (
	"strings"

	"github.com/mantlehq/mantle/internal/schema"
)

// Quote quotes an identifier.
func Quote(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

// IndexName is the name of a collection's index in the database.
func IndexName(c string, ix schema.Index) string {
	prefix := "idx_"
	if ix.Unique {
		prefix = "uq_"
	}
	return prefix + c + "_" + strings.Join(ix.Fields, "_")
}

// Dialect is what a database's DDL adds to the shared form.
type Dialect struct {
	// ColumnType is the column type that stores a field.
	ColumnType func(*schema.Field) string
	// System is the system columns' definitions, after "CREATE TABLE t (".
	System string
	// TableOptions follow the table's closing parenthesis.
	TableOptions string
	// IndexColumns returns the quoted column list of an index; nil: the
	// fields as they are.
	IndexColumns func(schema.Index) []string
}

// CreateTableSQL returns the statement that creates a collection's table.
func (d Dialect) CreateTableSQL(c *schema.Collection) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE " + Quote(c.Name) + " (\n\t" + d.System)
	for _, f := range c.Fields {
		b.WriteString(",\n\t" + Quote(f.Name) + " " + d.ColumnType(f))
	}
	b.WriteString("\n)" + d.TableOptions)
	return b.String()
}

// StepSQL returns the statements that carry out one migration step.
func (d Dialect) StepSQL(to *schema.Schema, s schema.Step) []string {
	t := Quote(s.Collection)
	switch s.Kind {
	case schema.DropIndex:
		return []string{"DROP INDEX IF EXISTS " + Quote(IndexName(s.Collection, s.Index))}
	case schema.DropField:
		return []string{"ALTER TABLE " + t + " DROP COLUMN " + Quote(s.Field.Name)}
	case schema.DropCollection:
		return []string{"DROP TABLE " + t}
	case schema.CreateCollection:
		return []string{d.CreateTableSQL(to.Collection(s.Collection))}
	case schema.AddField:
		return []string{"ALTER TABLE " + t + " ADD COLUMN " + Quote(s.Field.Name) + " " + d.ColumnType(s.Field)}
	case schema.AlterField:
		if !s.Destructive {
			return nil // only validation changed
		}
		return []string{
			"ALTER TABLE " + t + " DROP COLUMN " + Quote(s.Field.Name),
			"ALTER TABLE " + t + " ADD COLUMN " + Quote(s.Field.Name) + " " + d.ColumnType(s.Field),
		}
	case schema.CreateIndex:
		var cols []string
		if d.IndexColumns != nil {
			cols = d.IndexColumns(s.Index)
		} else {
			for _, f := range s.Index.Fields {
				cols = append(cols, Quote(f))
			}
		}
		u := ""
		if s.Index.Unique {
			u = "UNIQUE "
		}
		return []string{"CREATE " + u + "INDEX " + Quote(IndexName(s.Collection, s.Index)) + " ON " + t + " (" + strings.Join(cols, ", ") + ")"}
	}
	return nil
}
