package mantle_test

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/mantlehq/mantle"

// packages lists the module's packages and what each imports (tests
// excluded), from go list.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("skipping: go list cannot run here: %v", err)
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(out)
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, imp := range p.Imports {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				pkgs[name] = append(pkgs[name], strings.TrimPrefix(strings.TrimPrefix(imp, module), "/"))
			}
		}
		if _, ok := pkgs[name]; !ok {
			pkgs[name] = nil
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// TestPackageMap checks the dependency rules of docs/architecture.md
// against what the packages import: dependencies point down the map, only
// the composition root and the one-shot commands reach the store adapters,
// and nothing but the engine (with replay and the stores themselves) holds
// a store transaction, so rows change only through the one write path.
func TestPackageMap(t *testing.T) {
	pkgs := packages(t)
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	vocabulary := []string{"", "internal/schema", "internal/query", "internal/eventlog", "internal/policy", "internal/plan", "internal/store"}
	above := []string{"internal/engine", "internal/auth", "internal/app", "internal/cli", "internal/fn", "internal/automation",
		"internal/consumer", "internal/bus", "internal/feed", "internal/gateway", "internal/replay", "internal/api/"}
	isAbove := func(imp string) bool {
		return slices.ContainsFunc(above, func(a string) bool { return imp == a || strings.HasSuffix(a, "/") && strings.HasPrefix(imp, a) })
	}
	// Imports that break a rule today, each with the change that removes it.
	known := map[string]string{}
	for pkg, imps := range pkgs {
		for _, imp := range imps {
			edge := pkg + " -> " + imp
			if _, ok := known[edge]; ok {
				continue
			}
			switch {
			case slices.Contains(vocabulary, pkg) && isAbove(imp):
				t.Errorf("%s: the shared vocabulary depends on nothing above it", edge)
			case pkg == "internal/engine" && isAbove(imp):
				t.Errorf("%s: the engine depends only on the vocabulary and the storage port", edge)
			case (imp == "internal/store/sqlite" || imp == "internal/store/postgres") && pkg != "internal/app" && pkg != "internal/cli":
				t.Errorf("%s: only the composition root and the one-shot commands open a store adapter", edge)
			case imp == "internal/app" && pkg != "internal/cli" && pkg != "internal/apptest" && pkg != "cmd/mantle":
				t.Errorf("%s: nothing depends on the composition root but the commands and the test server", edge)
			case strings.HasPrefix(pkg, "internal/api/") && strings.HasPrefix(imp, "internal/api/"):
				t.Errorf("%s: transports do not depend on each other", edge)
			}
		}
	}
	// Only the engine, replay, the storage port and its adapters, and the
	// composition root that opens them name a store transaction or a
	// store: everyone else goes through the engine (Write, Transact's
	// SystemTx), so no package but the engine writes rows.
	allowed := regexp.MustCompile(`^internal/(engine|replay|store|app|cli)(/|$)`)
	uses := regexp.MustCompile(`\bstore\.(Tx|Store)\b`)
	filepath.WalkDir("internal", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		if allowed.MatchString(filepath.ToSlash(filepath.Dir(path))) {
			return nil
		}
		src, _ := os.ReadFile(path)
		if loc := uses.FindIndex(src); loc != nil {
			t.Errorf("%s names %s: outside the engine, use Engine.Write or Engine.Transact", path, src[loc[0]:loc[1]])
		}
		return nil
	})
	for edge, why := range known {
		from, to, _ := strings.Cut(edge, " -> ")
		if !slices.Contains(pkgs[from], to) {
			t.Errorf("the known exception %s is gone (%s): remove it from the list", edge, why)
		}
	}
}
