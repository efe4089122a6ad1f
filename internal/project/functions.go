package project

import (
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"gopkg.in/yaml.v3"
)

var functionKeys = []string{"module", "style", "http", "allow", "on", "filter", "cron", "catchUp", "timeout", "memory",
	"maxOutput", "instances", "warm", "env", "roles", "hosts", "maxAttempts", "retryMin", "retryMax"}

var routePath = regexp.MustCompile(`^/fn(/([A-Za-z0-9._~-]+|\{[A-Za-z_][A-Za-z0-9_]*\}))+$`)

// functions reads the functions section. Module paths are checked to stay
// inside the project folder; whether they load is for `mantle plan`.
func (p *parser) functions(s *schema.Schema, n *yaml.Node) {
	routes := map[string]string{}
	p.mapping(n, "functions", nil, func(name string, k, v *yaml.Node) {
		what := fmt.Sprintf("function %q", name)
		if !validName(name) {
			p.errorf(k, "%s: a name is letters, digits and _", what)
			return
		}
		f := schema.Function{Name: name, MaxAttempts: 10, RetryMin: time.Second, RetryMax: 10 * time.Minute}
		var filterNode *yaml.Node
		p.mapping(v, what, functionKeys, func(key string, _, v *yaml.Node) {
			switch key {
			case "module":
				f.Module, _ = p.str(v, what+" module")
				if filepath.IsAbs(f.Module) || !filepath.IsLocal(f.Module) {
					p.errorf(v, "%s: module %q must be a path inside the project folder, such as functions/score", what, f.Module)
				}
			case "style":
				f.Style, _ = p.str(v, what+" style")
				if f.Style != "reactor" && f.Style != "command" {
					p.errorf(v, "%s: style is reactor (one instance serves many calls) or command (a fresh instance per call)", what)
				}
			case "http":
				str, _ := p.str(v, what+" http")
				method, path, _ := strings.Cut(strings.TrimSpace(str), " ")
				path = strings.TrimSpace(path)
				if !slices.Contains([]string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}, method) || !routePath.MatchString(path) {
					p.errorf(v, "%s: http is a method and a path under /fn/, such as \"POST /fn/score\" or \"GET /fn/orders/{id}\"", what)
					return
				}
				if other, ok := routes[method+" "+path]; ok {
					p.errorf(v, "%s: the route %s %s is function %q's already", what, method, path, other)
				}
				routes[method+" "+path] = name
				f.HTTP = &schema.Route{Method: method, Path: path}
			case "allow":
				f.Allow = p.allow(v, what)
			case "on":
				f.On = p.triggers(s, what, v)
			case "filter":
				f.Filter, _ = p.str(v, what+" filter")
				filterNode = v
			case "cron":
				f.Cron = p.cron(v, what)
			case "catchUp":
				f.CatchUp = p.boolean(v, what+" catchUp")
			case "maxAttempts", "retryMin", "retryMax":
				p.retry(key, what, v, &f.MaxAttempts, &f.RetryMin, &f.RetryMax)
			case "timeout":
				str, _ := p.str(v, what+" timeout")
				d, err := time.ParseDuration(str)
				if err != nil || d < time.Millisecond || d > 15*time.Minute {
					p.errorf(v, "%s: timeout is a duration from 1ms to 15m, such as 500ms or 30s", what)
				}
				f.Timeout = d
			case "memory":
				f.MemoryBytes = p.size(v, what+" memory", 1<<20, 4<<30)
			case "maxOutput":
				f.MaxOutput = int(p.size(v, what+" maxOutput", 1<<10, 64<<20))
			case "instances", "warm":
				if n := p.number(v, what+" "+key); n != nil {
					lo := 1.0
					if key == "warm" {
						lo = 0
					}
					if *n < lo || *n > 64 || *n != math.Trunc(*n) {
						p.errorf(v, "%s: %s is a whole number from %v to 64", what, key, lo)
					}
					if key == "instances" {
						f.MaxInstances = int(*n)
					} else {
						f.Warm = int(*n)
					}
				}
			case "env":
				f.Env = map[string]string{}
				p.mapping(v, what+" env", nil, func(name string, k, v *yaml.Node) {
					if v.Kind != yaml.ScalarNode {
						p.errorf(v, "%s env %s must be a string", what, name)
						return
					}
					f.Env[name] = v.Value
				})
			case "roles":
				f.Roles = p.stringList(v, what+" roles")
			case "hosts":
				f.Hosts = p.stringList(v, what+" hosts")
				for i, h := range f.Hosts {
					if h == "" || strings.ContainsAny(h, "/:@ ") || strings.Count(h, "*") > 1 || strings.Contains(h, "*") && !strings.HasPrefix(h, "*.") {
						p.errorf(v.Content[i], "%s: host %q is a host name such as api.example.com or *.example.com", what, h)
					}
				}
			}
		})
		if f.Module == "" {
			p.errorf(v, "%s needs `module:`, a .wasm file or a folder of Go source", what)
		}
		if f.Filter != "" && filterNode != nil {
			p.triggerFilter(s, what, &f, filterNode)
		}
		if f.Warm > f.MaxInstances && f.MaxInstances > 0 {
			p.errorf(v, "%s: warm (%d) is more than instances (%d)", what, f.Warm, f.MaxInstances)
		}
		if f.RetryMax < f.RetryMin {
			f.RetryMax = f.RetryMin
		}
		p.funcs = append(p.funcs, f)
	})
}

// stringList is strings, accepting one string for a list of one.
func (p *parser) stringList(n *yaml.Node, what string) []string {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		return []string{n.Value}
	}
	return p.strings(n, what)
}

func (p *parser) triggerFilter(s *schema.Schema, what string, f *schema.Function, n *yaml.Node) {
	checked := false
	for _, t := range f.On {
		if t.Collection == "" {
			continue
		}
		comp, err := query.NewCompiler(s.Collection(t.Collection))
		if err != nil {
			continue
		}
		checked = true
		if _, err := comp.Compile(f.Filter); err != nil {
			p.errorf(n, "%s filter on %s: %v", what, t.Collection, err)
			return
		}
	}
	if !checked {
		p.errorf(n, "%s: a filter applies to record events; add a collection's events to `on`", what)
	}
}

// size reads a byte size: a number of MiB, or a string such as 64MiB,
// 512KiB, 1GiB (MB, KB and GB are read as the binary units too).
func (p *parser) size(n *yaml.Node, what string, lo, hi uint64) uint64 {
	msg := fmt.Sprintf("%s is a size from %s to %s, such as 64MiB", what, human(lo), human(hi))
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s", msg)
		return 0
	}
	s := strings.TrimSpace(n.Value)
	mult := uint64(1 << 20)
	for _, u := range []struct {
		suffix string
		m      uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	v := uint64(f * float64(mult))
	if err != nil || f <= 0 || v < lo || v > hi {
		p.errorf(n, "%s", msg)
		return 0
	}
	return v
}

func human(n uint64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatUint(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatUint(n>>20, 10) + "MiB"
	}
	return strconv.FormatUint(n>>10, 10) + "KiB"
}
