package sqlite_test

import (
	"slices"
	"testing"

	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/store/storetest"
)

// FuzzFilterSQLMatchesEval checks, for any filter that compiles, that
// SQLite and the in-memory evaluator select the same records (the suite's
// FilterMatchesEval runs the seeds).
func FuzzFilterSQLMatchesEval(f *testing.F) {
	for _, s := range storetest.FilterSeeds {
		f.Add(s)
	}
	db := openTB(f)
	c, recs := storetest.FilterFixture(f, db)
	comp, _ := query.NewCompiler(c)
	f.Fuzz(func(t *testing.T, src string) {
		e, err := comp.Compile(src)
		if err != nil {
			return
		}
		sqlIDs, goIDs := storetest.MatchBoth(t, db, c, recs, e)
		if !slices.Equal(sqlIDs, goIDs) {
			t.Fatalf("%q: SQL %v, Go %v", src, sqlIDs, goIDs)
		}
	})
}
