package schema_test

import (
	"encoding/json"
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

// Decode checks incoming fields against the collection and names each bad
// one; a select field lists the values it takes.
func ExampleCollection_Decode() {
	posts := &schema.Collection{Name: "posts", Fields: []*schema.Field{
		{Name: "status", Type: schema.Select, Values: []string{"draft", "published"}},
	}}
	_, err := posts.Decode(map[string]json.RawMessage{"status": json.RawMessage(`"gone"`)}, false, "")
	fmt.Println(err.Fields["status"])
	// Output:
	// must be one of "draft", "published"
}
