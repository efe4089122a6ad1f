// Package query is the query model of a list: a filter compiled from CEL
// into a small typed expression tree, sort keys, keyset cursors, field
// selection and expansion. Store adapters render the tree into their own
// SQL; Eval runs the same tree in memory, so both agree on what matches.
package query

import (
	"time"

	"github.com/mantlehq/mantle/internal/schema"
)

// Expr is a node of a compiled filter. Filters are kept in negation normal
// form: there is no Not node; negations are pushed into the leaves.
//
// Null semantics are two-valued and the same in SQL and in memory: an
// ordering comparison or a match against a null value is false; a null
// value is unequal to every non-null value and not in any list.
type Expr interface{ isExpr() }

// Const is a filter that is always true or always false.
type Const struct{ Value bool }

// And is true when both sides are.
type And struct{ L, R Expr }

// Or is true when either side is.
type Or struct{ L, R Expr }

// Column identifies a field or system column and how it is stored.
type Column struct {
	Name     string
	Type     schema.FieldType // system columns: id is Text, times Datetime, version Number
	Integer  bool
	Nullable bool // false for the system columns
}

// Comparison operators.
const (
	Eq = "="
	Ne = "!="
	Lt = "<"
	Le = "<="
	Gt = ">"
	Ge = ">="
)

// Cmp compares a column with a constant: string, float64, bool or
// time.Time. With Op Ne a null column matches.
type Cmp struct {
	Col   Column
	Op    string
	Value any
}

// In is true when the column equals one of the values; with Negate, when it
// equals none of them (a null column then matches).
type In struct {
	Col    Column
	Values []any
	Negate bool
}

// Match kinds.
const (
	Prefix   = "prefix"
	Suffix   = "suffix"
	Contains = "contains"
)

// Match is a text prefix, suffix or substring test, case-sensitive. With
// Negate a null column matches.
type Match struct {
	Col    Column
	Kind   string
	Value  string
	Negate bool
}

// Null is true when the column is null (IsNull) or is not (!IsNull).
type Null struct {
	Col    Column
	IsNull bool
}

func (Const) isExpr() {}
func (And) isExpr()   {}
func (Or) isExpr()    {}
func (Cmp) isExpr()   {}
func (In) isExpr()    {}
func (Match) isExpr() {}
func (Null) isExpr()  {}

var negOp = map[string]string{Eq: Ne, Ne: Eq, Lt: Ge, Ge: Lt, Gt: Le, Le: Gt}

// Negate returns the negation of e in negation normal form.
func Negate(e Expr) Expr {
	switch e := e.(type) {
	case Const:
		return Const{!e.Value}
	case And:
		return Or{Negate(e.L), Negate(e.R)}
	case Or:
		return And{Negate(e.L), Negate(e.R)}
	case Cmp:
		n := Cmp{Col: e.Col, Op: negOp[e.Op], Value: e.Value}
		if e.Op != Eq && e.Op != Ne && e.Col.Nullable {
			return Or{n, Null{Col: e.Col, IsNull: true}}
		}
		return n
	case In:
		return In{Col: e.Col, Values: e.Values, Negate: !e.Negate}
	case Match:
		return Match{Col: e.Col, Kind: e.Kind, Value: e.Value, Negate: !e.Negate}
	case Null:
		return Null{Col: e.Col, IsNull: !e.IsNull}
	}
	panic("query: unknown expression")
}

// Simplify folds constants out of And and Or.
func Simplify(e Expr) Expr {
	switch x := e.(type) {
	case And:
		l, r := Simplify(x.L), Simplify(x.R)
		if c, ok := l.(Const); ok {
			if !c.Value {
				return c
			}
			return r
		}
		if c, ok := r.(Const); ok {
			if !c.Value {
				return c
			}
			return l
		}
		return And{l, r}
	case Or:
		l, r := Simplify(x.L), Simplify(x.R)
		if c, ok := l.(Const); ok {
			if c.Value {
				return c
			}
			return r
		}
		if c, ok := r.(Const); ok {
			if c.Value {
				return c
			}
			return l
		}
		return Or{l, r}
	}
	return e
}

// SystemColumn returns the column of a system field, or false.
func SystemColumn(name string) (Column, bool) {
	switch name {
	case schema.ColID:
		return Column{Name: name, Type: schema.Text}, true
	case schema.ColCreatedAt, schema.ColUpdatedAt:
		return Column{Name: name, Type: schema.Datetime}, true
	case schema.ColVersion:
		return Column{Name: name, Type: schema.Number, Integer: true}, true
	}
	return Column{}, false
}

// ColumnOf returns the column of a field or system column of c.
func ColumnOf(c *schema.Collection, name string) (Column, bool) {
	if col, ok := SystemColumn(name); ok {
		return col, true
	}
	f := c.Field(name)
	if f == nil {
		return Column{}, false
	}
	return Column{Name: name, Type: f.Type, Integer: f.Integer, Nullable: true}, true
}

// Value returns the value of a column in a record, nil when null.
func Value(r *schema.Record, name string) any {
	switch name {
	case schema.ColID:
		return r.ID
	case schema.ColCreatedAt:
		return r.CreatedAt
	case schema.ColUpdatedAt:
		return r.UpdatedAt
	case schema.ColVersion:
		return float64(r.Version)
	}
	return r.Data[name]
}

// compare orders two non-null values of one column type: -1, 0 or 1.
func compare(a, b any) int {
	switch a := a.(type) {
	case string:
		b, _ := b.(string)
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
	case float64:
		b, _ := b.(float64)
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
	case bool:
		b, _ := b.(bool)
		switch {
		case !a && b:
			return -1
		case a && !b:
			return 1
		}
	case time.Time:
		b, _ := b.(time.Time)
		return a.Compare(b)
	}
	return 0
}
