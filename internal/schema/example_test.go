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

// Integers beyond 2^53 are refused instead of rounded; -0 is 0; a lone
// UTF-16 surrogate escape in text becomes U+FFFD, as in encoding/json.
func ExampleCollection_Decode_numbers() {
	c := &schema.Collection{Name: "m", Fields: []*schema.Field{
		{Name: "n", Type: schema.Number}, {Name: "i", Type: schema.Number, Integer: true}, {Name: "t", Type: schema.Text}}}
	for _, body := range []string{`{"n": 9007199254740992}`, `{"n": 9007199254740993}`, `{"n": 1e300}`, `{"i": 1e300}`,
		`{"n": -0}`, `{"i": 2.5}`, `{"t": "\ud800x"}`} {
		raw := map[string]json.RawMessage{}
		json.Unmarshal([]byte(body), &raw)
		data, err := c.Decode(raw, false, "")
		if err != nil {
			fmt.Println(body, "→", err.Fields)
			continue
		}
		out, _ := json.Marshal(data)
		fmt.Println(body, "→", string(out))
	}
	// Output:
	// {"n": 9007199254740992} → {"n":9007199254740992}
	// {"n": 9007199254740993} → map[n:must be between -9007199254740992 and 9007199254740992 (2^53) to be kept exactly; send larger integers as text]
	// {"n": 1e300} → {"n":1e+300}
	// {"i": 1e300} → map[i:must be between -9007199254740992 and 9007199254740992 (2^53) to be kept exactly; send larger integers as text]
	// {"n": -0} → {"n":0}
	// {"i": 2.5} → map[i:must be an integer]
	// {"t": "\ud800x"} → {"t":"�x"}
}
