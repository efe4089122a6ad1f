package openapi_test

import (
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/api/openapi"
	"github.com/mantlehq/mantle/internal/policy"
	"github.com/mantlehq/mantle/internal/project"
	"github.com/mantlehq/mantle/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func blogDoc(t *testing.T) []byte {
	t.Helper()
	p, err := project.Load("../../../examples/blog", policy.Check)
	if err != nil {
		t.Fatal(err)
	}
	return openapi.Render(p.Schema)
}

func TestGolden(t *testing.T) {
	got := blogDoc(t)
	path := filepath.Join("testdata", "blog.openapi.json")
	if *update {
		os.WriteFile(path, got, 0o644)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if string(want) != string(got) {
		t.Errorf("OpenAPI document differs from %s; run with -update after checking", path)
	}
}

func TestShape(t *testing.T) {
	var doc struct {
		OpenAPI    string
		Paths      map[string]map[string]any
		Components struct{ Schemas map[string]map[string]any }
	}
	if err := json.Unmarshal(blogDoc(t), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	for _, p := range []string{"/api/collections/posts/records", "/api/collections/posts/records/{id}", "/api/batch", "/api/events", "/api/events/stream"} {
		if doc.Paths[p] == nil {
			t.Errorf("no path %s", p)
		}
	}
	create := doc.Components.Schemas["postsCreate"]
	props := create["properties"].(map[string]any)
	if title := props["title"].(map[string]any); title["maxLength"] != 200.0 || title["type"] != "string" {
		t.Errorf("title schema %v", title)
	}
	if status := props["status"].(map[string]any); !strings.Contains(jsonText(status), `"draft"`) {
		t.Errorf("status schema %v", status)
	}
	if req := create["required"].([]any); len(req) != 1 || req[0] != "title" {
		t.Errorf("required %v", req)
	}
}

func jsonText(v any) string { b, _ := json.Marshal(v); return string(b) }

// TestRedoclyLint lints the document with the real Redocly CLI. It needs
// npx and the npm registry (or a cache); CI requires it.
func TestRedoclyLint(t *testing.T) {
	npx, err := exec.LookPath("npx")
	if err != nil {
		testenv.SkipOrFail(t, "redocly", "npx is not installed")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "openapi.json")
	os.WriteFile(path, blogDoc(t), 0o644)
	cmd := exec.Command(npx, "--yes", "@redocly/cli@2.77.0", "lint", "--format", "stylish", path)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "ENOTFOUND") || strings.Contains(string(out), "EAI_AGAIN") {
			testenv.SkipOrFail(t, "redocly", "the npm registry is not reachable")
		}
		t.Fatalf("redocly lint failed: %v\n%s", err, out)
	}
	t.Logf("redocly lint:\n%s", out)
}
