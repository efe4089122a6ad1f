// Command digest sums up the orders of the day before a time (the tick's,
// or data.before): the nightly digest automation invokes it and writes
// its answer down.
package main

import (
	"encoding/json"
	"time"

	"github.com/mantlehq/mantle/sdk/go/mantle"
)

func init() { mantle.Handle(digest) }

func main() { mantle.Main() }

func digest(inv *mantle.Invocation) (*mantle.Result, error) {
	var in struct{ Before string }
	json.Unmarshal(inv.Data, &in)
	end, err := time.Parse(time.RFC3339Nano, in.Before)
	if err != nil {
		end = time.Now()
	}
	start := end.Add(-24 * time.Hour)
	filter := `createdAt >= timestamp("` + start.UTC().Format(time.RFC3339Nano) + `") && createdAt < timestamp("` + end.UTC().Format(time.RFC3339Nano) + `")`
	count, total, big := 0, 0.0, 0
	cursor := ""
	for {
		page, err := mantle.Records("orders").List(mantle.Query{Filter: filter, Limit: 500, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, o := range page.Items {
			count++
			total += o.Number("total")
			if o.Number("total") > 1000 {
				big++
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	return mantle.JSON(200, map[string]any{"from": start.UTC().Format(time.RFC3339), "to": end.UTC().Format(time.RFC3339),
		"orders": count, "total": total, "big": big})
}
