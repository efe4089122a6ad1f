package policy

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/parser"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

// MaxRuleLength bounds the text of a rule.
const MaxRuleLength = 4096

// costLimit bounds the work of one evaluation (CEL's runtime cost units),
// so that no rule, comprehensions included, can stall a request.
const costLimit = 100_000

// The rule variables of API.md.
const (
	varAuth    = "auth"
	varRecord  = "record"
	varData    = "data"
	varRequest = "request"
)

// Rule is one compiled rule.
type Rule struct {
	op   string
	src  string
	prog cel.Program // the whole rule, for records when tmpl is nil
	tmpl node        // the rule as a query template, when it lowers
	open bool        // the rule is constantly true
}

// ruleHas is has() for rules: has(record.f) and has(data.f) as in CEL,
// and has(f) for a field named bare, meaning has(record.f).
var ruleHas = parser.NewGlobalMacro(operators.Has, 1,
	func(eh parser.ExprHelper, _ ast.Expr, args []ast.Expr) (ast.Expr, *common.Error) {
		switch a := args[0]; a.Kind() {
		case ast.IdentKind:
			return eh.NewPresenceTest(eh.NewIdent(varRecord), a.AsIdent()), nil
		case ast.SelectKind:
			return eh.NewPresenceTest(a.AsSelect().Operand(), a.AsSelect().FieldName()), nil
		}
		return nil, eh.NewError(args[0].ID(), "has() takes a field, such as has(record.title) or has(data.title)")
	})

func baseOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.ClearMacros(),
		cel.Macros(ruleHas, parser.AllMacro, parser.ExistsMacro, parser.ExistsOneMacro,
			parser.MapMacro, parser.MapFilterMacro, parser.FilterMacro),
		cel.ParserRecursionLimit(48),
		cel.ParserExpressionSizeLimit(MaxRuleLength),
		cel.CrossTypeNumericComparisons(true),
		cel.EnableMacroCallTracking(),
		cel.Variable(varAuth, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varRequest, cel.MapType(cel.StringType, cel.DynType)),
	}
}

// identityEnv knows only what is known before a record is read: the caller
// and the request. A part of a rule that compiles here is a value bound
// per caller.
var identityEnv = func() *cel.Env {
	env, err := cel.NewEnv(baseOptions()...)
	if err != nil {
		panic(err)
	}
	return env
}()

// env compiles the rules of one collection.
type env struct {
	coll *schema.Collection
	full *cel.Env
	bare map[string]bool // fields a rule may name without record.
}

func isRuleVar(name string) bool {
	switch name {
	case varAuth, varRecord, varData, varRequest:
		return true
	}
	return false
}

func newEnv(c *schema.Collection) (*env, error) {
	e := &env{coll: c, bare: map[string]bool{}}
	opts := append(baseOptions(),
		cel.Variable(varRecord, cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable(varData, cel.MapType(cel.StringType, cel.DynType)))
	names := []string{schema.ColID, schema.ColCreatedAt, schema.ColUpdatedAt, schema.ColVersion}
	for _, f := range c.Fields {
		names = append(names, f.Name)
	}
	for _, n := range names {
		if isRuleVar(n) {
			continue // the variable wins; the field is record.<name>
		}
		e.bare[n] = true
		opts = append(opts, cel.Variable(n, cel.DynType))
	}
	full, err := cel.NewEnv(opts...)
	if err != nil {
		return nil, fmt.Errorf("rule environment for %s: %w", c.Name, err)
	}
	e.full = full
	return e, nil
}

// compile compiles and checks one rule of op.
func (e *env) compile(op, src string) (*Rule, error) {
	if len(src) > MaxRuleLength {
		return nil, fmt.Errorf("the rule is longer than %d characters", MaxRuleLength)
	}
	checked, iss := e.full.Compile(src)
	if iss != nil && iss.Err() != nil {
		return nil, fmt.Errorf("%s", strings.TrimSpace(iss.Err().Error()))
	}
	if t := checked.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("the rule yields %s; it must yield true or false", t)
	}
	a := checked.NativeRep()
	u := usage{}
	if err := e.uses(a.Expr(), map[string]bool{}, u); err != nil {
		return nil, err
	}
	switch {
	case u[varData] && op != schema.OpCreate && op != schema.OpUpdate:
		return nil, fmt.Errorf("data is the incoming fields of a create or update; a %s rule has none (use record.<field>)", op)
	case u[varRecord] && op == schema.OpCreate:
		return nil, fmt.Errorf("a create rule has no stored record; check the incoming fields with data.<field>")
	}
	prog, err := e.full.Program(checked, cel.CostLimit(costLimit))
	if err != nil {
		return nil, err
	}
	r := &Rule{op: op, src: src, prog: prog}
	if !u[varData] {
		t, err := (&lowerer{env: e, info: a.SourceInfo()}).lower(a.Expr())
		if err != nil && op == schema.OpList {
			return nil, fmt.Errorf("a list rule must become a database condition: %v", err)
		}
		if err == nil {
			r.tmpl = t
			r.open = isTrue(t)
		}
	}
	return r, nil
}

// usage records which rule variables an expression reads.
type usage map[string]bool

// uses walks e, noting the variables it reads, and rejects record.<x> and
// data.<x> where x is not a field: a typo there would silently deny.
func (e *env) uses(x ast.Expr, bound map[string]bool, u usage) error {
	switch x.Kind() {
	case ast.IdentKind:
		name := x.AsIdent()
		if bound[name] {
			return nil
		}
		if e.bare[name] {
			u[varRecord] = true
		} else {
			u[name] = true
		}
	case ast.SelectKind:
		s := x.AsSelect()
		if op := s.Operand(); op.Kind() == ast.IdentKind && !bound[op.AsIdent()] {
			switch op.AsIdent() {
			case varRecord:
				if _, ok := query.ColumnOf(e.coll, s.FieldName()); !ok {
					return fmt.Errorf("record.%s: no field %q in collection %q", s.FieldName(), s.FieldName(), e.coll.Name)
				}
			case varData:
				if e.coll.Field(s.FieldName()) == nil {
					return fmt.Errorf("data.%s: no field %q in collection %q", s.FieldName(), s.FieldName(), e.coll.Name)
				}
			}
		}
		return e.uses(s.Operand(), bound, u)
	case ast.CallKind:
		c := x.AsCall()
		if c.IsMemberFunction() {
			if err := e.uses(c.Target(), bound, u); err != nil {
				return err
			}
		}
		for _, a := range c.Args() {
			if err := e.uses(a, bound, u); err != nil {
				return err
			}
		}
	case ast.ListKind:
		for _, el := range x.AsList().Elements() {
			if err := e.uses(el, bound, u); err != nil {
				return err
			}
		}
	case ast.MapKind:
		for _, ent := range x.AsMap().Entries() {
			me := ent.AsMapEntry()
			if err := e.uses(me.Key(), bound, u); err != nil {
				return err
			}
			if err := e.uses(me.Value(), bound, u); err != nil {
				return err
			}
		}
	case ast.ComprehensionKind:
		c := x.AsComprehension()
		if err := e.uses(c.IterRange(), bound, u); err != nil {
			return err
		}
		if err := e.uses(c.AccuInit(), bound, u); err != nil {
			return err
		}
		inner := map[string]bool{c.IterVar(): true, c.AccuVar(): true}
		if c.HasIterVar2() {
			inner[c.IterVar2()] = true
		}
		for k := range bound {
			inner[k] = true
		}
		for _, part := range []ast.Expr{c.LoopCondition(), c.LoopStep(), c.Result()} {
			if err := e.uses(part, inner, u); err != nil {
				return err
			}
		}
	}
	return nil
}
