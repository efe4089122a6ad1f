package schema_test

import (
	"fmt"

	"github.com/mantlehq/mantle/internal/schema"
)

// Diff lists the steps between two schemas; destructive ones are marked.
func ExampleDiff() {
	v1 := &schema.Schema{Collections: []*schema.Collection{{Name: "posts", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text}, {Name: "legacy", Type: schema.Text},
	}}}}
	v2 := &schema.Schema{Collections: []*schema.Collection{{Name: "posts", Fields: []*schema.Field{
		{Name: "title", Type: schema.Text, Required: true}, {Name: "views", Type: schema.Number},
	}}}}
	for _, step := range schema.Diff(v1, v2) {
		fmt.Println(step)
	}
	// Output:
	// ! drop field posts.legacy (text)  [destructive]
	// ~ alter field posts.title (text -> text, required)
	// + add field posts.views (number)
}
