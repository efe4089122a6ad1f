package query

import "strings"

// Eval reports whether the record matches e, with the same semantics as the
// SQL that store adapters render.
func Eval(e Expr, get func(name string) any) bool {
	switch e := e.(type) {
	case Const:
		return e.Value
	case And:
		return Eval(e.L, get) && Eval(e.R, get)
	case Or:
		return Eval(e.L, get) || Eval(e.R, get)
	case Cmp:
		v := get(e.Col.Name)
		if v == nil {
			return e.Op == Ne
		}
		c := compare(v, e.Value)
		switch e.Op {
		case Eq:
			return c == 0
		case Ne:
			return c != 0
		case Lt:
			return c < 0
		case Le:
			return c <= 0
		case Gt:
			return c > 0
		case Ge:
			return c >= 0
		}
	case In:
		v := get(e.Col.Name)
		if v == nil {
			return e.Negate
		}
		for _, x := range e.Values {
			if compare(v, x) == 0 {
				return !e.Negate
			}
		}
		return e.Negate
	case Match:
		s, ok := get(e.Col.Name).(string)
		if !ok {
			return e.Negate
		}
		var m bool
		switch e.Kind {
		case Prefix:
			m = strings.HasPrefix(s, e.Value)
		case Suffix:
			m = strings.HasSuffix(s, e.Value)
		case Contains:
			m = strings.Contains(s, e.Value)
		}
		return m != e.Negate
	case Null:
		return (get(e.Col.Name) == nil) == e.IsNull
	}
	return false
}
