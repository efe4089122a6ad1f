package fn_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/automation"
	"github.com/mantlehq/mantle/internal/fn"
)

// TestShopExample builds and runs the functions and automations of
// examples/shop: fraud scoring over HTTP, the counter kept by an event
// trigger, archiving, and the sign-up and digest automations.
func TestShopExample(t *testing.T) {
	runs := make(chan fn.Run, 100)
	autos := make(chan automation.Run, 100)
	s := apptest.StartDirWith(t, "../../examples/shop", filepath.Join(t.TempDir(), "data"), nil, func(a *app.App) {
		a.Funcs.OnRun(func(r fn.Run) { runs <- r })
		a.Autos.OnRun(func(r automation.Run) { autos <- r })
	})
	uid, user := s.User("shopper@example.com")
	if r := waitAuto(t, autos, "signup_profile"); !r.OK {
		t.Fatalf("signup_profile: %+v", r)
	}
	if r := s.Do("GET", "/api/collections/profiles/records", nil, user); !strings.Contains(string(r.Body), `"user":"`+uid+`"`) {
		t.Fatalf("the sign-up made no profile: %s", r.Body)
	}

	// Score three payments: the first is new, the last far above the usual
	// and from a new country.
	var last map[string]any
	for _, p := range []string{`{"account":"acc_9","amount":20,"country":"NL"}`, `{"account":"acc_9","amount":25,"country":"NL"}`,
		`{"account":"acc_9","amount":9000,"country":"BR"}`} {
		r := s.Do("POST", "/fn/score", p, user)
		if r.Status != 201 {
			t.Fatalf("score: %d %s", r.Status, r.Body)
		}
		last = r.JSON()
	}
	if last["flagged"] != true || last["score"].(float64) < 0.7 {
		t.Fatalf("the big payment from a new country was not flagged: %v", last)
	}
	apptest.CheckProblem(t, s.Do("POST", "/fn/score", `{"account":"a","amount":1}`), "unauthenticated", "auth.required", nil)
	if r := s.Do("GET", "/api/collections/transactions/records", nil, user); r.Status == 200 {
		t.Fatalf("a shopper read the payments: %s", r.Body)
	}
	// count ran once per payment, in order; the stats add up.
	for range 3 {
		if r := waitFn(t, runs, "count"); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	r := s.Do("GET", "/api/collections/account_stats/records?filter=account+%3D%3D+%22acc_9%22", nil)
	var stats struct{ Items []map[string]any }
	json.Unmarshal(r.Body, &stats)
	if len(stats.Items) != 1 || stats.Items[0]["count"] != 3.0 || stats.Items[0]["total"] != 9045.0 {
		t.Fatalf("account_stats: %s", r.Body)
	}

	// Archive everything created before now.
	r = s.Do("POST", "/api/functions/archive/invoke", map[string]any{"before": time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}, "admin")
	if r.Status != 200 || !strings.Contains(string(r.Body), `"archived":3`) {
		t.Fatalf("archive: %d %s", r.Status, r.Body)
	}
	if r := s.Do("GET", "/api/collections/archived_transactions/records", nil, "admin"); strings.Count(string(r.Body), `"originalId"`) != 3 {
		t.Fatalf("archived: %s", r.Body)
	}

	// Orders, then the nightly digest through its hook.
	for _, total := range []float64{10, 90} {
		if r := s.Do("POST", "/api/collections/orders/records", map[string]any{"customer": uid, "total": total}, user); r.Status != 201 {
			t.Fatalf("order: %d %s", r.Status, r.Body)
		}
	}
	r = s.Do("POST", "/api/automations/nightly_digest/run", nil, "admin")
	if r.Status != 200 {
		t.Fatalf("digest: %d %s", r.Status, r.Body)
	}
	r = s.Do("GET", "/api/collections/digests/records", nil, "admin")
	if !strings.Contains(string(r.Body), `"orders":2`) || !strings.Contains(string(r.Body), `"total":100`) {
		t.Fatalf("digests: %s", r.Body)
	}
}

func waitFn(t *testing.T, runs chan fn.Run, name string) fn.Run {
	t.Helper()
	return waitRuns(t, runs, name, 1)[0]
}

func waitAuto(t *testing.T, runs chan automation.Run, name string) automation.Run {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case r := <-runs:
			if r.Automation == name {
				return r
			}
		case <-timeout:
			t.Fatalf("no run of %s in 30s", name)
		}
	}
}
