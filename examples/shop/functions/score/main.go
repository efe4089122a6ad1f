// Command score is an HTTP function that scores a payment for fraud from
// the recent payments of the same account, records it, and emits
// payment.flagged when the score reaches FLAG_AT.
package main

import (
	"math"
	"os"
	"strconv"
	"time"

	"github.com/mantlehq/mantle/sdk/go/mantle"
)

func init() { mantle.Handle(score) }

func main() { mantle.Main() }

type payment struct {
	Account string  `json:"account"`
	Amount  float64 `json:"amount"`
	Country string  `json:"country"`
}

func score(inv *mantle.Invocation) (*mantle.Result, error) {
	var p payment
	if err := inv.Request.JSON(&p); err != nil || p.Account == "" || p.Amount <= 0 {
		return mantle.JSON(400, map[string]string{"error": `send {"account": "…", "amount": 12.5, "country": "NL"}`})
	}
	page, err := mantle.Records("transactions").List(mantle.Query{
		Filter: "account == " + mantle.Quote(p.Account), Sort: "-createdAt", Limit: 50})
	if err != nil {
		return nil, err
	}
	s, reasons := assess(p, page.Items, time.Now())
	flagAt, _ := strconv.ParseFloat(os.Getenv("FLAG_AT"), 64)
	if flagAt == 0 {
		flagAt = 0.7
	}
	flagged := s >= flagAt
	rec, err := mantle.Records("transactions").Create(map[string]any{
		"account": p.Account, "amount": p.Amount, "country": p.Country, "score": s, "flagged": flagged})
	if err != nil {
		return nil, err
	}
	if flagged {
		if _, err := mantle.Emit("payment.flagged", rec.ID(), map[string]any{"account": p.Account, "score": s, "reasons": reasons}); err != nil {
			return nil, err
		}
	}
	return mantle.JSON(201, map[string]any{"id": rec.ID(), "score": s, "flagged": flagged, "reasons": reasons})
}

// assess scores p against the account's history: an amount far above
// its usual, many payments in the last hour, or a country never seen.
func assess(p payment, history []mantle.Record, now time.Time) (float64, []string) {
	reasons := []string{}
	if len(history) == 0 {
		return 0.3, append(reasons, "first payment of the account")
	}
	var sum, sq float64
	countries := map[string]bool{}
	recent := 0
	for _, r := range history {
		a := r.Number("amount")
		sum += a
		sq += a * a
		countries[r.String("country")] = true
		if t, err := time.Parse(time.RFC3339Nano, r.String("createdAt")); err == nil && now.Sub(t) < time.Hour {
			recent++
		}
	}
	n := float64(len(history))
	mean := sum / n
	std := math.Sqrt(math.Max(sq/n-mean*mean, 0))
	s := 0.0
	if z := (p.Amount - mean) / math.Max(std, mean*0.25+1); z > 3 {
		s += 0.5
		reasons = append(reasons, "amount far above the account's usual")
	}
	if recent >= 10 {
		s += 0.3
		reasons = append(reasons, strconv.Itoa(recent)+" payments in the last hour")
	}
	if p.Country != "" && !countries[p.Country] {
		s += 0.3
		reasons = append(reasons, "a country the account never paid from")
	}
	return math.Min(s, 1), reasons
}
