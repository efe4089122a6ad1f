package bench_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/bench"
)

const project = `
name: bench
collections:
  posts:
    fields:
      title: { type: text, required: true }
      body:  { type: text }
      views: { type: number, integer: true }
    indexes:
      - fields: [views]
    rules: { list: "true", view: "true", create: "true" }
`

// TestWorkloads runs every workload briefly against a real server and
// checks that requests succeeded and realtime lost nothing.
func TestWorkloads(t *testing.T) {
	s := apptest.Start(t, project)
	results, err := bench.Run(context.Background(), bench.Options{
		URL: s.URL, Concurrency: 4, Duration: 300 * time.Millisecond, Warmup: -1, Preload: 600,
		Subscribers: 5, WSSubscribers: 3, Rate: 100,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 5 {
		t.Fatalf("%d results", len(results))
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %d requests, %d errors", r.Workload, r.Requests, r.Errors)
		}
		if r.Workload == "realtime" && (r.Lost() != 0 || r.Expected == 0 || r.Subscribers != 8 || len(r.Latencies) != r.Delivered) {
			t.Errorf("realtime: %d subscribers (SSE and WebSocket), %d of %d deliveries lost, %d latencies",
				r.Subscribers, r.Lost(), r.Expected, len(r.Latencies))
		}
	}
	var out bytes.Buffer
	bench.Print(&out, results)
	if !strings.Contains(out.String(), "| mantle | list |") {
		t.Errorf("report:\n%s", out.String())
	}
}

// TestBaselineAnswersBenchRequests runs the closed-loop workloads against
// the baseline handler.
func TestBaselineAnswersBenchRequests(t *testing.T) {
	hs := httptest.NewServer(bench.Baseline(300))
	defer hs.Close()
	results, err := bench.Run(context.Background(), bench.Options{URL: hs.URL, Concurrency: 2,
		Duration: 100 * time.Millisecond, Warmup: -1, Preload: 10, Workloads: []string{"create", "get", "list", "mixed"}, Target: "baseline"})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Requests == 0 || r.Errors != 0 {
			t.Errorf("baseline %s: %d requests, %d errors", r.Workload, r.Requests, r.Errors)
		}
	}
}
