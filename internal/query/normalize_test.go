package query

import (
	"reflect"
	"testing"

	"github.com/mantlehq/mantle/internal/schema"
)

func testCollection() *schema.Collection {
	max := 100.0
	return &schema.Collection{Name: "t", Fields: []*schema.Field{
		{Name: "name", Type: schema.Text, Max: &max}, {Name: "n", Type: schema.Number, Integer: true},
		{Name: "x", Type: schema.Number}, {Name: "ok", Type: schema.Bool}, {Name: "at", Type: schema.Datetime},
		{Name: "doc", Type: schema.JSON}, {Name: "kind", Type: schema.Select, Values: []string{"a", "b"}},
	}}
}

var templateSeeds = []string{
	`n > 5`, `5 < n`, `n > -5`, `x >= 1.25 && name == "a b"`, `name in ["x", 'y', "z"]`, `name.startsWith("Go")`,
	`at > timestamp("2024-01-01T00:00:00Z")`, `n == 1u`, `n == 0x10`, `name == "a\"b"`, `name == r"raw"`,
	`name == """t"""`, `n2 > 1`, `n > 1e3`, `n > 1.`, `name == "x" || n in [1, 2.5, -3]`, `has(n) && n != 0`,
	`name == "unterminated`, `-n > 1`, `n > "5"`, `name == 5`, `kind == "a"`, `name.contains("") `,
}

// TestTemplatesMatchDirect checks that compiling through templates gives
// exactly what compiling the filter as written gives.
func TestTemplatesMatchDirect(t *testing.T) {
	c, _ := NewCompiler(testCollection())
	for _, src := range templateSeeds {
		checkSame(t, c, src)
	}
	// A template is shared: the second filter must not reuse the first's values.
	a, _ := c.Compile(`n > 1`)
	b, _ := c.Compile(`n > 2`)
	if reflect.DeepEqual(a, b) {
		t.Error("two filters with different values compiled alike")
	}
}

func checkSame(t *testing.T, c *Compiler, src string) {
	t.Helper()
	got, err1 := c.Compile(src)
	want, err2 := c.compileDirect(src)
	if (err1 == nil) != (err2 == nil) {
		t.Fatalf("%q: template error %v, direct error %v", src, err1, err2)
	}
	if err1 != nil && err1.Error() != err2.Error() {
		t.Fatalf("%q: template error %q, direct error %q", src, err1, err2)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: template %#v, direct %#v", src, got, want)
	}
}

func FuzzTemplatesMatchDirect(f *testing.F) {
	for _, s := range templateSeeds {
		f.Add(s)
	}
	c, _ := NewCompiler(testCollection())
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > MaxFilterLength {
			return
		}
		checkSame(t, c, src)
	})
}
