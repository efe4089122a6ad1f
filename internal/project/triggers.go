package project

import (
	"math"
	"strings"
	"time"

	"github.com/mantlehq/mantle/internal/schema"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// The keys that webhooks, functions and automations share: event
// triggers, schedules, caller rules and retries.

// triggers reads an `on` entry: one trigger or a list of them.
func (p *parser) triggers(s *schema.Schema, what string, v *yaml.Node) []schema.Trigger {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	var out []schema.Trigger
	for _, item := range items {
		if str, ok := p.str(item, what+" on item"); ok {
			if t, ok := p.trigger(s, what, str, item); ok {
				out = append(out, t)
			}
		}
	}
	return out
}

// trigger reads one `on` entry: COLLECTION.record.created (or .updated,
// .deleted, .record.*), or a custom event type.
func (p *parser) trigger(s *schema.Schema, what, item string, n *yaml.Node) (schema.Trigger, bool) {
	coll, rest, _ := strings.Cut(item, ".")
	if s.Collection(coll) != nil {
		if rest == "*" {
			rest = "record.*"
		}
		switch rest {
		case "record.created", "record.updated", "record.deleted", "record.*":
			return schema.Trigger{Collection: coll, Type: rest}, true
		}
		p.errorf(n, "%s: on %q: a collection's events are %s.record.created, .record.updated, .record.deleted or .record.*", what, item, coll)
		return schema.Trigger{}, false
	}
	if !strings.Contains(item, ".") || strings.HasPrefix(item, "record.") {
		p.errorf(n, "%s: on %q: name a collection's events (posts.record.created) or a custom event type (order.flagged)", what, item)
		return schema.Trigger{}, false
	}
	return schema.Trigger{Type: item}, true
}

// cron reads a schedule.
func (p *parser) cron(v *yaml.Node, what string) string {
	c, _ := p.str(v, what+" cron")
	if _, err := cron.ParseStandard(c); err != nil {
		p.errorf(v, "%s: cron %q: %v; use five fields (minute hour day month weekday) such as \"*/5 * * * *\", or @hourly, @daily", what, c, err)
	}
	return c
}

// allow reads a caller rule (CEL over auth and request).
func (p *parser) allow(v *yaml.Node, what string) string {
	rule, _ := p.str(v, what+" allow")
	if p.check != nil {
		if err := p.check(nil, what, rule); err != nil {
			p.errorf(v, "%s allow: %v", what, err)
		}
	}
	return rule
}

// retry reads maxAttempts, retryMin or retryMax into r, and reports
// whether key was one of them.
func (p *parser) retry(key, what string, v *yaml.Node, attempts *int, lo, hi *time.Duration) bool {
	switch key {
	case "maxAttempts":
		if f := p.number(v, what+" maxAttempts"); f != nil {
			if *f < 1 || *f > 100 || *f != math.Trunc(*f) {
				p.errorf(v, "%s: maxAttempts is a whole number from 1 to 100", what)
			}
			*attempts = int(*f)
		}
	case "retryMin", "retryMax":
		str, _ := p.str(v, what+" "+key)
		d, err := time.ParseDuration(str)
		if err != nil || d < time.Millisecond || d > 24*time.Hour {
			p.errorf(v, "%s: %s is a duration from 1ms to 24h, such as 500ms or 2m", what, key)
		}
		if key == "retryMin" {
			*lo = d
		} else {
			*hi = d
		}
	default:
		return false
	}
	return true
}
