package storetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// FilterSeeds are filters that exercise nulls, negations, text matching
// with wildcard characters, unicode, times and every field type.
var FilterSeeds = []string{
	`name.startsWith("alp")`, `name.startsWith("")`, `name.endsWith("a")`, `name.contains("%")`, `name.contains("_")`,
	`name.startsWith("a\\")`, `name > "alpha"`, `!(n > 1)`, `n != 1`, `!(name in ["alpha", "alp"])`, `ok`, `!ok`,
	`kind == "a" || x >= 2`, `at >= timestamp("2024-01-01T02:00:00Z")`, `has(doc) && !has(n)`, `version in [1, 3]`,
	`name.endsWith("日本")`, `!name.contains("l")`, `id > "r03" && id <= "r07"`, `n == 0`, `x != 0.5`,
	`n > 1.5`, `n <= 2.5`, `n in [1, 2.5]`, `n != 2.5`,
}

// FilterFixture migrates s to Fixture and seeds records that exercise
// nulls, unicode, prefixes and every field type.
func FilterFixture(t testing.TB, s store.Store) (*schema.Collection, []*schema.Record) {
	t.Helper()
	sc := Fixture()
	c := sc.Collections[0]
	names := []string{"alpha", "Alpha", "alp", "b%_", "é日本", "", "z\u00ff", "a\\b", "ALPHA beta"}
	var recs []*schema.Record
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, n := range names {
		r := &schema.Record{ID: fmt.Sprintf("r%02d", i), CreatedAt: base, UpdatedAt: base, Version: int64(i%3 + 1), Data: map[string]any{"name": n}}
		if i%3 != 0 {
			r.Data["n"] = float64(i % 4)
			r.Data["x"] = float64(i) / 2
		}
		if i%2 == 0 {
			r.Data["ok"] = i%4 == 0
			r.Data["kind"] = []string{"a", "b"}[i%4/2]
			r.Data["at"] = base.Add(time.Duration(i) * time.Hour)
			r.Data["doc"] = json.RawMessage(`[1]`)
		}
		recs = append(recs, r)
	}
	err := s.Write(ctx, func(tx store.Tx) error {
		if err := tx.Migrate(nil, sc, schema.Diff(nil, sc)); err != nil {
			return err
		}
		for _, r := range recs {
			if err := tx.Insert(c, r); err != nil {
				return err
			}
		}
		return tx.Append(&eventlog.Event{Type: "test", Time: base})
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, recs
}

// MatchBoth returns the ids a filter selects in the store and in Go.
func MatchBoth(t testing.TB, s store.Store, c *schema.Collection, recs []*schema.Record, e query.Expr) (storeIDs, goIDs []string) {
	t.Helper()
	sort, _ := query.ParseSort(c, "")
	p, err := s.List(ctx, c, &query.Query{Filter: e, Sort: sort, Limit: 1000})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, r := range p.Records {
		storeIDs = append(storeIDs, r.ID)
	}
	for _, r := range recs {
		if query.Eval(e, func(n string) any { return query.Value(r, n) }) {
			goIDs = append(goIDs, r.ID)
		}
	}
	return storeIDs, goIDs
}

// testFilterMatchesEval checks that the store's SQL and the in-memory
// evaluator select the same records: realtime filters and list filters
// agree.
func testFilterMatchesEval(t *testing.T, s store.Store) {
	c, recs := FilterFixture(t, s)
	comp, _ := query.NewCompiler(c)
	for _, src := range FilterSeeds {
		e, err := comp.Compile(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		storeIDs, goIDs := MatchBoth(t, s, c, recs, e)
		if !slices.Equal(storeIDs, goIDs) {
			t.Errorf("%s: store %v, Go %v", src, storeIDs, goIDs)
		}
	}
}

// testEncodedRows checks that a list's encoded rows are byte for byte what
// schema.AppendJSON writes for its records.
func testEncodedRows(t *testing.T, s store.Store) {
	c, _ := FilterFixture(t, s)
	sort, _ := query.ParseSort(c, "-n")
	for _, only := range []map[string]bool{nil, {"id": true, "name": true, "at": true}, {"id": true, "createdAt": true, "version": true, "doc": true, "ok": true, "x": true}} {
		q := &query.Query{Filter: query.Const{Value: true}, Sort: sort, Limit: 100, Fields: only}
		plain, err := s.List(ctx, c, q)
		if err != nil {
			t.Fatal(err)
		}
		q.Encode = true
		enc, err := s.List(ctx, c, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc.JSON) != len(plain.Records) || len(plain.Records) == 0 {
			t.Fatalf("%d encoded rows, %d records", len(enc.JSON), len(plain.Records))
		}
		for i, r := range plain.Records {
			want := string(c.AppendJSON(nil, r, only, nil))
			if got := string(enc.JSON[i]); got != want {
				t.Errorf("row %d:\n got  %s\n want %s", i, got, want)
			}
			if !json.Valid(enc.JSON[i]) {
				t.Errorf("row %d is not valid JSON: %s", i, enc.JSON[i])
			}
		}
	}
}
