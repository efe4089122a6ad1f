package sqlite

import (
	"strings"
	"unicode/utf8"

	"github.com/mantlehq/mantle/internal/query"
)

// render writes a filter as a parameterised SQL condition. Values are
// always bound, never spliced; column names come from the schema.
type render struct {
	b    strings.Builder
	args []any
}

func (r *render) expr(e query.Expr) {
	switch e := e.(type) {
	case query.Const:
		if e.Value {
			r.b.WriteString("1")
		} else {
			r.b.WriteString("0")
		}
	case query.And:
		r.b.WriteString("(")
		r.expr(e.L)
		r.b.WriteString(" AND ")
		r.expr(e.R)
		r.b.WriteString(")")
	case query.Or:
		r.b.WriteString("(")
		r.expr(e.L)
		r.b.WriteString(" OR ")
		r.expr(e.R)
		r.b.WriteString(")")
	case query.Cmp:
		col := quote(e.Col.Name)
		if e.Op == query.Ne && e.Col.Nullable {
			r.b.WriteString("(" + col + " != ? OR " + col + " IS NULL)")
		} else {
			r.b.WriteString(col + " " + e.Op + " ?")
		}
		r.args = append(r.args, bind(e.Value))
	case query.In:
		col := quote(e.Col.Name)
		if e.Negate {
			r.b.WriteString("(" + col + " NOT IN (")
		} else {
			r.b.WriteString(col + " IN (")
		}
		for i, v := range e.Values {
			if i > 0 {
				r.b.WriteString(", ")
			}
			r.b.WriteString("?")
			r.args = append(r.args, bind(v))
		}
		r.b.WriteString(")")
		if e.Negate {
			r.b.WriteString(" OR " + col + " IS NULL)")
		}
	case query.Match:
		r.match(e)
	case query.Null:
		if e.IsNull {
			r.b.WriteString(quote(e.Col.Name) + " IS NULL")
		} else {
			r.b.WriteString(quote(e.Col.Name) + " IS NOT NULL")
		}
	}
}

// match renders prefix, suffix and substring tests without LIKE, whose
// case folding and wildcards would change their meaning. A prefix test is
// a range, so an index on the column serves it.
func (r *render) match(e query.Match) {
	col := quote(e.Col.Name)
	var cond string
	switch e.Kind {
	case query.Prefix:
		cond = "(" + col + " >= ? AND " + col + " < ?)"
		r.args = append(r.args, e.Value, e.Value+"\xff")
	case query.Suffix:
		cond = "substr(" + col + ", ?) = ?"
		r.args = append(r.args, -utf8.RuneCountInString(e.Value), e.Value)
		if e.Value == "" {
			cond = col + " IS NOT NULL"
			r.args = r.args[:len(r.args)-2]
		}
	case query.Contains:
		cond = "instr(" + col + ", ?) > 0"
		r.args = append(r.args, e.Value)
	}
	if e.Negate {
		r.b.WriteString("(NOT " + cond + " OR " + col + " IS NULL)")
	} else {
		r.b.WriteString(cond)
	}
}
