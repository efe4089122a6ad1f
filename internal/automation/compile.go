// Package automation runs the project's automations: declarative
// trigger → condition → actions flows (docs/automations.md). A trigger is
// record or custom events (a durable consumer of the log, with the same
// guarantees as event-triggered functions), a schedule, or a manual HTTP
// hook; the condition and every action's values are CEL expressions over
// the event, the previous steps' outputs and the hook's input.
package automation

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/mantlehq/mantle/internal/schema"
)

// costLimit bounds one expression's evaluation (CEL cost units).
const costLimit = 100_000

// The variables of automation expressions.
var env = func() *cel.Env {
	e, err := cel.NewEnv(
		cel.Variable("event", cel.DynType),    // the CloudEvent, as GET /api/events has it
		cel.Variable("record", cel.DynType),   // event.data.record, or null
		cel.Variable("previous", cel.DynType), // event.data.previous, or null
		cel.Variable("steps", cel.DynType),    // outputs of the steps before, by name
		cel.Variable("input", cel.DynType),    // a hook's body
		cel.Variable("tick", cel.DynType),     // a schedule's {cron, at, catchUp}
		cel.Variable("now", cel.TimestampType),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserExpressionSizeLimit(4096),
	)
	if err != nil {
		panic(err)
	}
	return e
}()

// program is one compiled expression.
type program struct {
	src, pos string
	prog     cel.Program
}

func compileExpr(e *schema.Expr) (*program, error) {
	if e == nil {
		return nil, nil
	}
	ast, iss := env.Compile(e.Src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s: %v", e.Pos, iss.Err())
	}
	prog, err := env.Program(ast, cel.CostLimit(costLimit))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", e.Pos, err)
	}
	return &program{src: e.Src, pos: e.Pos, prog: prog}, nil
}

// eval evaluates the expression to a JSON-able Go value.
func (p *program) eval(vars map[string]any) (any, error) {
	v, _, err := p.prog.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %v", p.pos, p.src, err)
	}
	out, err := native(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %v", p.pos, p.src, err)
	}
	return out, nil
}

// native turns a CEL value into JSON-able Go values: maps, lists,
// strings, numbers, bools, null; timestamps as RFC 3339 strings.
func native(v ref.Val) (any, error) {
	switch v.Type() {
	case types.NullType:
		return nil, nil
	case types.BoolType, types.StringType, types.DoubleType, types.IntType, types.UintType:
		return v.Value(), nil
	case types.TimestampType:
		return v.Value().(time.Time).UTC().Format(time.RFC3339Nano), nil
	case types.DurationType:
		return v.Value().(time.Duration).String(), nil
	case types.BytesType:
		return v.Value(), nil
	}
	if l, ok := v.(traits.Lister); ok {
		out := []any{}
		for it := l.Iterator(); it.HasNext() == types.True; {
			e, err := native(it.Next())
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	if m, ok := v.(traits.Mapper); ok {
		out := map[string]any{}
		for it := m.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			ks, ok := k.Value().(string)
			if !ok {
				return nil, fmt.Errorf("a map key is %s, not a string", k.Type().TypeName())
			}
			e, err := native(m.Get(k))
			if err != nil {
				return nil, err
			}
			out[ks] = e
		}
		return out, nil
	}
	if v.Type() == types.ErrType {
		return nil, fmt.Errorf("%v", v)
	}
	return v.Value(), nil // Go data that came in decoded from JSON
}

// compiled is an automation with its expressions compiled.
type compiled struct {
	def   schema.Automation
	cond  *program
	steps []compiledStep
}

type compiledStep struct {
	def     schema.Action
	id      *program
	data    map[string]*program
	headers map[string]*program
	body    *program
	subject *program
}

// Check compiles the automations' expressions, as `mantle plan` does. An
// error names the file, line and column of the expression.
func Check(defs []schema.Automation) error {
	_, err := compile(defs)
	return err
}

func compile(defs []schema.Automation) ([]*compiled, error) {
	var out []*compiled
	var errs []error
	for _, d := range defs {
		c := &compiled{def: d}
		var err error
		if c.cond, err = compileExpr(d.If); err != nil {
			errs = append(errs, fmt.Errorf("automation %s if: %w", d.Name, err))
		}
		for _, st := range d.Do {
			cs := compiledStep{def: st, data: map[string]*program{}, headers: map[string]*program{}}
			one := func(e *schema.Expr) *program {
				p, err := compileExpr(e)
				if err != nil {
					errs = append(errs, fmt.Errorf("automation %s step %s: %w", d.Name, st.Name, err))
				}
				return p
			}
			cs.id, cs.body, cs.subject = one(st.ID), one(st.Body), one(st.Subject)
			for _, k := range slices.Sorted(maps.Keys(st.Data)) {
				cs.data[k] = one(st.Data[k])
			}
			for _, k := range slices.Sorted(maps.Keys(st.Headers)) {
				cs.headers[k] = one(st.Headers[k])
			}
			c.steps = append(c.steps, cs)
		}
		out = append(out, c)
	}
	return out, errors.Join(errs...)
}
