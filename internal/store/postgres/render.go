package postgres

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

// render writes a filter as a parameterised SQL condition ($1, $2, …).
// Values are always bound, never spliced; column names come from the
// schema. Text columns use the "C" collation, so comparisons are by bytes
// as in SQLite and in query.Eval.
type render struct {
	b    strings.Builder
	args []any
}

func (r *render) param(v any) string {
	r.args = append(r.args, v)
	return "$" + strconv.Itoa(len(r.args))
}

// value binds a constant as the column's type: an integer column takes an
// int64 (so its index serves the comparison), a whole number only.
func value(col query.Column, v any) (any, bool) {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().Format(schema.TimeFormat), true
	case float64:
		if col.Integer {
			if v != math.Trunc(v) || math.Abs(v) > 1<<62 {
				return v, false
			}
			return int64(v), true
		}
	}
	return v, true
}

func (r *render) expr(e query.Expr) {
	switch e := e.(type) {
	case query.Const:
		if e.Value {
			r.b.WriteString("TRUE")
		} else {
			r.b.WriteString("FALSE")
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
		if str, ok := e.Value.(string); ok && hasNUL(str) {
			r.nulCmp(e, str)
			return
		}
		col := quote(e.Col.Name)
		v, exact := value(e.Col, e.Value)
		if !exact { // an integer column against a fraction: compare as doubles
			col = col + "::float8"
		}
		op := e.Op
		if op == query.Ne {
			op = "<>"
		}
		if e.Op == query.Ne && e.Col.Nullable {
			p := r.param(v)
			r.b.WriteString("(" + col + " <> " + p + " OR " + quote(e.Col.Name) + " IS NULL)")
		} else {
			r.b.WriteString(col + " " + op + " " + r.param(v))
		}
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
			bv, exact := value(e.Col, v)
			if str, ok := v.(string); !exact || ok && hasNUL(str) {
				bv = nil // no integer equals a fraction; no stored text holds NUL
			}
			r.b.WriteString(r.param(bv))
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

// nulCmp renders a comparison with a text constant that holds NUL, which
// PostgreSQL cannot take as a parameter and no stored text holds (NoNUL
// refuses it on the way in). With p the constant up to its first NUL,
// every storable value v compares with it as with p: v > c ⇔ v > p,
// v < c ⇔ v ≤ p; v = c never holds.
func (r *render) nulCmp(e query.Cmp, c string) {
	col := quote(e.Col.Name)
	p := c[:strings.IndexByte(c, 0)]
	switch e.Op {
	case query.Eq:
		r.b.WriteString("FALSE")
	case query.Ne:
		r.b.WriteString("TRUE")
	case query.Gt, query.Ge:
		r.b.WriteString(col + " > " + r.param(p))
	case query.Lt, query.Le:
		r.b.WriteString(col + " <= " + r.param(p))
	}
}

// match renders prefix, suffix and substring tests without LIKE, whose
// wildcards would change their meaning. A prefix test starts with a range
// condition, so an index on the column serves it.
func (r *render) match(e query.Match) {
	col := quote(e.Col.Name)
	if hasNUL(e.Value) { // no stored text holds NUL
		r.expr(query.Const{Value: e.Negate})
		return
	}
	var cond string
	switch e.Kind {
	case query.Prefix:
		p := r.param(e.Value)
		cond = "(" + col + " >= " + p + " AND starts_with(" + col + ", " + p + "))"
	case query.Suffix:
		if e.Value == "" {
			cond = col + " IS NOT NULL"
		} else {
			cond = "right(" + col + ", " + r.param(utf8.RuneCountInString(e.Value)) + ") = " + r.param(e.Value)
		}
	case query.Contains:
		cond = "strpos(" + col + ", " + r.param(e.Value) + ") > 0"
	}
	if e.Negate {
		r.b.WriteString("(NOT " + cond + " OR " + col + " IS NULL)")
	} else {
		r.b.WriteString(cond)
	}
}
