package project

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"gopkg.in/yaml.v3"
)

type parser struct {
	file     string
	check    RuleChecker
	problems []Problem
	oidc     []schema.OIDCProvider
	hooks    []schema.Webhook
	funcs    []schema.Function
	autos    []schema.Automation
}

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.problems = append(p.problems, Problem{p.file, n.Line, n.Column, fmt.Sprintf(format, args...)})
}

// mapping iterates a mapping node's keys and values, reporting keys that
// are not in allowed (when allowed is not nil).
func (p *parser) mapping(n *yaml.Node, what string, allowed []string, fn func(key string, k, v *yaml.Node)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping (key: value lines)", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			p.errorf(k, "%s: %q is given twice; keep one", what, k.Value)
			continue
		}
		seen[k.Value] = true
		if allowed != nil && !slices.Contains(allowed, k.Value) {
			p.errorf(k, "%s: unknown key %q; expected one of: %s", what, k.Value, strings.Join(allowed, ", "))
			continue
		}
		fn(k.Value, k, v)
	}
}

func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s must be a string", what)
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, what string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errorf(n, "%s must be true or false", what)
		return false
	}
	return n.Value == "true"
}

func (p *parser) number(n *yaml.Node, what string) *float64 {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		f, err := strconv.ParseFloat(n.Value, 64)
		if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return &f
		}
	}
	p.errorf(n, "%s must be a number", what)
	return nil
}

func (p *parser) strings(n *yaml.Node, what string) []string {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list, such as [a, b]", what)
		return nil
	}
	var out []string
	for _, item := range n.Content {
		if s, ok := p.str(item, what+" item"); ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) schema(root *yaml.Node) *schema.Schema {
	s := &schema.Schema{}
	var collections *yaml.Node
	var webhooks, functions, automations *yaml.Node
	p.mapping(root, "the project", []string{"name", "collections", "auth", "webhooks", "functions", "automations"}, func(key string, k, v *yaml.Node) {
		switch key {
		case "name":
			s.Name, _ = p.str(v, "name")
		case "collections":
			collections = v
		case "auth":
			p.auth(v)
		case "webhooks":
			webhooks = v
		case "functions":
			functions = v
		case "automations":
			automations = v
		}
	})
	if len(p.problems) > 0 {
		return nil
	}
	if s.Name == "" {
		p.errorf(root, "the project needs a `name:`")
	}
	users := schema.BuiltinUsers()
	if collections != nil {
		p.mapping(collections, "collections", nil, func(name string, k, v *yaml.Node) {
			c := p.collection(name, k, v, users)
			if c != nil && name != schema.UsersCollection {
				s.Collections = append(s.Collections, c)
			}
		})
	}
	s.Collections = append(s.Collections, users)
	s.Sort()
	p.relations(s, collections)
	if p.check != nil {
		p.rules(s, collections)
	}
	if functions != nil {
		p.functions(s, functions)
	}
	if automations != nil {
		p.automations(s, automations)
	}
	if webhooks != nil {
		p.webhooks(s, webhooks)
	}
	return s
}

func (p *parser) collection(name string, k, v *yaml.Node, users *schema.Collection) *schema.Collection {
	switch {
	case !schema.ValidName(name):
		p.errorf(k, "collection name %q: use a letter, then letters, digits or '_' (at most 63)", name)
		return nil
	case strings.HasPrefix(strings.ToLower(name), "_") || strings.HasPrefix(strings.ToLower(name), "sqlite"):
		p.errorf(k, "collection name %q is reserved", name)
		return nil
	}
	c := &schema.Collection{Name: name}
	if name == schema.UsersCollection {
		c = users
	}
	what := fmt.Sprintf("collection %q", name)
	p.mapping(v, what, []string{"fields", "indexes", "rules"}, func(key string, _, v *yaml.Node) {
		switch key {
		case "fields":
			p.mapping(v, what+" fields", nil, func(fname string, fk, fv *yaml.Node) {
				if f := p.field(c, fname, fk, fv); f != nil {
					c.Fields = append(c.Fields, f)
				}
			})
		case "indexes":
			p.indexes(c, v)
		case "rules":
			p.mapping(v, what+" rules", schema.Ops, func(op string, _, rv *yaml.Node) {
				if r, ok := p.str(rv, fmt.Sprintf("%s rule %q", what, op)); ok {
					if strings.TrimSpace(r) == "" {
						p.errorf(rv, "%s rule %q is empty; write \"true\" to open it to everyone, or leave it out for administrators only", what, op)
						return
					}
					if c.Rules == nil {
						c.Rules = schema.Rules{}
					}
					c.Rules[op] = r
				}
			})
		}
	})
	if len(c.Fields) == 0 {
		p.errorf(k, "%s has no fields; add at least one under `fields:`", what)
	}
	return c
}

var fieldKeys = []string{"type", "required", "integer", "min", "max", "values", "collection", "onDelete"}

func (p *parser) field(c *schema.Collection, name string, k, v *yaml.Node) *schema.Field {
	what := fmt.Sprintf("collection %q field %q", c.Name, name)
	switch {
	case schema.Reserved(name):
		p.errorf(k, "%s: the name is reserved (id, createdAt, updatedAt and version are system columns)", what)
		return nil
	case !schema.ValidName(name):
		p.errorf(k, "%s: use a letter, then letters, digits or '_' (at most 63)", what)
		return nil
	case c.Field(name) != nil:
		p.errorf(k, "%s: the field is built in and cannot be redefined", what)
		return nil
	}
	f := &schema.Field{Name: name}
	var typeNode *yaml.Node
	p.mapping(v, what, fieldKeys, func(key string, _, v *yaml.Node) {
		switch key {
		case "type":
			typeNode = v
			t, _ := p.str(v, what+" type")
			f.Type = schema.FieldType(t)
		case "required":
			f.Required = p.boolean(v, what+" required")
		case "integer":
			f.Integer = p.boolean(v, what+" integer")
		case "min":
			f.Min = p.number(v, what+" min")
		case "max":
			f.Max = p.number(v, what+" max")
		case "values":
			f.Values = p.strings(v, what+" values")
		case "collection":
			f.Collection, _ = p.str(v, what+" collection")
		case "onDelete":
			f.OnDelete, _ = p.str(v, what+" onDelete")
			if !slices.Contains([]string{schema.OnDeleteRestrict, schema.OnDeleteCascade, schema.OnDeleteSetNull}, f.OnDelete) {
				p.errorf(v, "%s: onDelete is restrict, cascade or setNull", what)
			}
		}
	})
	if typeNode == nil {
		p.errorf(v, "%s needs a type: one of %s", what, typeList())
		return nil
	}
	if !slices.Contains(schema.Types, f.Type) {
		p.errorf(typeNode, "%s: unknown type %q; use one of %s", what, f.Type, typeList())
		return nil
	}
	p.fieldOptions(f, what, v)
	return f
}

func (p *parser) fieldOptions(f *schema.Field, what string, n *yaml.Node) {
	if f.Integer && f.Type != schema.Number {
		p.errorf(n, "%s: `integer` applies to number fields only", what)
	}
	if f.OnDelete != "" && f.Type != schema.Relation {
		p.errorf(n, "%s: `onDelete` applies to relation fields only", what)
	}
	if f.OnDelete == schema.OnDeleteSetNull && f.Required {
		p.errorf(n, "%s: a required field cannot be set to null when its target is deleted; use restrict or cascade", what)
	}
	if (f.Min != nil || f.Max != nil) && f.Type != schema.Number && f.Type != schema.Text {
		p.errorf(n, "%s: `min` and `max` apply to number and text fields only", what)
	}
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		p.errorf(n, "%s: min %g is greater than max %g", what, *f.Min, *f.Max)
	}
	if f.Type == schema.Select {
		if len(f.Values) == 0 {
			p.errorf(n, "%s: a select field needs `values: [a, b, ...]`", what)
		}
		seen := map[string]bool{}
		for _, v := range f.Values {
			if seen[v] {
				p.errorf(n, "%s: value %q is listed twice", what, v)
			}
			seen[v] = true
		}
	} else if f.Values != nil {
		p.errorf(n, "%s: `values` applies to select fields only", what)
	}
	if f.Type == schema.Relation && f.Collection == "" {
		p.errorf(n, "%s: a relation field needs `collection: NAME`", what)
	} else if f.Type != schema.Relation && f.Collection != "" {
		p.errorf(n, "%s: `collection` applies to relation fields only", what)
	}
}

func typeList() string {
	names := make([]string, len(schema.Types))
	for i, t := range schema.Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

func (p *parser) indexes(c *schema.Collection, n *yaml.Node) {
	what := fmt.Sprintf("collection %q indexes", c.Name)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list of `- fields: [a, b]` items", what)
		return
	}
	for _, item := range n.Content {
		var ix schema.Index
		p.mapping(item, what+" item", []string{"fields", "unique"}, func(key string, _, v *yaml.Node) {
			switch key {
			case "fields":
				ix.Fields = p.strings(v, what+" fields")
			case "unique":
				ix.Unique = p.boolean(v, what+" unique")
			}
		})
		if len(ix.Fields) == 0 {
			p.errorf(item, "%s: an index needs `fields: [a, ...]`", what)
			continue
		}
		ok := true
		for _, f := range ix.Fields {
			if !schema.Reserved(f) && c.Field(f) == nil {
				p.errorf(item, "%s: no field %q in the collection", what, f)
				ok = false
			} else if fd := c.Field(f); fd != nil && fd.Type == schema.JSON {
				p.errorf(item, "%s: field %q is json and cannot be indexed", what, f)
				ok = false
			}
		}
		if ok && slices.ContainsFunc(c.Indexes, ix.Equal) {
			p.errorf(item, "%s: the index on %v is listed twice", what, ix.Fields)
			ok = false
		}
		if ok {
			c.Indexes = append(c.Indexes, ix)
		}
	}
}

// relations checks that every relation names an existing collection.
func (p *parser) relations(s *schema.Schema, collections *yaml.Node) {
	for _, c := range s.Collections {
		for _, f := range c.Fields {
			if f.Type == schema.Relation && f.Collection != "" && s.Collection(f.Collection) == nil {
				p.errorf(p.nodeOf(collections, c.Name, f.Name), "collection %q field %q: relation to unknown collection %q", c.Name, f.Name, f.Collection)
			}
		}
	}
}

func (p *parser) rules(s *schema.Schema, collections *yaml.Node) {
	for _, c := range s.Collections {
		for _, op := range schema.Ops {
			r, ok := c.Rules[op]
			if !ok {
				continue
			}
			if err := p.check(c, op, r); err != nil {
				n := p.nodeOf(collections, c.Name, "")
				if rn := find(find(n, "rules"), op); rn != nil {
					n = rn
				}
				p.errorf(n, "collection %q rule %q: %v", c.Name, op, err)
			}
		}
	}
}

// nodeOf finds the node of a collection or of one of its fields, for
// positions in errors found after the first pass.
func (p *parser) nodeOf(collections *yaml.Node, coll, field string) *yaml.Node {
	n := find(collections, coll)
	if n == nil {
		return &yaml.Node{Line: 1, Column: 1}
	}
	if field != "" {
		if f := find(find(n, "fields"), field); f != nil {
			return f
		}
	}
	return n
}

func find(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// auth reads the auth section: OIDC providers by name.
func (p *parser) auth(n *yaml.Node) {
	p.mapping(n, "auth", []string{"oidc"}, func(_ string, _, v *yaml.Node) {
		p.mapping(v, "auth oidc", nil, func(name string, k, v *yaml.Node) {
			what := fmt.Sprintf("oidc provider %q", name)
			if !validName(name) {
				p.errorf(k, "%s: a name is letters, digits and _ (it names the secret MANTLE_OIDC_%s_SECRET)", what, strings.ToUpper(name))
				return
			}
			o := schema.OIDCProvider{Name: name}
			p.mapping(v, what, []string{"issuer", "clientId", "scopes", "redirects"}, func(key string, _, v *yaml.Node) {
				switch key {
				case "issuer":
					o.Issuer, _ = p.str(v, what+" issuer")
				case "clientId":
					o.ClientID, _ = p.str(v, what+" clientId")
				case "scopes":
					o.Scopes = p.strings(v, what+" scopes")
				case "redirects":
					o.Redirects = p.strings(v, what+" redirects")
					for i, r := range o.Redirects {
						if u, err := url.Parse(r); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
							p.errorf(v.Content[i], "%s: redirect %q must be an absolute http(s) URL", what, r)
						}
					}
				}
			})
			if u, err := url.Parse(o.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				p.errorf(v, "%s needs `issuer:`, the provider's https URL (such as https://accounts.google.com)", what)
			}
			if o.ClientID == "" {
				p.errorf(v, "%s needs `clientId:`, as registered with the provider", what)
			}
			p.oidc = append(p.oidc, o)
		})
	})
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

var webhookKeys = []string{"url", "collections", "types", "filter", "maxAttempts", "retryMin", "retryMax"}

// webhooks reads the webhooks section, checking collections, event types
// and filters against the collections.
func (p *parser) webhooks(s *schema.Schema, n *yaml.Node) {
	p.mapping(n, "webhooks", nil, func(name string, k, v *yaml.Node) {
		what := fmt.Sprintf("webhook %q", name)
		if !validName(name) {
			p.errorf(k, "%s: a name is letters, digits and _ (it names the secret MANTLE_WEBHOOK_%s_SECRET)", what, strings.ToUpper(name))
			return
		}
		w := schema.Webhook{Name: name, MaxAttempts: 10, RetryMin: time.Second, RetryMax: 10 * time.Minute}
		p.mapping(v, what, webhookKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "url":
				w.URL, _ = p.str(v, what+" url")
				if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					p.errorf(v, "%s: url %q must be an absolute http(s) URL", what, w.URL)
				}
			case "collections":
				w.Collections = p.strings(v, what+" collections")
				for i, c := range w.Collections {
					if s.Collection(c) == nil {
						p.errorf(v.Content[i], "%s: no collection %q", what, c)
					}
				}
			case "types":
				w.Types = p.strings(v, what+" types")
				for i, t := range w.Types {
					if !strings.Contains(t, ".") {
						p.errorf(v.Content[i], "%s: %q is not an event type, such as record.created", what, t)
					}
				}
			case "filter":
				w.Filter, _ = p.str(v, what+" filter")
				colls := w.Collections
				if len(colls) == 0 {
					for _, c := range s.Collections {
						colls = append(colls, c.Name)
					}
				}
				ok := false
				var msg string
				for _, c := range colls {
					comp, err := query.NewCompiler(s.Collection(c))
					if err != nil {
						continue
					}
					if _, err := comp.Compile(w.Filter); err == nil {
						ok = true
					} else if msg == "" {
						msg = err.Error()
					}
				}
				if !ok {
					p.errorf(v, "%s filter: %s", what, msg)
				}
			case "maxAttempts", "retryMin", "retryMax":
				p.retry(key, what, v, &w.MaxAttempts, &w.RetryMin, &w.RetryMax)
			}
		})
		if w.URL == "" {
			p.errorf(v, "%s needs `url:`", what)
		}
		if w.RetryMax < w.RetryMin {
			w.RetryMax = w.RetryMin
		}
		p.hooks = append(p.hooks, w)
	})
}
