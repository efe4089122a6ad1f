package policy

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/mantlehq/mantle"
)

// CallerRule is a rule over the caller alone (auth, and request.method):
// who may call a function's HTTP route. It is safe for concurrent use.
type CallerRule struct {
	what string // "function score", for messages
	src  string
	prog cel.Program
}

// CompileCaller compiles a caller rule. what names its owner in denials.
// An empty src admits administrators only.
func CompileCaller(what, src string) (*CallerRule, error) {
	r := &CallerRule{what: what, src: src}
	if src == "" {
		return r, nil
	}
	if len(src) > MaxRuleLength {
		return nil, fmt.Errorf("the rule is %d characters; at most %d", len(src), MaxRuleLength)
	}
	checked, iss := identityEnv.Compile(src)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s (a caller rule knows auth and request only)", iss.Err())
	}
	if t := checked.OutputType(); t != cel.BoolType && t != cel.DynType {
		return nil, fmt.Errorf("the rule yields %s, not a bool", t)
	}
	prog, err := identityEnv.Program(checked, cel.CostLimit(costLimit))
	if err != nil {
		return nil, err
	}
	r.prog = prog
	return r, nil
}

// Allow says whether id may call: nil, or unauthenticated (anonymous
// callers) or permission_denied. Administrators always may.
func (r *CallerRule) Allow(id mantle.Identity, method string) error {
	if id.IsAdmin() {
		return nil
	}
	if r.prog != nil {
		v, _, err := r.prog.Eval(&caller{id: id, method: method})
		if err == nil && v == types.True {
			return nil
		}
	}
	if id.Anonymous() {
		return mantle.Errorf(mantle.Unauthenticated, "auth.required", "%s does not admit anonymous callers; sign in", r.what)
	}
	if r.prog == nil {
		return mantle.Errorf(mantle.PermissionDenied, "policy.denied", "%s has no allow rule: administrators only", r.what)
	}
	return mantle.Errorf(mantle.PermissionDenied, "policy.denied", "the allow rule of %s does not admit you", r.what)
}
