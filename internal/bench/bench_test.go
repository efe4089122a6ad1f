package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
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

// TestBaselineFansOut runs the realtime workload against the baseline: its
// SSE and WebSocket subscribers must each receive every write's event.
func TestBaselineFansOut(t *testing.T) {
	hs := httptest.NewServer(bench.Baseline(300))
	defer hs.Close()
	results, err := bench.Run(context.Background(), bench.Options{URL: hs.URL, Duration: 300 * time.Millisecond, Warmup: -1,
		Workloads: []string{"realtime"}, Subscribers: 5, WSSubscribers: 3, Rate: 100, Target: "baseline"})
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if r.Errors != 0 || r.Expected == 0 || r.Lost() != 0 || r.Subscribers != 8 || r.Delivered != r.Expected {
		t.Fatalf("baseline realtime: %d errors, %d subscribers, %d of %d deliveries", r.Errors, r.Subscribers, r.Delivered, r.Expected)
	}
}

// TestBaselineEventShape checks that the baseline streams the CloudEvent
// Mantle would send for a create, so that the two move the same bytes.
func TestBaselineEventShape(t *testing.T) {
	hs := httptest.NewServer(bench.Baseline(300))
	defer hs.Close()
	resp, err := http.Post(hs.URL+"/api/collections/posts/records", "application/json", strings.NewReader(`{"title":"t1","views":3}`))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	json.NewDecoder(resp.Body).Decode(&rec)
	resp.Body.Close()
	if resp.StatusCode != 201 || resp.Header.Get("Mantle-Seq") != "1" || rec["title"] != "t1" || rec["version"] != 1.0 {
		t.Fatalf("create: %d, seq %q, %v", resp.StatusCode, resp.Header.Get("Mantle-Seq"), rec)
	}
	stream, err := http.Get(hs.URL + "/api/events/stream?after=0")
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	sc := bufio.NewScanner(stream.Body)
	var lines []string
	for len(lines) < 3 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 || lines[0] != "id: 1" || lines[1] != "event: record.created" || !strings.HasPrefix(lines[2], "data: ") {
		t.Fatalf("stream: %q", lines)
	}
	var ev struct {
		SpecVersion, Type, Subject, Source string
		Seq                                int64
		Data                               struct{ Record map[string]any }
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[2], "data: ")), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.SpecVersion != "1.0" || ev.Seq != 1 || ev.Type != "record.created" || ev.Subject != rec["id"] || ev.Source != "/collections/posts" || ev.Data.Record["title"] != "t1" {
		t.Fatalf("event: %+v", ev)
	}
}
