// Command count is an event-triggered function that keeps account_stats
// (the number and total of each account's transactions) up to date.
// Events arrive at least once and in order; the stats record keeps the
// last sequence it counted, so a redelivered event changes nothing.
package main

import (
	"fmt"

	"github.com/mantlehq/mantle/sdk/go/mantle"
)

func init() { mantle.Handle(count) }

func main() { mantle.Main() }

func count(inv *mantle.Invocation) (*mantle.Result, error) {
	ev := inv.Event
	if ev == nil {
		return nil, fmt.Errorf("count runs on transaction events")
	}
	var tx struct {
		Account string  `json:"account"`
		Amount  float64 `json:"amount"`
	}
	if err := ev.Record(&tx); err != nil {
		return nil, err
	}
	delta := 1.0
	if ev.Type == "record.deleted" {
		delta = -1
	}
	stats := mantle.Records("account_stats")
	page, err := stats.List(mantle.Query{Filter: "account == " + mantle.Quote(tx.Account), Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(page.Items) == 0 {
		_, err := stats.Create(map[string]any{"account": tx.Account, "count": max(delta, 0), "total": max(delta, 0) * tx.Amount, "lastSeq": ev.Seq})
		return nil, err
	}
	s := page.Items[0]
	if int64(s.Number("lastSeq")) >= ev.Seq {
		return nil, nil // counted already: a redelivery
	}
	_, err = stats.Update(s.ID(), map[string]any{
		"count": s.Number("count") + delta, "total": s.Number("total") + delta*tx.Amount, "lastSeq": ev.Seq}, 0)
	return nil, err
}
