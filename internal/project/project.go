// Package project reads a project folder's mantle.yaml into an immutable,
// validated schema model. Every error names the file, line and column and
// says what to do.
package project

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mantlehq/mantle/internal/schema"
	"gopkg.in/yaml.v3"
)

// FileName is the project file inside a project folder.
const FileName = "mantle.yaml"

// MaxFileSize bounds the project file; larger files are refused.
const MaxFileSize = 4 << 20

// Project is a loaded project.
type Project struct {
	Dir    string
	Schema *schema.Schema
	// OIDC lists the OpenID Connect providers of the auth section.
	OIDC []schema.OIDCProvider
	// Webhooks lists the webhooks section.
	Webhooks []schema.Webhook
	// Functions lists the functions section.
	Functions []schema.Function
	// Automations lists the automations section.
	Automations []schema.Automation
}

// RuleChecker compiles a rule and returns a message for an invalid one.
// It lets the policy package check rules without this package knowing CEL.
type RuleChecker func(c *schema.Collection, op, rule string) error

// Problem is one error in a project file, with its position.
type Problem struct {
	File   string
	Line   int
	Column int
	Msg    string
}

// String renders the problem as FILE:LINE:COL: message.
func (p Problem) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", p.File, p.Line, p.Column, p.Msg)
}

// Error lists every problem found in a project file.
type Error struct{ Problems []Problem }

// Error lists the problems, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads DIR/mantle.yaml. check, if not nil, compiles each rule.
func Load(dir string, check RuleChecker) (*Project, error) {
	path := filepath.Join(dir, FileName)
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	p, err := parse(path, data, check)
	if err != nil {
		return nil, err
	}
	p.Dir = dir
	return p, nil
}

func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: no project file here; run `mantle init %s` to create one, or pass --project DIR", path, filepath.Dir(path))
	}
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxFileSize {
		return nil, fmt.Errorf("%s: the file is %d bytes; the limit is %d", path, fi.Size(), MaxFileSize)
	}
	return os.ReadFile(path)
}

// Parse reads the text of a project file named file.
func Parse(file string, data []byte, check RuleChecker) (*schema.Schema, error) {
	p, err := parse(file, data, check)
	if err != nil {
		return nil, err
	}
	return p.Schema, nil
}

func parse(file string, data []byte, check RuleChecker) (*Project, error) {
	p := &parser{file: file, check: check}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{Problems: []Problem{yamlProblem(file, err)}}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{Problems: []Problem{{file, 1, 1, "the file is empty; it needs at least `name:` and `collections:`"}}}
	}
	s := p.schema(doc.Content[0])
	if len(p.problems) > 0 {
		return nil, &Error{Problems: p.problems}
	}
	return &Project{Schema: s, OIDC: p.oidc, Webhooks: p.hooks, Functions: p.funcs, Automations: p.autos}, nil
}

// yamlProblem turns a YAML syntax error ("yaml: line 3: ...") into a
// Problem with a position.
func yamlProblem(file string, err error) Problem {
	msg := err.Error()
	line := 1
	if i := strings.Index(msg, "line "); i >= 0 {
		fmt.Sscanf(msg[i:], "line %d", &line)
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	return Problem{file, line, 1, "not valid YAML: " + msg}
}
