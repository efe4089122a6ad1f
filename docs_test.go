package mantle_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryReasonIsDocumented scans the source for the reasons it emits
// and checks that docs/api.md lists each one.
func TestEveryReasonIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	emit := regexp.MustCompile(`(?:Errorf\(mantle\.[A-Za-z]+, |Reason: |FieldError\()"([a-z_]+\.[a-z_]+)"`)
	found := map[string]string{}
	filepath.WalkDir("internal", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		src, _ := os.ReadFile(path)
		for _, m := range emit.FindAllStringSubmatch(string(src), -1) {
			found[m[1]] = path
		}
		return nil
	})
	if len(found) < 20 {
		t.Fatalf("found only %d reasons; is the pattern right?", len(found))
	}
	for reason, path := range found {
		if !strings.Contains(string(doc), "`"+reason+"`") {
			t.Errorf("reason %q (emitted in %s) is not documented in docs/api.md", reason, path)
		}
	}
}
