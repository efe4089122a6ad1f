package query_test

import (
	"fmt"

	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
)

// A filter compiles into a typed expression that a store renders as SQL
// and that Eval runs in memory with the same meaning.
func ExampleCompiler_Compile() {
	posts := &schema.Collection{Name: "posts", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text},
		{Name: "views", Type: schema.Number, Integer: true},
	}}
	comp, _ := query.NewCompiler(posts)
	expr, err := comp.Compile(`views > 100 && title.startsWith("Go")`)
	if err != nil {
		fmt.Println(err)
		return
	}
	record := map[string]any{"title": "Go in practice", "views": 250.0}
	fmt.Println(query.Eval(expr, func(field string) any { return record[field] }))

	_, err = comp.Compile(`views > "many"`)
	fmt.Println(err)
	// Output:
	// true
	// invalid (query.invalid_filter): invalid filter: the value many does not match the field type number
}
