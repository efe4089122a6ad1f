// Package plan compares the project files with the applied schema and
// renders the migration steps between them.
package plan

import (
	"fmt"
	"strings"

	"github.com/mantlehq/mantle/internal/schema"
)

// Plan is the set of steps from the applied schema to the desired one.
type Plan struct {
	From, To *schema.Schema
	Steps    []schema.Step
}

// New computes the plan from the applied schema (nil when none) to the
// desired one.
func New(from, to *schema.Schema) *Plan {
	return &Plan{From: from, To: to, Steps: schema.Diff(from, to)}
}

// Destructive returns the steps that lose data.
func (p *Plan) Destructive() []schema.Step {
	var out []schema.Step
	for _, s := range p.Steps {
		if s.Destructive {
			out = append(out, s)
		}
	}
	return out
}

// Empty reports whether there is nothing to do.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// String renders the plan as `mantle plan` prints it.
func (p *Plan) String() string {
	if p.Empty() {
		return "No changes: the database matches the project files.\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d step(s):\n", len(p.Steps))
	for _, s := range p.Steps {
		b.WriteString("  " + s.String() + "\n")
	}
	if d := len(p.Destructive()); d > 0 {
		fmt.Fprintf(&b, "\n%d destructive step(s) lose data; run `mantle apply --allow-destructive` to run them.\n", d)
	}
	return b.String()
}

// StepStrings returns the steps as lines, for the schema.applied event.
func (p *Plan) StepStrings() []string {
	out := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		out[i] = s.String()
	}
	return out
}
