package query_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/store/storetest"
)

var seeds = []string{
	`views > 100 && title.startsWith("Go")`, `name == "a" || n >= 3`, `!(n in [1, 2, 3])`, `has(doc)`,
	`at > timestamp("2024-01-01T00:00:00Z")`, `ok`, `!ok && kind != "a"`, `ref == null`, `x < 1.5`,
	`name.contains("a") || name.endsWith("z")`, `1 < n`, `(`, `n > "x"`, `size(name) > 1`, `doc > 1`,
}

func compiler(t testing.TB) *query.Compiler {
	c, err := query.NewCompiler(storetest.Fixture().Collections[0])
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCompileErrors(t *testing.T) {
	comp := compiler(t)
	for _, src := range []string{`(`, `n > "x"`, `size(name) > 1`, `doc > 1`, `views > 1`, `name`, `1`, `n == n`,
		`name.startsWith(name)`, strings.Repeat("(", 100) + "true" + strings.Repeat(")", 100), strings.Repeat("x", 5000)} {
		_, err := comp.Compile(src)
		e := mantle.AsError(err)
		if e == nil || e.Code != mantle.Invalid || e.Reason != "query.invalid_filter" {
			t.Errorf("%.40q: %v, want invalid/query.invalid_filter", src, err)
		}
	}
}

func TestNegationNormalForm(t *testing.T) {
	comp := compiler(t)
	e, err := comp.Compile(`!(n > 1 && name == "a")`)
	if err != nil {
		t.Fatal(err)
	}
	// !(a && b) == !a || !b, and !(n > 1) keeps null n.
	or, ok := e.(query.Or)
	if !ok {
		t.Fatalf("%#v", e)
	}
	if _, ok := or.L.(query.Or); !ok { // (n <= 1 || n IS NULL)
		t.Errorf("left %#v", or.L)
	}
	if c, ok := or.R.(query.Cmp); !ok || c.Op != query.Ne {
		t.Errorf("right %#v", or.R)
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	comp := compiler(f)
	f.Fuzz(func(t *testing.T, src string) {
		e, err := comp.Compile(src)
		if err != nil {
			if me := mantle.AsError(err); me == nil || me.Code != mantle.Invalid {
				t.Fatalf("%q: error %v is not invalid", src, err)
			}
			return
		}
		// Negation must be an involution on what matches.
		get := func(string) any { return nil }
		if query.Eval(e, get) == query.Eval(query.Negate(e), get) {
			t.Fatalf("%q: e and !e agree on an empty record", src)
		}
	})
}

// The documented limits are the ones enforced: up to 4,096 bytes, 100
// `in` values and 32 levels pass; one more of any is refused.
func TestDocumentedLimits(t *testing.T) {
	comp := compiler(t)
	ids := make([]string, 101)
	for i := range ids {
		ids[i] = fmt.Sprintf("%q", fmt.Sprintf("01jd3xk9v6q8w2m4n5p7r9s%03d", i))
	}
	in100 := "name in [" + strings.Join(ids[:100], ", ") + "]"
	long := in100 + strings.Repeat(" ", query.MaxFilterLength-len(in100))
	nested := func(n int) string { return strings.Repeat("(", n) + "n > 1" + strings.Repeat(")", n) }
	for _, c := range []struct {
		src string
		ok  bool
	}{
		{in100, true}, {"name in [" + strings.Join(ids, ", ") + "]", false},
		{long, true}, {long + " ", false},
		{nested(30), true}, {nested(40), false},
		{`name == "` + strings.Repeat("ü", 1000) + `"`, true}, // 2,012 bytes, 1,012 code points
	} {
		_, err := comp.Compile(c.src)
		if (err == nil) != c.ok {
			t.Errorf("%d bytes (%.30q…): %v, want ok=%v", len(c.src), c.src, err, c.ok)
		}
	}
}
