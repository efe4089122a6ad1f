package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mantlehq/mantle/internal/cli"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestInitPlanApply(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "notes-app")
	if code, _, stderr := run(t, "init", dir); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	if code, _, _ := run(t, "init", dir); code != 1 {
		t.Errorf("init over an existing project: exit %d, want 1", code)
	}
	text, _ := os.ReadFile(filepath.Join(dir, "mantle.yaml"))
	if !strings.Contains(string(text), "name: notes-app") {
		t.Errorf("project name not set:\n%s", text)
	}
	code, out, stderr := run(t, "plan", "--project", dir)
	if code != 0 || !strings.Contains(out, "+ create collection notes") {
		t.Fatalf("plan: %d %q %q", code, out, stderr)
	}
	if code, out, stderr = run(t, "apply", "--project", dir); code != 0 || !strings.Contains(out, "Applied.") {
		t.Fatalf("apply: %d %q %q", code, out, stderr)
	}
	if _, out, _ = run(t, "plan", "--project", dir); !strings.Contains(out, "No changes") {
		t.Errorf("plan after apply: %q", out)
	}

	// Drop a field: destructive, refused without the flag.
	changed := strings.Replace(string(text), "      body:     { type: text }\n", "", 1)
	os.WriteFile(filepath.Join(dir, "mantle.yaml"), []byte(changed), 0o644)
	if _, out, _ = run(t, "plan", "--project", dir); !strings.Contains(out, "! drop field notes.body") {
		t.Errorf("plan: %q", out)
	}
	if code, _, stderr = run(t, "apply", "--project", dir); code != 1 || !strings.Contains(stderr, "--allow-destructive") {
		t.Errorf("destructive apply without flag: %d %q", code, stderr)
	}
	if code, _, stderr = run(t, "apply", "--project", dir, "--allow-destructive"); code != 0 {
		t.Fatalf("apply --allow-destructive: %d %q", code, stderr)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "mantle_data"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	evs, _ := db.Events(context.Background(), store.EventFilter{Limit: 10})
	if len(evs) != 2 || evs[0].Type != "schema.applied" || evs[1].Type != "schema.applied" {
		t.Errorf("events after two applies: %v", evs)
	}
	s, _ := db.Schema(context.Background())
	if s.Collection("notes").Field("body") != nil {
		t.Error("body still in the applied schema")
	}
}

func TestBadProjectFails(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mantle.yaml"), []byte("name: x\ncollections:\n  a:\n    fields:\n      f: { type: nope }\n"), 0o644)
	code, _, stderr := run(t, "plan", "--project", dir)
	if code != 1 || !strings.Contains(stderr, "mantle.yaml:5:") || !strings.Contains(stderr, `unknown type "nope"`) {
		t.Errorf("plan of a bad project: %d %q", code, stderr)
	}
	if code, _, stderr = run(t, "plan", "--project", t.TempDir()); code != 1 || !strings.Contains(stderr, "mantle init") {
		t.Errorf("plan without a project: %d %q", code, stderr)
	}
	if code, _, _ = run(t, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
	if code, _, _ = run(t, "plan", "--nope"); code != 2 {
		t.Errorf("unknown flag: exit %d", code)
	}
}
