package rest_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"

	"github.com/mantlehq/mantle/internal/apptest"
)

type page struct {
	Items      []map[string]any
	NextCursor *string
	Total      *int64
}

func list(t *testing.T, s *apptest.Server, coll string, params url.Values) page {
	t.Helper()
	r := s.Do("GET", "/api/collections/"+coll+"/records?"+params.Encode(), nil)
	if r.Status != 200 {
		t.Fatalf("list %v: %d %s", params, r.Status, r.Body)
	}
	var p page
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func titles(p page) []string {
	var out []string
	for _, it := range p.Items {
		out = append(out, it["title"].(string))
	}
	return out
}

func seed(t *testing.T, s *apptest.Server) {
	t.Helper()
	rows := []string{
		`{"title":"Go fast","views":10,"published":true,"status":"published","publishedAt":"2024-01-02T00:00:00Z","score":1.5}`,
		`{"title":"Go slow","views":5,"published":false,"status":"draft"}`,
		`{"title":"Rust","views":20,"published":true,"body":"systems"}`,
		`{"title":"Zig","views":5}`,
		`{"title":"Odin"}`,
	}
	for _, b := range rows {
		if r := s.Do("POST", "/api/collections/posts/records", b); r.Status != 201 {
			t.Fatalf("seed: %d %s", r.Status, r.Body)
		}
	}
}

func TestListFilter(t *testing.T) {
	s := apptest.Start(t, blog)
	seed(t, s)
	cases := []struct {
		filter string
		want   []string
	}{
		{`views > 5`, []string{"Go fast", "Rust"}},
		{`views >= 5 && title.startsWith("Go")`, []string{"Go fast", "Go slow"}},
		{`title.endsWith("slow") || title == "Zig"`, []string{"Go slow", "Zig"}},
		{`title.contains("o ")`, []string{"Go fast", "Go slow"}},
		{`!(views > 5)`, []string{"Go slow", "Zig", "Odin"}},
		{`views != 5`, []string{"Go fast", "Rust", "Odin"}},
		{`views == null`, []string{"Odin"}},
		{`has(body)`, []string{"Rust"}},
		{`!has(body)`, []string{"Go fast", "Go slow", "Zig", "Odin"}},
		{`published`, []string{"Go fast", "Rust"}},
		{`!published`, []string{"Go slow", "Zig", "Odin"}},
		{`status in ["draft", "published"]`, []string{"Go fast", "Go slow"}},
		{`!(status in ["draft"])`, []string{"Go fast", "Rust", "Zig", "Odin"}},
		{`publishedAt > timestamp("2024-01-01T00:00:00Z")`, []string{"Go fast"}},
		{`score < 2`, []string{"Go fast"}},
		{`10 <= views`, []string{"Go fast", "Rust"}},
		{`version == 1 && id != ""`, []string{"Go fast", "Go slow", "Rust", "Zig", "Odin"}},
		{`title.startsWith("")`, []string{"Go fast", "Go slow", "Rust", "Zig", "Odin"}},
		{`false`, nil},
	}
	for _, c := range cases {
		t.Run(c.filter, func(t *testing.T) {
			got := titles(list(t, s, "posts", url.Values{"filter": {c.filter}}))
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestListHostileFilters(t *testing.T) {
	s := apptest.Start(t, blog)
	seed(t, s)
	bad := []string{
		`title == "a" || 1`, `views > "x"`, `nope > 1`, `views.startsWith("a")`, `title > `,
		`title == "x'; DROP TABLE posts; --" || size(title) > 0`, `tags > 1`, `published > true`,
		`views in views`, `has(title.x)`, `timestamp("nope") < publishedAt`, `title + "x" == "y"`,
		fmt.Sprintf("%s1%s", repeat("(", 200), repeat(")", 200)),
		repeat("views > 1 && ", 400) + "true",
	}
	for _, f := range bad {
		r := s.Do("GET", "/api/collections/posts/records?filter="+url.QueryEscape(f), nil)
		if r.Status != 400 {
			t.Errorf("filter %.60q: status %d, want 400: %s", f, r.Status, r.Body)
			continue
		}
		apptest.CheckProblem(t, r, "invalid", "query.invalid_filter", nil)
	}
	if n := len(list(t, s, "posts", nil).Items); n != 5 {
		t.Errorf("table changed: %d items", n)
	}
	for _, sort := range []string{"nope", "tags", "-", "views;drop"} {
		r := s.Do("GET", "/api/collections/posts/records?sort="+url.QueryEscape(sort), nil)
		if r.Status != 400 {
			t.Errorf("sort %q: status %d", sort, r.Status)
		}
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=%%%", "cursor=e30", "fields=nope", "expand=title", "count=maybe"} {
		r := s.Do("GET", "/api/collections/posts/records?"+q, nil)
		if r.Status != 400 {
			t.Errorf("%s: status %d", q, r.Status)
		}
	}
}

func repeat(s string, n int) string {
	out := ""
	for i := 0; i < n; i++ {
		out += s
	}
	return out
}

func TestListSortAndCursor(t *testing.T) {
	s := apptest.Start(t, blog)
	seed(t, s)
	p := list(t, s, "posts", url.Values{"sort": {"-views,title"}})
	if got := titles(p); !slices.Equal(got, []string{"Rust", "Go fast", "Go slow", "Zig", "Odin"}) {
		t.Errorf("sort -views,title: %q", got)
	}
	p = list(t, s, "posts", url.Values{"sort": {"views"}})
	if got := titles(p); got[0] != "Odin" || got[4] != "Rust" {
		t.Errorf("sort views (nulls first): %q", got)
	}
	// Walk every sort in pages of 2 and compare with the single page.
	for _, sort := range []string{"-views", "views", "title", "-title,views", "published,-views", "-publishedAt", "createdAt", ""} {
		all := titles(list(t, s, "posts", url.Values{"sort": {sort}}))
		var walked []string
		params := url.Values{"sort": {sort}, "limit": {"2"}}
		for i := 0; i < 10; i++ {
			p := list(t, s, "posts", params)
			walked = append(walked, titles(p)...)
			if p.NextCursor == nil {
				break
			}
			params.Set("cursor", *p.NextCursor)
		}
		if !slices.Equal(all, walked) {
			t.Errorf("sort %q: pages %q, single page %q", sort, walked, all)
		}
	}
	// A cursor stays valid when records are inserted before it.
	p = list(t, s, "posts", url.Values{"sort": {"-views"}, "limit": {"2"}})
	s.Do("POST", "/api/collections/posts/records", `{"title":"Top","views":100}`)
	p2 := list(t, s, "posts", url.Values{"sort": {"-views"}, "limit": {"2"}, "cursor": {*p.NextCursor}})
	if got := titles(p2); !slices.Equal(got, []string{"Zig", "Go slow"}) { // ties: id in the direction of the last key
		t.Errorf("page after insert: %q", got)
	}
	r := s.Do("GET", "/api/collections/posts/records?sort=title&cursor="+url.QueryEscape(*p.NextCursor), nil)
	if r.Status != 400 {
		t.Errorf("cursor with another sort: %d", r.Status)
	}
}

func TestListFieldsCountExpand(t *testing.T) {
	s := apptest.Start(t, blog)
	seed(t, s)
	p := list(t, s, "posts", url.Values{"fields": {"title,views"}, "count": {"true"}, "filter": {"views >= 5"}, "limit": {"1"}})
	if p.Total == nil || *p.Total != 4 {
		t.Errorf("total %v, want 4", p.Total)
	}
	if len(p.Items) != 1 || len(p.Items[0]) != 3 || p.Items[0]["id"] == nil || p.Items[0]["title"] == nil {
		t.Errorf("fields: %v", p.Items)
	}
	if list(t, s, "posts", nil).Total != nil {
		t.Error("total present without count=true")
	}
	r := s.Do("POST", "/api/collections/people/records", `{"name":"Ann"}`)
	ann := r.JSON()["id"].(string)
	s.Do("POST", "/api/collections/posts/records", `{"title":"By Ann","author":"`+ann+`"}`)
	p = list(t, s, "posts", url.Values{"filter": {`title == "By Ann"`}, "expand": {"author"}})
	author, ok := p.Items[0]["author"].(map[string]any)
	if !ok || author["name"] != "Ann" || author["id"] != ann {
		t.Errorf("expand: %v", p.Items[0]["author"])
	}
	p = list(t, s, "posts", url.Values{"filter": {`title == "By Ann"`}})
	if p.Items[0]["author"] != ann {
		t.Errorf("unexpanded author: %v", p.Items[0]["author"])
	}
}
