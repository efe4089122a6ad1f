package query

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/parser"
	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/schema"
)

// MaxFilterLength bounds the text of a filter.
const MaxFilterLength = 4096

const hasFunc = "__has__"

// identHas rewrites has(field) into __has__("field"): CEL's own has()
// needs a selection (a.b), while filters name fields directly.
var identHas = parser.NewGlobalMacro(operators.Has, 1,
	func(eh parser.ExprHelper, _ ast.Expr, args []ast.Expr) (ast.Expr, *common.Error) {
		if args[0].Kind() != ast.IdentKind {
			return nil, eh.NewError(args[0].ID(), "has() takes a field name, such as has(title)")
		}
		return eh.NewCall(hasFunc, eh.NewLiteral(types.String(args[0].AsIdent()))), nil
	})

// Compiler compiles filters for one collection. It is safe for concurrent
// use.
type Compiler struct {
	coll *schema.Collection
	env  *cel.Env

	mu    sync.Mutex
	cache map[string]compiled // checked templates; cleared when full
}

type compiled struct {
	ast *ast.AST
	err error
}

// maxParams is how many literals a template may take out of a filter.
const maxParams = 128

// cacheSize bounds the compiled-filter cache of one collection.
const cacheSize = 4096

// NewCompiler returns a compiler for filters over the fields of c.
func NewCompiler(c *schema.Collection) (*Compiler, error) {
	opts := []cel.EnvOption{
		cel.ClearMacros(),
		cel.Macros(identHas),
		cel.ParserRecursionLimit(32),
		cel.ParserExpressionSizeLimit(MaxFilterLength), // code points; the byte limit is checked first
		cel.Function(hasFunc, cel.Overload(hasFunc+"_string", []*cel.Type{cel.StringType}, cel.BoolType)),
	}
	for _, name := range []string{schema.ColID, schema.ColCreatedAt, schema.ColUpdatedAt, schema.ColVersion} {
		opts = append(opts, cel.Variable(name, cel.DynType))
	}
	for _, f := range c.Fields {
		opts = append(opts, cel.Variable(f.Name, cel.DynType))
	}
	for i := 0; i < maxParams; i++ {
		opts = append(opts, cel.Variable("__p"+strconv.Itoa(i), cel.DynType))
	}
	env, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("filter environment for %s: %w", c.Name, err)
	}
	return &Compiler{coll: c, env: env, cache: map[string]compiled{}}, nil
}

func invalidFilter(format string, args ...any) *mantle.Error {
	return mantle.Errorf(mantle.Invalid, "query.invalid_filter", "invalid filter: "+format, args...)
}

// Compile turns a CEL filter into an expression. An empty filter matches
// everything. Errors are *mantle.Error with reason query.invalid_filter.
func (c *Compiler) Compile(src string) (Expr, error) {
	if strings.TrimSpace(src) == "" {
		return Const{true}, nil
	}
	if len(src) > MaxFilterLength {
		return nil, invalidFilter("longer than %d bytes", MaxFilterLength)
	}
	tmpl, params := normalize(src)
	if len(params) > maxParams {
		tmpl, params = src, nil
	}
	if a, err := c.check(tmpl); err == nil {
		if e, err := (&lowering{c, params}).expr(a.Expr()); err == nil {
			return Simplify(e), nil
		} else if params == nil {
			return nil, err
		}
	} else if params == nil {
		return nil, err
	}
	// The template failed: compile the filter as written, for an error
	// that quotes the user's own text.
	return c.compileDirect(src)
}

// compileDirect compiles without templates; tests compare it with Compile.
func (c *Compiler) compileDirect(src string) (Expr, error) {
	if strings.TrimSpace(src) == "" {
		return Const{true}, nil
	}
	a, err := c.check(src)
	if err != nil {
		return nil, err
	}
	e, err := (&lowering{c, nil}).expr(a.Expr())
	if err != nil {
		return nil, err
	}
	return Simplify(e), nil
}

// check parses and type-checks a filter text, from the cache when it can.
func (c *Compiler) check(src string) (*ast.AST, error) {
	c.mu.Lock()
	hit, ok := c.cache[src]
	c.mu.Unlock()
	if ok {
		return hit.ast, hit.err
	}
	var res compiled
	checked, iss := c.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		res.err = invalidFilter("%s", strings.TrimSpace(iss.Err().Error()))
	} else {
		res.ast = checked.NativeRep()
	}
	c.mu.Lock()
	if len(c.cache) >= cacheSize {
		clear(c.cache)
	}
	c.cache[src] = res
	c.mu.Unlock()
	return res.ast, res.err
}

// lowering turns a checked CEL expression into an Expr, with the values of
// a template's parameters.
type lowering struct {
	*Compiler
	params []any
}

// expr compiles a boolean expression.
func (c *lowering) expr(e ast.Expr) (Expr, error) {
	switch e.Kind() {
	case ast.LiteralKind:
		if b, ok := e.AsLiteral().(types.Bool); ok {
			return Const{bool(b)}, nil
		}
		return nil, invalidFilter("a constant that is not true or false is not a condition")
	case ast.IdentKind:
		col, err := c.column(e.AsIdent())
		if err != nil {
			return nil, err
		}
		if col.Type != schema.Bool {
			return nil, invalidFilter("field %q is %s; compare it with a value", col.Name, col.Type)
		}
		return Cmp{Col: col, Op: Eq, Value: true}, nil
	case ast.CallKind:
		return c.call(e.AsCall())
	}
	return nil, invalidFilter("unsupported expression")
}

func (c *lowering) call(call ast.CallExpr) (Expr, error) {
	args := call.Args()
	switch fn := call.FunctionName(); fn {
	case operators.LogicalAnd, operators.LogicalOr:
		l, err := c.expr(args[0])
		if err != nil {
			return nil, err
		}
		r, err := c.expr(args[1])
		if err != nil {
			return nil, err
		}
		if fn == operators.LogicalAnd {
			return And{l, r}, nil
		}
		return Or{l, r}, nil
	case operators.LogicalNot:
		x, err := c.expr(args[0])
		if err != nil {
			return nil, err
		}
		return Negate(x), nil
	case operators.Equals, operators.NotEquals, operators.Less, operators.LessEquals,
		operators.Greater, operators.GreaterEquals:
		return c.comparison(fn, args[0], args[1])
	case operators.In:
		return c.in(args[0], args[1])
	case "startsWith", "endsWith", "contains":
		if !call.IsMemberFunction() || len(args) != 1 {
			return nil, invalidFilter("%s is called as field.%s(\"text\")", fn, fn)
		}
		col, err := c.columnExpr(call.Target())
		if err != nil {
			return nil, err
		}
		if col.Type != schema.Text && col.Type != schema.Select && col.Type != schema.Relation {
			return nil, invalidFilter("%s applies to text fields; %q is %s", fn, col.Name, col.Type)
		}
		v, err := c.constant(args[0], schema.Text)
		if err != nil {
			return nil, err
		}
		kind := map[string]string{"startsWith": Prefix, "endsWith": Suffix, "contains": Contains}[fn]
		return Match{Col: col, Kind: kind, Value: v.(string)}, nil
	case hasFunc:
		name := string(args[0].AsLiteral().(types.String))
		col, err := c.column(name)
		if err != nil {
			return nil, err
		}
		return Null{Col: col, IsNull: false}, nil
	}
	return nil, invalidFilter("%s is not supported in filters", strings.Trim(call.FunctionName(), "_@"))
}

var opOf = map[string]string{
	operators.Equals: Eq, operators.NotEquals: Ne, operators.Less: Lt,
	operators.LessEquals: Le, operators.Greater: Gt, operators.GreaterEquals: Ge,
}

// flipped is the operator with its sides swapped: 5 < x is x > 5.
var flipped = map[string]string{Eq: Eq, Ne: Ne, Lt: Gt, Le: Ge, Gt: Lt, Ge: Le}

func (c *lowering) comparison(fn string, a, b ast.Expr) (Expr, error) {
	op := opOf[fn]
	if c.isConst(a) && !c.isConst(b) {
		a, b, op = b, a, flipped[op]
	}
	col, err := c.columnExpr(a)
	if err != nil {
		return nil, err
	}
	if isNull(b) {
		switch op {
		case Eq:
			return Null{Col: col, IsNull: true}, nil
		case Ne:
			return Null{Col: col, IsNull: false}, nil
		}
		return nil, invalidFilter("null can only be compared with == or !=")
	}
	if col.Type == schema.JSON {
		return nil, invalidFilter("json field %q can only be tested with has() or == null", col.Name)
	}
	if op != Eq && op != Ne && col.Type == schema.Bool {
		return nil, invalidFilter("bool field %q can only be compared with == or !=", col.Name)
	}
	v, err := c.constant(b, col.Type)
	if err != nil {
		return nil, err
	}
	return Cmp{Col: col, Op: op, Value: v}, nil
}

func (c *lowering) in(a, b ast.Expr) (Expr, error) {
	col, err := c.columnExpr(a)
	if err != nil {
		return nil, err
	}
	if b.Kind() != ast.ListKind {
		return nil, invalidFilter("`in` needs a list of values, such as status in [\"a\", \"b\"]")
	}
	if col.Type == schema.JSON || col.Type == schema.Bool {
		return nil, invalidFilter("`in` does not apply to %s field %q", col.Type, col.Name)
	}
	elems := b.AsList().Elements()
	if len(elems) > 100 {
		return nil, invalidFilter("`in` takes at most 100 values")
	}
	if len(elems) == 0 {
		return Const{false}, nil
	}
	vals := make([]any, len(elems))
	for i, el := range elems {
		if vals[i], err = c.constant(el, col.Type); err != nil {
			return nil, err
		}
	}
	return In{Col: col, Values: vals}, nil
}

func isNull(e ast.Expr) bool {
	if e.Kind() != ast.LiteralKind {
		return false
	}
	_, ok := e.AsLiteral().(types.Null)
	return ok
}

func (c *lowering) columnExpr(e ast.Expr) (Column, error) {
	if e.Kind() != ast.IdentKind {
		return Column{}, invalidFilter("one side of each comparison must be a field name and the other a constant")
	}
	return c.column(e.AsIdent())
}

func (c *lowering) column(name string) (Column, error) {
	col, ok := ColumnOf(c.coll, name)
	if !ok {
		return Column{}, invalidFilter("no field %q in collection %q", name, c.coll.Name)
	}
	return col, nil
}

// constant reads a literal (or timestamp("...")) as a value for a column
// of type t.
func (c *lowering) constant(e ast.Expr, t schema.FieldType) (any, error) {
	if v, ok := c.paramOf(e); ok {
		return c.constant(c.literalOf(v), t)
	}
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == operators.Negate && len(e.AsCall().Args()) == 1 {
		v, err := c.constant(e.AsCall().Args()[0], t)
		if f, ok := v.(float64); ok && err == nil && t == schema.Number {
			return -f, nil
		}
		return nil, invalidFilter("only numbers can be negated")
	}
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == "timestamp" {
		args := e.AsCall().Args()
		if t != schema.Datetime || len(args) != 1 {
			return nil, invalidFilter("timestamp(\"...\") compares with datetime fields only")
		}
		arg := args[0]
		if v, ok := c.paramOf(arg); ok {
			arg = c.literalOf(v)
		}
		if arg.Kind() != ast.LiteralKind {
			return nil, invalidFilter("timestamp() takes an RFC 3339 string")
		}
		s, ok := arg.AsLiteral().(types.String)
		if !ok {
			return nil, invalidFilter("timestamp() takes an RFC 3339 string")
		}
		tm, err := time.Parse(time.RFC3339Nano, string(s))
		if err != nil {
			return nil, invalidFilter("timestamp(%q): not an RFC 3339 time", string(s))
		}
		return tm.UTC(), nil
	}
	if e.Kind() != ast.LiteralKind {
		return nil, invalidFilter("one side of each comparison must be a field name and the other a constant")
	}
	lit := e.AsLiteral()
	switch t {
	case schema.Text, schema.Select, schema.Relation:
		if s, ok := lit.(types.String); ok {
			return string(s), nil
		}
	case schema.Number:
		switch n := lit.(type) {
		case types.Int:
			return float64(n), nil
		case types.Uint:
			return float64(n), nil
		case types.Double:
			return float64(n), nil
		}
	case schema.Bool:
		if b, ok := lit.(types.Bool); ok {
			return bool(b), nil
		}
	case schema.Datetime:
		if s, ok := lit.(types.String); ok {
			if tm, err := time.Parse(time.RFC3339Nano, string(s)); err == nil {
				return tm.UTC(), nil
			}
		}
		return nil, invalidFilter("compare datetime fields with timestamp(\"2024-01-01T00:00:00Z\")")
	}
	return nil, invalidFilter("the value %v does not match the field type %s", lit, t)
}

// paramOf returns the value of a template parameter.
func (c *lowering) paramOf(e ast.Expr) (any, bool) {
	if e.Kind() != ast.IdentKind {
		return nil, false
	}
	return param(e.AsIdent(), c.params)
}

// literalOf wraps a parameter value as the literal it replaced.
func (c *lowering) literalOf(v any) ast.Expr {
	switch v := v.(type) {
	case string:
		return literalFactory.NewLiteral(0, types.String(v))
	case float64:
		if v == float64(int64(v)) {
			return literalFactory.NewLiteral(0, types.Int(int64(v)))
		}
		return literalFactory.NewLiteral(0, types.Double(v))
	}
	return literalFactory.NewLiteral(0, types.NullValue)
}

var literalFactory = ast.NewExprFactory()

// isConst reports whether e is a value rather than a field.
func (c *lowering) isConst(e ast.Expr) bool {
	switch e.Kind() {
	case ast.LiteralKind, ast.ListKind:
		return true
	case ast.IdentKind:
		_, ok := c.paramOf(e)
		return ok
	case ast.CallKind:
		fn := e.AsCall().FunctionName()
		return fn == "timestamp" || fn == operators.Negate
	}
	return false
}
