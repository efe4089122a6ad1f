package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// The functions workloads (docs/BENCHMARKS.md, "Functions"), against the
// bench project served with MANTLE_BENCH_NATIVE=1:
//
//   - fn-wasm: POST /fn/echo, the echo function (a Go guest, a reactor),
//     which answers the JSON body back as it is;
//   - fn-native: POST /fn/native/echo, its twin written in Go inside
//     Mantle, through the same gateway, rule and invocation JSON;
//   - fn-wasm-decode, fn-native-decode: the same with ?decode=1, which
//     decodes the body with encoding/json and encodes an answer;
//   - fn-trigger: o.Rate creates per second on items for o.Duration; the
//     sink function's trigger lag (commit to call start) as the server
//     measures it, and whether every event reached it.
var fnWorkloads = map[string]bool{"fn-wasm": true, "fn-native": true, "fn-wasm-decode": true, "fn-native-decode": true, "fn-trigger": true}

// expandFunctions turns "functions" into its parts, the HTTP pair twice
// interleaved so that a drifting machine favours neither.
func expandFunctions(ws []string) []string {
	var out []string
	for _, w := range ws {
		if w == "functions" {
			out = append(out, "fn-native", "fn-wasm", "fn-native", "fn-wasm", "fn-native-decode", "fn-wasm-decode", "fn-trigger")
			continue
		}
		out = append(out, w)
	}
	return out
}

var fnBody = []byte(`{"account":"acc_1","amount":120.5,"country":"NL","note":"a benchmark payment"}`)

func (r *runner) fnRequest(c *conn, w string) bool {
	path := "/fn/echo"
	if strings.HasPrefix(w, "fn-native") {
		path = "/fn/native/echo"
	}
	if strings.HasSuffix(w, "-decode") {
		path += "?decode=1"
	}
	status, _, err := c.do("POST", path, fnBody)
	return err == nil && status == 200
}

type fnStatus struct {
	Name     string
	Calls    int64
	LagCount int64   `json:"triggerLagCount"`
	LagP50   float64 `json:"triggerLagP50ms"`
	LagP90   float64 `json:"triggerLagP90ms"`
	LagP99   float64 `json:"triggerLagP99ms"`
	Trigger  *struct {
		Cursor  int64
		Handled int64
	}
}

func (r *runner) functionStatus(ctx context.Context, name string) (*fnStatus, error) {
	status, body, err := r.do(ctx, "GET", strings.TrimRight(r.o.URL, "/")+"/api/functions", nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /api/functions: %d %s (pass an admin --token)", status, body)
	}
	var list struct{ Items []fnStatus }
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if list.Items[i].Name == name {
			return &list.Items[i], nil
		}
	}
	return nil, fmt.Errorf("the server has no function %q: serve examples/bench", name)
}

// fnTrigger writes items at o.Rate for o.Duration and reads the sink
// function's lag once it has handled every write.
func (r *runner) fnTrigger(ctx context.Context) (*Result, error) {
	before, err := r.functionStatus(ctx, "sink")
	if err != nil {
		return nil, err
	}
	o := r.o
	o.Collection = "items"
	var last, failed atomic.Int64
	res := &Result{}
	n, took, err := WriteAtRate(ctx, o, r.run, func(w Written) {
		if !w.OK {
			failed.Add(1)
			return
		}
		res.WriteLatencies = append(res.WriteLatencies, time.Duration(w.Ack-w.Due))
		for {
			l := last.Load()
			if w.Seq <= l || last.CompareAndSwap(l, w.Seq) {
				break
			}
		}
	})
	if err != nil {
		return nil, err
	}
	// Wait (up to 30s) for the trigger to pass the last write.
	var after *fnStatus
	for deadline := time.Now().Add(30 * time.Second); ; {
		if after, err = r.functionStatus(ctx, "sink"); err != nil {
			return nil, err
		}
		if after.Trigger != nil && after.Trigger.Cursor >= last.Load() || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // polling a server in another process: there is nothing to wait on
	}
	slices.Sort(res.WriteLatencies)
	res.Requests = int(after.Calls - before.Calls)
	res.Expected = int(n - failed.Load())
	res.Errors = int(failed.Load()) + max(res.Expected-res.Requests, 0)
	res.Duration = took
	res.Quantiles = map[float64]time.Duration{50: msDur(after.LagP50), 90: msDur(after.LagP90), 99: msDur(after.LagP99)}
	res.Note = fmt.Sprintf("%d writes at %d/s, %d handled by the trigger; latency = commit to the call's start (server-side, last %d events); writes answered p50 %s / p99 %s ms",
		res.Expected, o.Rate, res.Requests, min(after.LagCount, 10000), ms(percentile(res.WriteLatencies, 50)), ms(percentile(res.WriteLatencies, 99)))
	return res, nil
}

func msDur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }
