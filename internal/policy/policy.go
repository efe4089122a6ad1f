// Package policy decides who may do what. Rules are CEL expressions over
// the variables of API.md (auth, record, data, request, and a collection's
// fields by bare name), compiled and type-checked when a project is loaded.
//
// One compiled rule serves every path:
//
//   - A rule that only compares record fields with values known from the
//     caller (auth.id, auth.roles, literals, and any expression over them)
//     is lowered to a template of the query model. For a caller, the
//     template is bound into a query.Expr: list rules are ANDed into the
//     SQL WHERE clause (so pages, counts and cursors stay right and no row
//     is read and dropped in Go), and single records are tested with
//     query.Eval, the same semantics as the SQL.
//   - Any other rule (one that reads data, or compares two fields) is
//     evaluated by CEL against the record and the incoming data. A list
//     rule must lower; a rule that does not fails at plan time.
//
// A missing rule admits administrators only; administrators pass every
// rule. A rule that errors when evaluated denies.
package policy

import (
	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

// Set is the compiled rules of one collection. It is safe for concurrent
// use.
type Set struct {
	coll  *schema.Collection
	rules map[string]*Rule // by op; absent: administrators only
}

// Compile compiles the rules of c.
func Compile(c *schema.Collection) (*Set, error) {
	s := &Set{coll: c, rules: map[string]*Rule{}}
	env, err := newEnv(c)
	if err != nil {
		return nil, err
	}
	for op, src := range c.Rules {
		r, err := env.compile(op, src)
		if err != nil {
			return nil, err
		}
		s.rules[op] = r
	}
	return s, nil
}

// DenyAll returns rules that admit administrators only, whatever c says.
func DenyAll(c *schema.Collection) *Set { return &Set{coll: c, rules: map[string]*Rule{}} }

// Check compiles one rule and returns why it is invalid, if it is: a CEL
// error, a rule that does not yield a bool, a list rule that cannot be
// pushed into the database, data in a rule that has none, or record in a
// create rule. It matches project.RuleChecker. With no collection, the
// rule is a caller rule (see CompileCaller).
func Check(c *schema.Collection, op, rule string) error {
	if c == nil {
		_, err := CompileCaller(op, rule)
		return err
	}
	env, err := newEnv(c)
	if err != nil {
		return err
	}
	_, err = env.compile(op, rule)
	return err
}

// Collection returns the collection the rules belong to.
func (s *Set) Collection() *schema.Collection { return s.coll }

// Allow decides a single-record operation. record is the stored record
// (nil for create), data the incoming fields (nil for view and delete).
// With a nil record for view, update or delete it answers only whether
// the caller could pass at all: false only when the rule is missing and
// the caller is not an administrator.
//
// Errors are *mantle.Error: unauthenticated for anonymous callers,
// permission_denied otherwise.
func (s *Set) Allow(id mantle.Identity, op string, record *schema.Record, data map[string]any) error {
	if id.IsAdmin() {
		return nil
	}
	r := s.rules[op]
	if r == nil {
		return s.deny(id, op, true)
	}
	if r.open || (record == nil && op != schema.OpCreate) {
		return nil
	}
	if r.allow(id, op, record, data) {
		return nil
	}
	return s.deny(id, op, false)
}

// CanView reports whether the caller may view the record.
func (s *Set) CanView(id mantle.Identity, record *schema.Record) bool {
	return s.Allow(id, schema.OpView, record, nil) == nil
}

// Open reports whether op's rule admits everyone without looking at the
// record: the rule is "true" (or folds to true).
func (s *Set) Open(op string) bool {
	r := s.rules[op]
	return r != nil && r.open
}

// ListFilter returns the condition that restricts what the caller may
// list: the list rule bound to the caller's identity. The engine ANDs it
// into the query.
func (s *Set) ListFilter(id mantle.Identity) (query.Expr, error) {
	if id.IsAdmin() {
		return query.Const{Value: true}, nil
	}
	r := s.rules[schema.OpList]
	if r == nil {
		return nil, s.deny(id, schema.OpList, true)
	}
	e := r.bind(id, schema.OpList)
	if c, ok := e.(query.Const); ok && !c.Value {
		// Nothing at all is listable for this caller: say so (and ask an
		// anonymous caller to sign in) rather than answer empty pages.
		return nil, s.deny(id, schema.OpList, false)
	}
	return e, nil
}

func (s *Set) deny(id mantle.Identity, op string, missing bool) error {
	if id.Anonymous() {
		if missing {
			return mantle.Errorf(mantle.Unauthenticated, "auth.required", "%s on %q needs an administrator; sign in", op, s.coll.Name)
		}
		return mantle.Errorf(mantle.Unauthenticated, "auth.required", "the %s rule of %q does not admit anonymous callers; sign in", op, s.coll.Name)
	}
	if missing {
		return mantle.Errorf(mantle.PermissionDenied, "policy.denied", "%s on %q is for administrators only", op, s.coll.Name)
	}
	return mantle.Errorf(mantle.PermissionDenied, "policy.denied", "the %s rule of %q does not allow this", op, s.coll.Name)
}

// methodOf is request.method for an op: the method of its REST call.
var methodOf = map[string]string{
	schema.OpList: "GET", schema.OpView: "GET", schema.OpCreate: "POST",
	schema.OpUpdate: "PATCH", schema.OpDelete: "DELETE",
}
