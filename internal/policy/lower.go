package policy

import (
	"errors"
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/parser"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

// node is a rule lowered to a template of the query model: the shape of
// the condition is fixed at compile time, and the values it compares
// fields with are computed from the caller when it is bound.
type node interface{ isNode() }

type (
	// nValue is a condition known from the caller alone.
	nValue struct{ v value }
	nAnd   struct{ l, r node }
	nOr    struct{ l, r node }
	nNot   struct{ x node }
	// nCond is c ? t : f.
	nCond struct{ c, t, f node }
	nCmp  struct {
		col query.Column
		op  string
		v   value
	}
	nIn struct {
		col  query.Column
		list value
	}
	nMatch struct {
		col  query.Column
		kind string
		v    value
	}
	nNull struct {
		col    query.Column
		isNull bool
	}
)

func (nValue) isNode() {}
func (nAnd) isNode()   {}
func (nOr) isNode()    {}
func (nNot) isNode()   {}
func (nCond) isNode()  {}
func (nCmp) isNode()   {}
func (nIn) isNode()    {}
func (nMatch) isNode() {}
func (nNull) isNode()  {}

// value is an expression over the caller: a literal, auth.<key>, or a
// compiled program.
type value struct {
	lit     ref.Val
	authKey string
	prog    cel.Program
}

func isTrue(n node) bool {
	v, ok := n.(nValue)
	return ok && v.v.lit == types.True
}

// lowerer turns a checked rule into a node.
type lowerer struct {
	env  *env
	info *ast.SourceInfo
}

var errNotCondition = errors.New("compare record fields with values known from the caller, such as record.owner == auth.id")

func (l *lowerer) lower(e ast.Expr) (node, error) {
	if v, ok, err := l.callerValue(e); err != nil {
		return nil, err
	} else if ok {
		return nValue{v}, nil
	}
	switch e.Kind() {
	case ast.IdentKind, ast.SelectKind:
		if e.Kind() == ast.SelectKind && e.AsSelect().IsTestOnly() {
			col, err := l.column(e.AsSelect().Operand(), e.AsSelect().FieldName())
			if err != nil {
				return nil, err
			}
			return nNull{col: col}, nil
		}
		col, ok := l.columnOf(e)
		if !ok {
			return nil, errNotCondition
		}
		if col.Type != schema.Bool {
			return nil, fmt.Errorf("field %q is %s; compare it with a value", col.Name, col.Type)
		}
		return nCmp{col: col, op: query.Eq, v: value{lit: types.True}}, nil
	case ast.CallKind:
		return l.call(e.AsCall())
	}
	return nil, errNotCondition
}

func (l *lowerer) call(c ast.CallExpr) (node, error) {
	args := c.Args()
	two := func() (node, node, error) {
		a, err := l.lower(args[0])
		if err != nil {
			return nil, nil, err
		}
		b, err := l.lower(args[1])
		return a, b, err
	}
	switch fn := c.FunctionName(); fn {
	case operators.LogicalAnd:
		a, b, err := two()
		return nAnd{a, b}, err
	case operators.LogicalOr:
		a, b, err := two()
		return nOr{a, b}, err
	case operators.LogicalNot:
		x, err := l.lower(args[0])
		return nNot{x}, err
	case operators.Conditional:
		cond, err := l.lower(args[0])
		if err != nil {
			return nil, err
		}
		t, f, err := l.pair(args[1], args[2])
		return nCond{cond, t, f}, err
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals,
		operators.Greater, operators.GreaterEquals:
		return l.comparison(fn, args[0], args[1])
	case operators.In:
		col, ok := l.columnOf(args[0])
		if !ok {
			return nil, fmt.Errorf("`in` needs a record field on its left, such as record.status in [\"a\", \"b\"]")
		}
		list, ok, err := l.callerValue(args[1])
		if err != nil || !ok {
			return nil, errOr(err, errNotCondition)
		}
		if col.Type == schema.JSON || col.Type == schema.Bool {
			return nil, fmt.Errorf("`in` does not apply to %s field %q", col.Type, col.Name)
		}
		return nIn{col: col, list: list}, nil
	case "startsWith", "endsWith", "contains":
		if !c.IsMemberFunction() || len(args) != 1 {
			return nil, errNotCondition
		}
		col, ok := l.columnOf(c.Target())
		if !ok {
			return nil, errNotCondition
		}
		if col.Type != schema.Text && col.Type != schema.Select && col.Type != schema.Relation {
			return nil, fmt.Errorf("%s applies to text fields; %q is %s", fn, col.Name, col.Type)
		}
		v, ok, err := l.callerValue(args[0])
		if err != nil || !ok {
			return nil, errOr(err, errNotCondition)
		}
		kind := map[string]string{"startsWith": query.Prefix, "endsWith": query.Suffix, "contains": query.Contains}[fn]
		return nMatch{col: col, kind: kind, v: v}, nil
	}
	return nil, errNotCondition
}

func (l *lowerer) pair(a, b ast.Expr) (node, node, error) {
	x, err := l.lower(a)
	if err != nil {
		return nil, nil, err
	}
	y, err := l.lower(b)
	return x, y, err
}

func errOr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}

var opOf = map[string]string{
	operators.Equals: query.Eq, operators.NotEquals: query.Ne, operators.Less: query.Lt,
	operators.LessEquals: query.Le, operators.Greater: query.Gt, operators.GreaterEquals: query.Ge,
}

var flipped = map[string]string{query.Eq: query.Eq, query.Ne: query.Ne, query.Lt: query.Gt,
	query.Le: query.Ge, query.Gt: query.Lt, query.Ge: query.Le}

func (l *lowerer) comparison(fn string, a, b ast.Expr) (node, error) {
	op := opOf[fn]
	col, ok := l.columnOf(a)
	if !ok {
		col, ok = l.columnOf(b)
		a, b, op = b, a, flipped[op]
	}
	if !ok {
		return nil, errNotCondition
	}
	v, ok, err := l.callerValue(b)
	if err != nil || !ok {
		return nil, errOr(err, errNotCondition)
	}
	if col.Type == schema.JSON {
		return nil, fmt.Errorf("json field %q can only be tested with has()", col.Name)
	}
	if op != query.Eq && op != query.Ne && col.Type == schema.Bool {
		return nil, fmt.Errorf("bool field %q can only be compared with == or !=", col.Name)
	}
	return nCmp{col: col, op: op, v: v}, nil
}

// columnOf reads e as a field of the record: record.f, or f named bare.
func (l *lowerer) columnOf(e ast.Expr) (query.Column, bool) {
	switch e.Kind() {
	case ast.IdentKind:
		if !l.env.bare[e.AsIdent()] {
			return query.Column{}, false
		}
		return query.ColumnOf(l.env.coll, e.AsIdent())
	case ast.SelectKind:
		s := e.AsSelect()
		if s.IsTestOnly() {
			return query.Column{}, false
		}
		col, err := l.column(s.Operand(), s.FieldName())
		return col, err == nil
	}
	return query.Column{}, false
}

func (l *lowerer) column(operand ast.Expr, field string) (query.Column, error) {
	if operand.Kind() != ast.IdentKind || operand.AsIdent() != varRecord {
		return query.Column{}, errNotCondition
	}
	col, ok := query.ColumnOf(l.env.coll, field)
	if !ok {
		return query.Column{}, fmt.Errorf("no field %q in collection %q", field, l.env.coll.Name)
	}
	return col, nil
}

// callerValue reports whether e depends on the caller only, and compiles
// it to a value when it does.
func (l *lowerer) callerValue(e ast.Expr) (value, bool, error) {
	u := usage{}
	if err := l.env.uses(e, map[string]bool{}, u); err != nil {
		return value{}, false, err
	}
	if u[varRecord] || u[varData] {
		return value{}, false, nil
	}
	switch e.Kind() {
	case ast.LiteralKind:
		return value{lit: e.AsLiteral()}, true, nil
	case ast.SelectKind:
		s := e.AsSelect()
		if op := s.Operand(); !s.IsTestOnly() && op.Kind() == ast.IdentKind && op.AsIdent() == varAuth {
			return value{authKey: s.FieldName()}, true, nil
		}
	}
	src, err := parser.Unparse(e, l.info)
	if err != nil {
		return value{}, false, err
	}
	checked, iss := identityEnv.Compile(src)
	if iss != nil && iss.Err() != nil {
		return value{}, false, nil
	}
	prog, err := identityEnv.Program(checked, cel.CostLimit(costLimit))
	if err != nil {
		return value{}, false, err
	}
	return value{prog: prog}, true, nil
}
