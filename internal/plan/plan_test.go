package plan_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/mantlehq/mantle/internal/plan"
	"github.com/mantlehq/mantle/internal/policy"
	"github.com/mantlehq/mantle/internal/project"
	"github.com/mantlehq/mantle/internal/schema"
)

var update = flag.Bool("update", false, "rewrite golden files")

func load(t *testing.T, name string) *schema.Schema {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := project.Parse(path, data, policy.Check)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.WriteFile(path, []byte(got), 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs (run with -update after checking):\n--- want\n%s--- got\n%s", name, want, got)
	}
}

func TestPlanGolden(t *testing.T) {
	v1, v2 := load(t, "v1.yaml"), load(t, "v2.yaml")
	golden(t, "empty_to_v1.golden", plan.New(nil, v1).String())
	golden(t, "v1_to_v2.golden", plan.New(v1, v2).String())
	golden(t, "v2_to_v1.golden", plan.New(v2, v1).String())
	if p := plan.New(v1, v1); !p.Empty() {
		t.Errorf("v1 to v1 is not empty: %s", p)
	}
}

func TestSafeSubsetHasNoDestructiveSteps(t *testing.T) {
	v1, v2 := load(t, "v1.yaml"), load(t, "v2.yaml")
	for _, pair := range [][2]*schema.Schema{{v1, v2}, {v2, v1}} {
		safe := schema.Safe(pair[0], pair[1])
		if d := plan.New(pair[0], safe).Destructive(); len(d) > 0 {
			t.Errorf("safe plan has destructive steps: %v", d)
		}
	}
}
