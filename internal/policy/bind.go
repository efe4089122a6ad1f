package policy

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

// maxInValues bounds the list a rule's `in` may bind.
const maxInValues = 1000

// caller is the activation of the parts of a rule known from the caller:
// auth and request.
type caller struct {
	id     mantle.Identity
	method string
	auth   map[string]any
}

func newCaller(id mantle.Identity, op string) *caller {
	return &caller{id: id, method: methodOf[op]}
}

func (c *caller) authMap() map[string]any {
	if c.auth == nil {
		roles := c.id.Roles
		if roles == nil {
			roles = []string{}
		}
		c.auth = map[string]any{"id": c.id.ID, "email": c.id.Email, "roles": roles}
	}
	return c.auth
}

// ResolveName implements interpreter.Activation.
func (c *caller) ResolveName(name string) (any, bool) {
	switch name {
	case varAuth:
		return c.authMap(), true
	case varRequest:
		return map[string]any{"method": c.method}, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (c *caller) Parent() interpreter.Activation { return nil }

var errNoKey = errors.New("no such key")

func (c *caller) eval(v value) (ref.Val, error) {
	switch {
	case v.lit != nil:
		return v.lit, nil
	case v.authKey != "":
		switch v.authKey {
		case "id":
			return types.String(c.id.ID), nil
		case "email":
			return types.String(c.id.Email), nil
		}
		x, ok := c.authMap()[v.authKey]
		if !ok {
			return nil, errNoKey
		}
		return types.DefaultTypeAdapter.NativeToValue(x), nil
	}
	out, _, err := v.prog.Eval(c)
	if err != nil {
		return nil, err
	}
	if types.IsError(out) {
		return nil, errNoKey
	}
	return out, nil
}

// bind turns the rule's template into a condition for the caller. A part
// that fails to evaluate makes the whole rule deny.
func (r *Rule) bind(id mantle.Identity, op string) query.Expr {
	e, err := newCaller(id, op).bind(r.tmpl)
	if err != nil {
		return query.Const{Value: false}
	}
	return query.Simplify(e)
}

func (c *caller) bind(n node) (query.Expr, error) {
	switch n := n.(type) {
	case nValue:
		v, err := c.eval(n.v)
		if err != nil {
			return nil, err
		}
		b, ok := v.(types.Bool)
		if !ok {
			return nil, errors.New("not a condition")
		}
		return query.Const{Value: bool(b)}, nil
	case nAnd:
		l, r, err := c.pair(n.l, n.r)
		return query.And{L: l, R: r}, err
	case nOr:
		l, r, err := c.pair(n.l, n.r)
		return query.Or{L: l, R: r}, err
	case nNot:
		x, err := c.bind(n.x)
		if err != nil {
			return nil, err
		}
		return query.Negate(x), nil
	case nCond:
		cond, err := c.bind(n.c)
		if err != nil {
			return nil, err
		}
		t, f, err := c.pair(n.t, n.f)
		return query.Or{L: query.And{L: cond, R: t}, R: query.And{L: query.Negate(cond), R: f}}, err
	case nCmp:
		v, err := c.eval(n.v)
		if err != nil {
			return nil, err
		}
		if v == types.NullValue {
			switch n.op {
			case query.Eq:
				return query.Null{Col: n.col, IsNull: true}, nil
			case query.Ne:
				return query.Null{Col: n.col, IsNull: false}, nil
			}
			return query.Const{Value: false}, nil
		}
		gv, ok := goValue(v, n.col.Type)
		if !ok {
			// A value of another type equals no field value.
			return query.Const{Value: n.op == query.Ne}, nil
		}
		return query.Cmp{Col: n.col, Op: n.op, Value: gv}, nil
	case nIn:
		v, err := c.eval(n.list)
		if err != nil {
			return nil, err
		}
		l, ok := v.(traits.Lister)
		if !ok {
			return nil, errors.New("in: not a list")
		}
		size, _ := l.Size().(types.Int)
		if size > maxInValues {
			return nil, errors.New("in: list too long")
		}
		var vals []any
		for i := types.Int(0); i < size; i++ {
			if gv, ok := goValue(l.Get(i), n.col.Type); ok {
				vals = append(vals, gv)
			}
		}
		if len(vals) == 0 {
			return query.Const{Value: false}, nil
		}
		return query.In{Col: n.col, Values: vals}, nil
	case nMatch:
		v, err := c.eval(n.v)
		if err != nil {
			return nil, err
		}
		s, ok := v.(types.String)
		if !ok {
			return nil, errors.New("match: not a string")
		}
		return query.Match{Col: n.col, Kind: n.kind, Value: string(s)}, nil
	case nNull:
		return query.Null{Col: n.col, IsNull: n.isNull}, nil
	}
	return nil, errors.New("unknown node")
}

func (c *caller) pair(a, b node) (query.Expr, query.Expr, error) {
	x, err := c.bind(a)
	if err != nil {
		return nil, nil, err
	}
	y, err := c.bind(b)
	return x, y, err
}

// goValue converts a CEL value to the Go value the query model holds for a
// column of type t.
func goValue(v ref.Val, t schema.FieldType) (any, bool) {
	switch t {
	case schema.Text, schema.Select, schema.Relation:
		s, ok := v.(types.String)
		return string(s), ok
	case schema.Number:
		switch n := v.(type) {
		case types.Int:
			return float64(n), true
		case types.Uint:
			return float64(n), true
		case types.Double:
			return float64(n), true
		}
	case schema.Bool:
		b, ok := v.(types.Bool)
		return bool(b), ok
	case schema.Datetime:
		switch x := v.(type) {
		case types.Timestamp:
			return x.Time.UTC(), true
		case types.String:
			if tm, err := time.Parse(time.RFC3339Nano, string(x)); err == nil {
				return tm.UTC(), true
			}
		}
	}
	return nil, false
}

// allow evaluates the rule for one record (nil for create) and the
// incoming data.
func (r *Rule) allow(id mantle.Identity, op string, rec *schema.Record, data map[string]any) bool {
	if r.tmpl != nil {
		e := r.bind(id, op)
		return query.Eval(e, func(name string) any {
			if rec == nil {
				return nil
			}
			return query.Value(rec, name)
		})
	}
	act := &recordActivation{caller: newCaller(id, op), rec: rec, data: data}
	out, _, err := r.prog.Eval(act)
	return err == nil && out == types.True
}

// recordActivation adds the record, the data and the bare field names to
// a caller's activation, for rules evaluated by CEL.
type recordActivation struct {
	*caller
	rec    *schema.Record
	data   map[string]any
	recMap map[string]any
}

// ResolveName implements interpreter.Activation.
func (a *recordActivation) ResolveName(name string) (any, bool) {
	switch name {
	case varAuth, varRequest:
		return a.caller.ResolveName(name)
	case varRecord:
		return a.record(), true
	case varData:
		m := make(map[string]any, len(a.data))
		for k, v := range a.data {
			m[k] = celValue(v)
		}
		return m, true
	}
	if v, ok := a.record()[name]; ok {
		return v, true
	}
	return nil, true // a field that is null
}

func (a *recordActivation) record() map[string]any {
	if a.recMap == nil {
		a.recMap = map[string]any{}
		if r := a.rec; r != nil {
			a.recMap[schema.ColID] = r.ID
			a.recMap[schema.ColCreatedAt] = r.CreatedAt
			a.recMap[schema.ColUpdatedAt] = r.UpdatedAt
			a.recMap[schema.ColVersion] = r.Version
			for k, v := range r.Data {
				if v != nil {
					a.recMap[k] = celValue(v)
				}
			}
		}
	}
	return a.recMap
}

// celValue decodes json fields so that rules can look inside them.
func celValue(v any) any {
	if raw, ok := v.(json.RawMessage); ok {
		var x any
		if json.Unmarshal(raw, &x) == nil {
			return x
		}
		return nil
	}
	return v
}
