package policy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/cel-go/common/types"
	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

func posts(rules map[string]string) *schema.Collection {
	max := 200.0
	return &schema.Collection{
		Name: "posts",
		Fields: []*schema.Field{
			{Name: "title", Type: schema.Text, Max: &max},
			{Name: "views", Type: schema.Number},
			{Name: "published", Type: schema.Bool},
			{Name: "status", Type: schema.Select, Values: []string{"draft", "live"}},
			{Name: "author", Type: schema.Relation, Collection: "users"},
			{Name: "publishedAt", Type: schema.Datetime},
			{Name: "tags", Type: schema.JSON},
		},
		Rules: rules,
	}
}

var (
	anon  = mantle.Identity{}
	alice = mantle.Identity{ID: "alice", Email: "alice@example.com", Roles: []string{"editor"}}
	bob   = mantle.Identity{ID: "bob", Email: "bob@example.com"}
	admin = mantle.Identity{ID: "root", Roles: []string{"admin"}}
)

func rec(id string, data map[string]any) *schema.Record {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &schema.Record{ID: id, CreatedAt: t, UpdatedAt: t, Version: 1, Data: data}
}

var records = []*schema.Record{
	rec("r1", map[string]any{"title": "Hello", "views": 10.0, "published": true, "status": "live", "author": "alice"}),
	rec("r2", map[string]any{"title": "Draft", "views": 0.0, "published": false, "status": "draft", "author": "alice"}),
	rec("r3", map[string]any{"title": "Bob's", "views": 500.0, "published": false, "status": "draft", "author": "bob"}),
	rec("r4", map[string]any{"title": "Orphan", "views": 3.0, "published": true, "status": "live", "author": "carol"}),
}

// TestPushDownMatchesCEL is the heart of the policy: for every rule that
// lowers, the condition bound for a caller (what the SQL WHERE clause
// gets) admits exactly the records that CEL's own evaluation of the rule
// admits.
func TestPushDownMatchesCEL(t *testing.T) {
	rules := []string{
		`true`,
		`false`,
		`published`,
		`!published`,
		`published || record.author == auth.id`,
		`auth.id == author`,
		`record.author == auth.id && views > 5`,
		`'editor' in auth.roles || record.author == auth.id`,
		`auth.id != '' && (published || record.author == auth.id)`,
		`record.status in ['live', 'x']`,
		`!(record.status in ['live'])`,
		`record.title.startsWith('H') || record.title.endsWith("'s")`,
		`record.title.contains(auth.id)`,
		`has(record.author) && record.author != auth.id`,
		`record.views >= 10 && record.views < 1000`,
		`auth.email.endsWith('@example.com') ? published : false`,
		`auth.roles.exists(r, r == 'editor') ? record.views > 1 : record.author == auth.id`,
		`record.id == 'r3' || record.version > 1`,
		`request.method == 'GET' && published`,
		`record.createdAt < timestamp('2030-01-01T00:00:00Z')`,
	}
	for _, src := range rules {
		c := posts(map[string]string{"list": src})
		e, err := newEnv(c)
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.compile(schema.OpList, src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if r.tmpl == nil {
			t.Fatalf("%s: did not lower", src)
		}
		for _, id := range []mantle.Identity{anon, alice, bob} {
			cond := r.bind(id, schema.OpList)
			for _, rc := range records {
				got := query.Eval(cond, func(n string) any { return query.Value(rc, n) })
				act := &recordActivation{caller: newCaller(id, schema.OpList), rec: rc}
				out, _, err := r.prog.Eval(act)
				want := err == nil && out == types.True
				if got != want {
					t.Errorf("rule %s, caller %q, record %s: pushed down %v, CEL %v (%v)", src, id.ID, rc.ID, got, want, err)
				}
			}
		}
	}
}

func TestAllow(t *testing.T) {
	c := posts(map[string]string{
		"list":   "published || record.author == auth.id",
		"view":   "published || record.author == auth.id",
		"create": "auth.id != '' && data.author == auth.id",
		"update": "record.author == auth.id && (!has(data.author) || data.author == auth.id)",
	})
	s, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	draft, live := records[1], records[0]
	cases := []struct {
		name   string
		id     mantle.Identity
		op     string
		rec    *schema.Record
		data   map[string]any
		reason string // "" allowed
	}{
		{"anyone views a published post", anon, "view", live, nil, ""},
		{"anonymous may not view a draft", anon, "view", draft, nil, "auth.required"},
		{"the author views her draft", alice, "view", draft, nil, ""},
		{"another user may not view the draft", bob, "view", draft, nil, "policy.denied"},
		{"admin views anything", admin, "view", draft, nil, ""},
		{"anonymous may not create", anon, "create", nil, map[string]any{"author": ""}, "auth.required"},
		{"create as yourself", bob, "create", nil, map[string]any{"author": "bob"}, ""},
		{"create as someone else", bob, "create", nil, map[string]any{"author": "alice"}, "policy.denied"},
		{"update your own", alice, "update", draft, map[string]any{"title": "x"}, ""},
		{"give your post away", alice, "update", draft, map[string]any{"author": "bob"}, "policy.denied"},
		{"update another's", bob, "update", draft, map[string]any{"title": "x"}, "policy.denied"},
		{"missing delete rule: admins only", alice, "delete", draft, nil, "policy.denied"},
		{"missing delete rule: anonymous", anon, "delete", draft, nil, "auth.required"},
		{"missing delete rule: admin", admin, "delete", draft, nil, ""},
	}
	for _, tc := range cases {
		err := s.Allow(tc.id, tc.op, tc.rec, tc.data)
		got := ""
		if me := mantle.AsError(err); me != nil {
			got = me.Reason
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.reason {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.reason)
		}
	}
}

func TestListFilter(t *testing.T) {
	s, err := Compile(posts(map[string]string{"list": "record.author == auth.id"}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ListFilter(alice)
	if err != nil {
		t.Fatal(err)
	}
	want := query.Cmp{Col: query.Column{Name: "author", Type: schema.Relation, Nullable: true}, Op: query.Eq, Value: "alice"}
	if got != want {
		t.Errorf("bound %#v, want %#v", got, want)
	}
	// Injection through the identity is a bound value, never SQL text.
	evil := mantle.Identity{ID: "x' OR '1'='1"}
	got, _ = s.ListFilter(evil)
	if cmp, ok := got.(query.Cmp); !ok || cmp.Value != evil.ID {
		t.Errorf("bound %#v", got)
	}
	if f, err := s.ListFilter(admin); err != nil || f != (query.Const{Value: true}) {
		t.Errorf("admin: %v %v", f, err)
	}
	s, _ = Compile(posts(map[string]string{"list": "auth.id != '' && published"}))
	if _, err := s.ListFilter(anon); mantle.ErrorCode(err) != mantle.Unauthenticated {
		t.Errorf("anonymous on a rule that is false for them: %v", err)
	}
	s, _ = Compile(posts(nil))
	if _, err := s.ListFilter(bob); mantle.ErrorCode(err) != mantle.PermissionDenied {
		t.Errorf("no list rule: %v", err)
	}
}

func TestCheckErrors(t *testing.T) {
	cases := []struct{ op, rule, want string }{
		{"list", "data.title == 'x'", "data is the incoming fields"},
		{"view", "data.title == 'x'", "data is the incoming fields"},
		{"create", "record.author == auth.id", "no stored record"},
		{"create", "author == auth.id", "no stored record"},
		{"list", "record.title == record.status", "database condition"},
		{"list", "size(record.title) > 3", "database condition"},
		{"list", "record.tags == 'x'", "json field"},
		{"view", "record.auther == auth.id", `no field "auther"`},
		{"update", "data.nope == 1", `no field "nope"`},
		{"view", "record.views + 1", "must yield true or false"},
		{"view", "record.author ==", "Syntax error"},
		{"view", "unknown == 1", "undeclared reference"},
		{"view", strings.Repeat("a", MaxRuleLength+1), "longer than"},
	}
	for _, tc := range cases {
		err := Check(posts(nil), tc.op, tc.rule)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %q: got %v, want %q", tc.op, tc.rule, err, tc.want)
		}
	}
	for _, ok := range []struct{ op, rule string }{
		{"view", "record.title.size() > 3"}, // not a list rule: CEL evaluates it
		{"update", "data.views > record.views"},
		{"create", "'admin' in auth.roles || data.author == auth.id"},
	} {
		if err := Check(posts(nil), ok.op, ok.rule); err != nil {
			t.Errorf("%s %q: %v", ok.op, ok.rule, err)
		}
	}
}

// A rule that CEL evaluates (it does not lower) still decides by the
// record.
func TestCELFallback(t *testing.T) {
	s, err := Compile(posts(map[string]string{"view": "size(record.title) > 5", "update": "data.views > record.views"}))
	if err != nil {
		t.Fatal(err)
	}
	if !s.CanView(bob, records[3]) || s.CanView(bob, records[0]) {
		t.Error("size(title) > 5")
	}
	if s.Allow(bob, "update", records[0], map[string]any{"views": 11.0}) != nil ||
		s.Allow(bob, "update", records[0], map[string]any{"views": 9.0}) == nil {
		t.Error("data.views > record.views")
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"published || record.author == auth.id", "'a' in auth.roles",
		"record.views > 3 ? true : record.title.startsWith(auth.email)", "has(title)", "[1,2].all(x, x > 0)"} {
		f.Add("list", s)
		f.Add("update", s)
	}
	c := posts(nil)
	f.Fuzz(func(t *testing.T, op, src string) {
		e, err := newEnv(c)
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.compile(op, src)
		if err != nil {
			return
		}
		for _, id := range []mantle.Identity{anon, alice} {
			for _, rc := range records {
				r.allow(id, op, rc, map[string]any{"title": "t"})
			}
			if r.tmpl != nil {
				r.bind(id, op)
			}
		}
	})
}

// The cost of a rule on the get path: an owner rule against "true".
func BenchmarkCanViewOwner(b *testing.B) {
	s, _ := Compile(posts(map[string]string{"view": "record.author == auth.id"}))
	for b.Loop() {
		s.CanView(alice, records[0])
	}
}

func BenchmarkCanViewTrue(b *testing.B) {
	s, _ := Compile(posts(map[string]string{"view": "true"}))
	for b.Loop() {
		s.CanView(alice, records[0])
	}
}

// Binding a list rule for a caller, once per list request.
func BenchmarkListFilterOwner(b *testing.B) {
	s, _ := Compile(posts(map[string]string{"list": "published || record.author == auth.id"}))
	for b.Loop() {
		s.ListFilter(alice)
	}
}

// A rule CEL evaluates (it reads data).
func BenchmarkAllowCEL(b *testing.B) {
	s, _ := Compile(posts(map[string]string{"update": "record.author == auth.id && (!has(data.author) || data.author == auth.id)"}))
	data := map[string]any{"title": "x"}
	for b.Loop() {
		s.Allow(alice, "update", records[0], data)
	}
}
