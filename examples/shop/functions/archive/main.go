// Command archive is a scheduled function: it moves transactions older
// than ARCHIVE_AFTER (a Go duration) from transactions to
// archived_transactions. It is safe to run twice: a transaction archived
// already (unique originalId) is only deleted.
package main

import (
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/mantlehq/mantle/sdk/go/mantle"
)

func init() { mantle.Handle(archive) }

func main() { mantle.Main() }

func archive(inv *mantle.Invocation) (*mantle.Result, error) {
	after, err := time.ParseDuration(os.Getenv("ARCHIVE_AFTER"))
	if err != nil {
		after = 30 * 24 * time.Hour
	}
	now := time.Now()
	if inv.Tick != nil {
		if t, err := time.Parse(time.RFC3339, inv.Tick.At); err == nil {
			now = t // the tick's own time: a late catch-up archives what the tick would have
		}
	}
	cutoff := now.Add(-after).UTC().Format(time.RFC3339Nano)
	var in struct{ Before string } // a manual run: mantle fn invoke archive --data '{"before": "…"}'
	if json.Unmarshal(inv.Data, &in) == nil && in.Before != "" {
		if _, err := time.Parse(time.RFC3339, in.Before); err != nil {
			return mantle.Text(400, "before is an RFC 3339 time"), nil
		}
		cutoff = in.Before
	}
	txs, archived := mantle.Records("transactions"), mantle.Records("archived_transactions")
	moved := 0
	for {
		page, err := txs.List(mantle.Query{Filter: `createdAt < timestamp("` + cutoff + `")`, Sort: "createdAt", Limit: 100})
		if err != nil {
			return nil, err
		}
		for _, r := range page.Items {
			_, err := archived.Create(map[string]any{"originalId": r.ID(), "account": r["account"], "amount": r["amount"],
				"country": r["country"], "score": r["score"], "flagged": r["flagged"], "at": r["createdAt"]})
			var e *mantle.Error
			if err != nil && !(errors.As(err, &e) && e.Status == 409) { // 409: archived by an earlier run
				return nil, err
			}
			if err := txs.Delete(r.ID(), 0); err != nil && !mantle.NotFound(err) {
				return nil, err
			}
			moved++
		}
		if len(page.Items) < 100 {
			break
		}
	}
	mantle.Logf("archived %d transactions created before %s", moved, cutoff)
	return mantle.JSON(200, map[string]int{"archived": moved})
}
