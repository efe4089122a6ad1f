package cli

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mantlehq/mantle/internal/project"
)

//go:embed templates/mantle.yaml
var projectTemplate string

func initProject(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("init", stderr)
	if err := fs.Parse(args); err != nil {
		return flagErr(err)
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: mantle init DIR")
		return errUsage
	}
	dir := fs.Arg(0)
	path := filepath.Join(dir, project.FileName)
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s already exists; edit it, or choose another folder", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	name := filepath.Base(filepath.Clean(dir))
	if abs, err := filepath.Abs(dir); err == nil {
		name = filepath.Base(abs)
	}
	text := strings.Replace(projectTemplate, "name: PROJECT", "name: "+yamlName(name), 1)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	ignore := filepath.Join(dir, ".gitignore")
	if _, err := os.Stat(ignore); errors.Is(err, os.ErrNotExist) {
		os.WriteFile(ignore, []byte("mantle_data/\n"), 0o644)
	}
	fmt.Fprintf(stdout, "Created %s.\nNext: mantle serve --project %s\n", path, dir)
	return nil
}

// yamlName keeps a folder name safe as a YAML scalar.
func yamlName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "project"
	}
	return b.String()
}
