package sqlite

import (
	"strconv"

	"github.com/mantlehq/mantle/internal/schema"
	sqlite3 "github.com/ncruces/go-sqlite3"
)

// appendRow writes the current row of a collection's SELECT as the JSON
// that schema.Collection.AppendJSON writes for the same record, straight
// from SQLite's column values: a list page skips building records. Times
// are stored in schema.TimeFormat, so their text is copied as it is.
func appendRow(b []byte, c *schema.Collection, s *sqlite3.Stmt, only map[string]bool) []byte {
	b = append(b, `{"id":`...)
	b = schema.AppendString(b, s.ColumnText(0))
	if only == nil || only[schema.ColCreatedAt] {
		b = append(b, `,"createdAt":`...)
		b = appendTimeText(b, s.ColumnRawText(1))
	}
	if only == nil || only[schema.ColUpdatedAt] {
		b = append(b, `,"updatedAt":`...)
		b = appendTimeText(b, s.ColumnRawText(2))
	}
	if only == nil || only[schema.ColVersion] {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, s.ColumnInt64(3), 10)
	}
	for i, f := range c.Fields {
		if only != nil && !only[f.Name] {
			continue
		}
		col := 4 + i
		b = append(b, ',', '"')
		b = append(b, f.Name...)
		b = append(b, '"', ':')
		if s.ColumnType(col) == sqlite3.NULL {
			b = append(b, "null"...)
			continue
		}
		switch f.Type {
		case schema.Number:
			b = schema.AppendNumber(b, s.ColumnFloat(col))
		case schema.Bool:
			b = strconv.AppendBool(b, s.ColumnInt64(col) != 0)
		case schema.Datetime:
			b = appendTimeText(b, s.ColumnRawText(col))
		case schema.JSON:
			b = append(b, s.ColumnRawText(col)...)
		default:
			b = schema.AppendString(b, s.ColumnText(col))
		}
	}
	return append(b, '}')
}

// appendTimeText writes a stored time; text in another layout (written by
// an older version) is parsed and re-written.
func appendTimeText(b, raw []byte) []byte {
	if len(raw) == len(schema.TimeFormat) && raw[len(raw)-1] == 'Z' && raw[19] == '.' {
		b = append(b, '"')
		b = append(b, raw...)
		return append(b, '"')
	}
	return schema.AppendValue(b, parseTime(string(raw)))
}
