package rest_test

import (
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/config"
)

// An anonymous substring search with count=true over a large collection
// runs out of its budget and is answered 503 query.timeout (the statement
// is interrupted, not left running); a signed-in caller's larger budget
// still answers; and a burst of such anonymous queries leaves the
// database to everyone else.
func TestQueryBudget(t *testing.T) {
	s := apptest.StartConfig(t, `
name: budget
collections:
  notes:
    fields:
      text: { type: text }
    rules: { list: "true", view: "true" }
`, func(c *config.Config) { c.AnonQueryTimeout = 2 * time.Millisecond })
	for b := 0; b < 20; b++ {
		ops := make([]map[string]any, 1000)
		for i := range ops {
			ops[i] = map[string]any{"op": "create", "collection": "notes", "data": map[string]any{"text": fmt.Sprintf("note %d of batch %d with some words to scan", i, b)}}
		}
		if r := s.Do("POST", "/api/batch", map[string]any{"ops": ops}, "admin"); r.Status != 200 {
			t.Fatalf("seed: %d %s", r.Status, r.Body)
		}
	}
	search := func(literal string, headers ...string) *apptest.Response {
		return s.Do("GET", "/api/collections/notes/records?count=true&filter="+url.QueryEscape(`text.contains("`+literal+`")`), nil, headers...)
	}
	r := search("zz-no-match-1")
	if r.Status != 503 {
		t.Fatalf("an anonymous full scan: %d %s", r.Status, r.Body)
	}
	apptest.CheckProblem(t, r, "unavailable", "query.timeout", nil)
	if r.Header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if r := search("zz-no-match-2", "admin"); r.Status != 200 || r.JSON()["total"] != 0.0 {
		t.Errorf("a signed-in full scan: %d %s", r.Status, r.Body)
	}
	// Forty anonymous scans at once, each with a new literal (no cache):
	// none succeeds past its budget, and a signed-in caller is served.
	var wg sync.WaitGroup
	codes := make([]int, 40)
	for i := range codes {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = search(fmt.Sprintf("zz-burst-%d", i)).Status }()
	}
	if r := s.Do("GET", "/api/collections/notes/records?limit=5", nil, "admin"); r.Status != 200 {
		t.Errorf("a signed-in list during the burst: %d", r.Status)
	}
	wg.Wait()
	for i, c := range codes {
		if c != 503 {
			t.Errorf("anonymous scan %d: %d", i, c)
		}
	}
}
