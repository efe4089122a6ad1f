package project_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/policy"
	"github.com/mantlehq/mantle/internal/project"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// projectFiles are the project files in the repository that must load
// and validate against the published JSON Schema.
var projectFiles = []string{
	"../../examples/blog/mantle.yaml",
	"../../examples/bench/mantle.yaml",
	"../cli/templates/mantle.yaml",
}

func TestExamplesLoad(t *testing.T) {
	for _, path := range projectFiles {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		s, err := project.Parse(path, data, policy.Check)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if s.Collection(schema.UsersCollection) == nil {
			t.Errorf("%s: no built-in users collection", path)
		}
	}
}

func TestExamplesMatchJSONSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	sch, err := c.Compile("../../schema/mantle.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range projectFiles {
		data, _ := os.ReadFile(path)
		var v any
		if err := yaml.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		// Round-trip through JSON so the validator sees JSON types.
		b, _ := json.Marshal(v)
		inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
		if err := sch.Validate(inst); err != nil {
			t.Errorf("%s does not match schema/mantle.schema.json: %v", path, err)
		}
	}
	// And the schema rejects what the parser rejects.
	bad := map[string]any{"name": "x", "collections": map[string]any{"p": map[string]any{"fields": map[string]any{"a": map[string]any{"type": "txt"}}}}}
	b, _ := json.Marshal(bad)
	inst, _ := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if sch.Validate(inst) == nil {
		t.Error("the JSON Schema accepts an unknown field type")
	}
}

// TestDiagnostics checks the errors of the files in testdata/errors: each
// file lists its expected problems in comments of the form
// "# expect: LINE:COL: substring".
func TestDiagnostics(t *testing.T) {
	files, _ := filepath.Glob("testdata/errors/*.yaml")
	if len(files) == 0 {
		t.Fatal("no diagnostic test files")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, _ := os.ReadFile(path)
			_, err := project.Parse(path, data, policy.Check)
			if err == nil {
				t.Fatal("no error")
			}
			got := err.Error()
			for _, line := range strings.Split(string(data), "\n") {
				want, ok := strings.CutPrefix(strings.TrimSpace(line), "# expect: ")
				if !ok {
					continue
				}
				pos, msg, _ := strings.Cut(want, ": ")
				if !strings.Contains(got, path+":"+pos+": ") || !strings.Contains(got, msg) {
					t.Errorf("want a problem at %s containing %q; got:\n%s", pos, msg, got)
				}
			}
		})
	}
}

func TestUsersExtension(t *testing.T) {
	s, err := project.Parse("m.yaml", []byte(`
name: x
collections:
  users:
    fields:
      nickname: { type: text }
    rules:
      view: "true"
`), policy.Check)
	if err != nil {
		t.Fatal(err)
	}
	u := s.Collection("users")
	if u.Field("email") == nil || u.Field("nickname") == nil || u.Rules["view"] != "true" {
		t.Errorf("users not extended: %+v", u)
	}
}

func FuzzParse(f *testing.F) {
	for _, path := range projectFiles {
		data, _ := os.ReadFile(path)
		f.Add(data)
	}
	files, _ := filepath.Glob("testdata/errors/*.yaml")
	for _, p := range files {
		data, _ := os.ReadFile(p)
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := project.Parse("fuzz.yaml", data, policy.Check)
		if err == nil && s == nil {
			t.Fatal("nil schema without error")
		}
		if err != nil && !strings.Contains(err.Error(), "fuzz.yaml:") {
			t.Fatalf("error without position: %v", err)
		}
	})
}
