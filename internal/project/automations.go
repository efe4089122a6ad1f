package project

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"gopkg.in/yaml.v3"
)

var automationKeys = []string{"on", "cron", "catchUp", "hook", "allow", "if", "do", "roles", "maxAttempts", "retryMin", "retryMax"}

var stepKinds = []string{"create", "update", "delete", "webhook", "invoke", "emit"}

// automations reads the automations section. Expressions are kept with
// their positions; internal/automation compiles them (at plan, apply and
// serve) and reports errors there.
func (p *parser) automations(s *schema.Schema, n *yaml.Node) {
	p.mapping(n, "automations", nil, func(name string, k, v *yaml.Node) {
		what := fmt.Sprintf("automation %q", name)
		if !validName(name) {
			p.errorf(k, "%s: a name is letters, digits and _", what)
			return
		}
		a := schema.Automation{Name: name, MaxAttempts: 10, RetryMin: time.Second, RetryMax: 10 * time.Minute}
		p.mapping(v, what, automationKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "on":
				a.On = p.triggers(s, what, v)
			case "cron":
				a.Cron = p.cron(v, what)
			case "catchUp":
				a.CatchUp = p.boolean(v, what+" catchUp")
			case "hook":
				a.Hook = p.boolean(v, what+" hook")
			case "allow":
				a.Allow = p.allow(v, what)
			case "if":
				a.If = p.expr(v, what+" if")
			case "roles":
				a.Roles = p.stringList(v, what+" roles")
			case "maxAttempts", "retryMin", "retryMax":
				p.retry(key, what, v, &a.MaxAttempts, &a.RetryMin, &a.RetryMax)
			case "do":
				if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
					p.errorf(v, "%s: do is a list of steps, such as - create: {collection: audit, data: {…}}", what)
					return
				}
				names := map[string]bool{}
				for i, sn := range v.Content {
					st := p.step(s, fmt.Sprintf("%s step %d", what, i+1), sn)
					if st.Name == "" {
						st.Name = fmt.Sprintf("step%d", i+1)
					}
					if names[st.Name] {
						p.errorf(sn, "%s: two steps are named %q", what, st.Name)
					}
					names[st.Name] = true
					a.Do = append(a.Do, st)
				}
			}
		})
		if len(a.On) == 0 && a.Cron == "" && !a.Hook {
			p.errorf(v, "%s has no trigger: give on, cron or hook: true", what)
		}
		if len(a.Do) == 0 {
			p.errorf(v, "%s needs `do:`, its steps", what)
		}
		if a.RetryMax < a.RetryMin {
			a.RetryMax = a.RetryMin
		}
		p.autos = append(p.autos, a)
	})
}

func (p *parser) pos(n *yaml.Node) string { return fmt.Sprintf("%s:%d:%d", p.file, n.Line, n.Column) }

func (p *parser) expr(n *yaml.Node, what string) *schema.Expr {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s must be a CEL expression (quote a string literal inside: \"'text'\")", what)
		return nil
	}
	return &schema.Expr{Src: n.Value, Pos: p.pos(n)}
}

func (p *parser) exprMap(n *yaml.Node, what string) map[string]*schema.Expr {
	m := map[string]*schema.Expr{}
	p.mapping(n, what, nil, func(key string, _, v *yaml.Node) {
		if e := p.expr(v, what+" "+key); e != nil {
			m[key] = e
		}
	})
	return m
}

// step reads one step: an optional name and one action.
func (p *parser) step(s *schema.Schema, what string, n *yaml.Node) schema.Action {
	st := schema.Action{Pos: p.pos(n)}
	p.mapping(n, what, append([]string{"name"}, stepKinds...), func(key string, _, v *yaml.Node) {
		if key == "name" {
			st.Name, _ = p.str(v, what+" name")
			if !validName(st.Name) {
				p.errorf(v, "%s: a step name is letters, digits and _ (steps.NAME reads its output)", what)
			}
			return
		}
		if st.Kind != "" {
			p.errorf(v, "%s: one action per step; %s and %s are two", what, st.Kind, key)
			return
		}
		st.Kind = key
		what := what + " " + key
		keys := map[string][]string{
			"create": {"collection", "data"}, "update": {"collection", "id", "data"}, "delete": {"collection", "id"},
			"webhook": {"url", "method", "headers", "body"}, "invoke": {"function", "data"}, "emit": {"type", "subject", "data"},
		}[key]
		p.mapping(v, what, keys, func(k string, _, v *yaml.Node) {
			switch k {
			case "collection":
				st.Collection, _ = p.str(v, what+" collection")
				if s.Collection(st.Collection) == nil {
					p.errorf(v, "%s: no collection %q", what, st.Collection)
				}
			case "id":
				st.ID = p.expr(v, what+" id")
			case "data":
				if key == "create" || key == "update" {
					st.Data = p.exprMap(v, what+" data")
				} else {
					st.Body = p.expr(v, what+" data")
				}
			case "body":
				st.Body = p.expr(v, what+" body")
			case "headers":
				st.Headers = p.exprMap(v, what+" headers")
			case "url":
				st.URL, _ = p.str(v, what+" url")
				if u, err := url.Parse(st.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					p.errorf(v, "%s: url %q must be an absolute http(s) URL", what, st.URL)
				}
			case "method":
				st.Method, _ = p.str(v, what+" method")
				if !slices.Contains([]string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodGet}, st.Method) {
					p.errorf(v, "%s: method is POST, PUT, PATCH, DELETE or GET", what)
				}
			case "function":
				st.Function, _ = p.str(v, what+" function")
				if !slices.ContainsFunc(p.funcs, func(f schema.Function) bool { return f.Name == st.Function }) {
					p.errorf(v, "%s: no function %q in the functions section", what, st.Function)
				}
			case "subject":
				st.Subject = p.expr(v, what+" subject")
			case "type":
				st.Type, _ = p.str(v, what+" type")
				if err := eventlog.CheckCustomType(st.Type); err != nil {
					p.errorf(v, "%s: %s", what, mantle.AsError(err).Message)
				}
			}
		})
		switch {
		case (key == "create" || key == "update" || key == "delete") && st.Collection == "":
			p.errorf(v, "%s needs `collection:`", what)
		case (key == "update" || key == "delete") && st.ID == nil:
			p.errorf(v, "%s needs `id:`, an expression such as record.id", what)
		case key == "create" && len(st.Data) == 0:
			p.errorf(v, "%s needs `data:`, field: expression lines", what)
		case key == "webhook" && st.URL == "":
			p.errorf(v, "%s needs `url:`", what)
		case key == "invoke" && st.Function == "":
			p.errorf(v, "%s needs `function:`", what)
		case key == "emit" && st.Type == "":
			p.errorf(v, "%s needs `type:`", what)
		}
	})
	if st.Kind == "" {
		p.errorf(n, "%s has no action: give one of %s", what, strings.Join(stepKinds, ", "))
	}
	return st
}
