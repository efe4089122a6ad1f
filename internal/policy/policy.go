// Package policy decides who may do what. Rules are CEL expressions,
// compiled and type-checked when a project is loaded.
//
// This policy (Basic) knows two kinds of rule: "true" opens an
// operation to everyone, and a missing rule admits administrators only.
// Any other expression is compiled and checked now, and until rule
// evaluation lands it also admits administrators only. The Authorizer
// interface is the seam where full evaluation, including the push-down of
// list rules into SQL, plugs in.
package policy

import (
	"fmt"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

// Authorizer decides operations on records. Errors are *mantle.Error:
// unauthenticated for anonymous callers, permission_denied otherwise.
type Authorizer interface {
	// Allow decides a single-record operation. record is the stored
	// record (nil for create), data the incoming fields (nil for view and
	// delete).
	Allow(id mantle.Identity, c *schema.Collection, op string, record *schema.Record, data map[string]any) error
	// ListFilter returns the condition that restricts what id may list in
	// c; the engine ANDs it into the query so that pages, counts and
	// cursors stay right.
	ListFilter(id mantle.Identity, c *schema.Collection) (query.Expr, error)
}

// Basic is the Authorizer of this release: see the package comment.
type Basic struct{}

var _ Authorizer = Basic{}

// Allow implements Authorizer.
func (Basic) Allow(id mantle.Identity, c *schema.Collection, op string, _ *schema.Record, _ map[string]any) error {
	return decide(id, c, op)
}

// ListFilter implements Authorizer.
func (Basic) ListFilter(id mantle.Identity, c *schema.Collection) (query.Expr, error) {
	if err := decide(id, c, schema.OpList); err != nil {
		return nil, err
	}
	return query.Const{Value: true}, nil
}

func decide(id mantle.Identity, c *schema.Collection, op string) error {
	if rule, ok := c.Rule(op); ok && strings.TrimSpace(rule) == "true" {
		return nil
	}
	if id.IsAdmin() {
		return nil
	}
	if id.Anonymous() {
		return mantle.Errorf(mantle.Unauthenticated, "auth.required", "%s on %q needs an administrator; sign in", op, c.Name)
	}
	return mantle.Errorf(mantle.PermissionDenied, "policy.denied", "the %s rule of %q does not allow this", op, c.Name)
}

// ruleEnv declares the variables rules may use (API.md).
var ruleEnv, _ = cel.NewEnv(
	cel.Variable("auth", cel.MapType(cel.StringType, cel.DynType)),
	cel.Variable("record", cel.MapType(cel.StringType, cel.DynType)),
	cel.Variable("data", cel.MapType(cel.StringType, cel.DynType)),
	cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
)

// Check compiles a rule and returns the CEL error, if any. A rule must
// yield a bool. It matches project.RuleChecker.
func Check(c *schema.Collection, op, rule string) error {
	if len(rule) > 4096 {
		return fmt.Errorf("the rule is longer than 4096 characters")
	}
	ast, iss := ruleEnv.Compile(rule)
	if iss != nil && iss.Err() != nil {
		return fmt.Errorf("%s", strings.TrimSpace(iss.Err().Error()))
	}
	if t := ast.OutputType(); t != cel.BoolType && t != cel.DynType {
		return fmt.Errorf("the rule yields %s; it must yield true or false", t)
	}
	return nil
}
