package bench

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// Result is the outcome of one workload.
type Result struct {
	Target    string // "mantle" or "baseline"
	Workload  string
	Requests  int
	Errors    int
	Duration  time.Duration
	Latencies []time.Duration // sorted
	// Realtime only.
	Subscribers    int
	Expected       int
	Delivered      int
	WriteLatencies []time.Duration // sorted: from when each write was due to its answer
	// Quantiles, for results whose latencies were measured elsewhere (the
	// server): percentile → latency, used when Latencies is empty.
	Quantiles map[float64]time.Duration
	Note      string // printed in the notes column
}

// RPS is requests per second.
func (r *Result) RPS() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Duration.Seconds()
}

// Percentile returns the p-th percentile latency (0 < p <= 100).
func (r *Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 && r.Quantiles != nil {
		return r.Quantiles[p]
	}
	return percentile(r.Latencies, p)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

// Lost is the number of events some subscriber never received.
func (r *Result) Lost() int { return r.Expected - r.Delivered }

func merge(parts [][]time.Duration) []time.Duration {
	var out []time.Duration
	for _, p := range parts {
		out = append(out, p...)
	}
	slices.Sort(out)
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d.Microseconds())/1000) }

// Print writes results as a Markdown table.
func Print(w io.Writer, results []*Result) {
	fmt.Fprintln(w, "| target | workload | requests | errors | req/s | p50 ms | p90 ms | p99 ms | notes |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---|")
	for _, r := range results {
		notes := r.Note
		if r.Workload == "kafka" {
			notes = "events read over the Kafka protocol by franz-go, first offset to last (req/s = events/s)"
		}
		if r.Workload == "realtime" {
			notes = fmt.Sprintf("%d subscribers, %d/%d deliveries, %d lost (latency = write due to event received); writes answered p50 %s / p99 %s ms",
				r.Subscribers, r.Delivered, r.Expected, r.Lost(), ms(percentile(r.WriteLatencies, 50)), ms(percentile(r.WriteLatencies, 99)))
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %.0f | %s | %s | %s | %s |\n", r.Target, r.Workload, r.Requests, r.Errors,
			r.RPS(), ms(r.Percentile(50)), ms(r.Percentile(90)), ms(r.Percentile(99)), notes)
	}
}
