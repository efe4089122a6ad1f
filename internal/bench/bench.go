// Package bench is the load generator behind `mantle bench`: it preloads
// records, then drives create, get, list, mixed and realtime workloads
// against a running server with a fixed number of concurrent clients, and
// reports requests per second and latency percentiles. A bare net/http
// server that returns the same JSON shapes (Baseline) gives the loopback
// ceiling to compare with, measured in the same run.
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a run.
type Options struct {
	URL           string
	Collection    string        // default posts (the blog example)
	Workloads     []string      // create, get, list, mixed, realtime
	Concurrency   int           // default 32
	Duration      time.Duration // per workload; default 10s
	Warmup        time.Duration // default 1s
	Preload       int           // records before the run; default 5000
	BodyBytes     int           // default 300
	Token         string        // bearer token, if the collection needs one
	Subscribers   int           // realtime: SSE subscribers; default 100
	WSSubscribers int           // realtime: WebSocket subscribers besides; default 0
	Rate          int           // realtime writes per second; default 500
	RuleRecords   int           // rule workloads: records per collection; default 50000
	KafkaAddr     string        // kafka workload: the server's Kafka listener
	KafkaEvents   int           // kafka workload: events to preload and read; default 1,000,000; -1: read the log as it is
	Target        string        // label in the report
	// WriterCommand, when set, runs the realtime workload's writes in a
	// process of their own: the command and its first arguments (mantle
	// bench --realtime-writer); the run's settings are appended as flags.
	// WriteURL, when set, is where the realtime workload writes while its
	// subscribers follow URL: another node of a cluster, for cross-node
	// delivery latency.
	WriteURL      string
	WriterCommand []string
	Log           io.Writer
}

func (o *Options) defaults() {
	if o.Collection == "" {
		o.Collection = "posts"
	}
	if len(o.Workloads) == 0 {
		o.Workloads = []string{"create", "get", "list", "mixed", "realtime"}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup < 0 {
		o.Warmup = 0
	}
	if o.Preload < 0 {
		o.Preload = 0
	}
	if o.BodyBytes <= 0 {
		o.BodyBytes = 300
	}
	if o.Subscribers <= 0 {
		o.Subscribers = 100
	}
	if o.Rate <= 0 {
		o.Rate = 500
	}
	if o.KafkaEvents == 0 {
		o.KafkaEvents = 1_000_000
	}
	if o.RuleRecords <= 0 {
		o.RuleRecords = 50000
	}
	if o.Target == "" {
		o.Target = "mantle"
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

type runner struct {
	o      Options
	client *http.Client
	base   string // URL of the collection's records
	path   string // the same, without scheme and host
	ids    []string
	seq    atomic.Int64
	body   string
	run    string // unique per run, keeps titles unique across runs
	rules  *ruleState
}

// Run runs the workloads and returns their results.
func Run(ctx context.Context, o Options) ([]*Result, error) {
	o.defaults()
	o.Workloads = expandFunctions(o.Workloads)
	tr := &http.Transport{
		MaxIdleConns: o.Concurrency * 2, MaxIdleConnsPerHost: o.Concurrency * 2,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	r := &runner{o: o, client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		base: strings.TrimRight(o.URL, "/") + "/api/collections/" + o.Collection + "/records",
		body: strings.Repeat("x", o.BodyBytes), run: fmt.Sprintf("%x", rand.Uint32())}
	u, err := url.Parse(r.base)
	if err != nil {
		return nil, err
	}
	r.path = u.Path
	defer tr.CloseIdleConnections()
	if needsPosts(o.Workloads) {
		if err := r.preload(ctx); err != nil {
			return nil, err
		}
	}
	var results []*Result
	for _, w := range o.Workloads {
		fmt.Fprintf(o.Log, "%s: %s for %s with %d clients...\n", o.Target, w, o.Duration, o.Concurrency)
		var res *Result
		var err error
		switch w {
		case "create", "get", "list", "mixed":
			res, err = r.closedLoop(ctx, w)
		case "realtime":
			res, err = r.realtime(ctx)
		case "kafka":
			res, err = r.kafkaRead(ctx)
		case "fn-wasm", "fn-native", "fn-wasm-decode", "fn-native-decode":
			res, err = r.closedLoop(ctx, w)
		case "fn-trigger":
			res, err = r.fnTrigger(ctx)
		case "login":
			if err = r.rulesSetup(ctx); err == nil {
				res, err = r.loginWorkload(ctx)
			}
		default:
			if !ruleWorkloads[w] {
				return nil, fmt.Errorf("unknown workload %q: use create, get, list, mixed, realtime, kafka, functions, get-open, get-owned, list-open, list-owned or login", w)
			}
			if err = r.rulesSetup(ctx); err == nil {
				res, err = r.closedLoop(ctx, w)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", w, err)
		}
		res.Target, res.Workload = o.Target, w
		results = append(results, res)
	}
	return results, nil
}

func (r *runner) newRecord() []byte {
	n := r.seq.Add(1)
	return []byte(fmt.Sprintf(`{"title":"bench-%s-%d","body":"%s","views":%d}`, r.run, n, r.body, rand.IntN(10000)))
}

func (r *runner) do(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.o.Token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// preload creates o.Preload records with batches and keeps their ids.
func (r *runner) preload(ctx context.Context) error {
	const per = 500
	batchURL := strings.TrimRight(r.o.URL, "/") + "/api/batch"
	for left := r.o.Preload; left > 0; left -= per {
		n := min(per, left)
		var b bytes.Buffer
		b.WriteString(`{"ops":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"op":"create","collection":%q,"data":%s}`, r.o.Collection, r.newRecord())
		}
		b.WriteString("]}")
		status, body, err := r.do(ctx, "POST", batchURL, b.Bytes())
		if err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		if status != 200 {
			return fmt.Errorf("preload: status %d: %s", status, body)
		}
		var out struct{ Results []struct{ ID string } }
		if err := json.Unmarshal(body, &out); err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		for _, x := range out.Results {
			r.ids = append(r.ids, x.ID)
		}
	}
	if len(r.ids) == 0 {
		// Without a preload, get needs at least one record.
		status, body, err := r.do(ctx, "POST", r.base, r.newRecord())
		if err != nil || status != 201 {
			return fmt.Errorf("create a record: %d %s %v", status, body, err)
		}
		var x struct{ ID string }
		json.Unmarshal(body, &x)
		r.ids = append(r.ids, x.ID)
	}
	return nil
}

func needsPosts(ws []string) bool {
	for _, w := range ws {
		if !ruleWorkloads[w] && !fnWorkloads[w] && w != "kafka" {
			return true
		}
	}
	return false
}

// one issues a single request of a workload and reports whether it
// succeeded.
func (r *runner) one(c *conn, w string) bool {
	if ruleWorkloads[w] {
		return r.ruleRequest(c, w)
	}
	if fnWorkloads[w] {
		return r.fnRequest(c, w)
	}
	if w == "mixed" {
		switch x := rand.IntN(10); {
		case x < 6:
			w = "get"
		case x < 8:
			w = "list"
		default:
			w = "create"
		}
	}
	var status int
	var err error
	switch w {
	case "create":
		status, _, err = c.do("POST", r.path, r.newRecord())
		return err == nil && status == 201
	case "get":
		status, _, err = c.do("GET", r.path+"/"+r.ids[rand.IntN(len(r.ids))], nil)
	case "list":
		status, _, err = c.do("GET", fmt.Sprintf("%s?filter=views+%%3E+%d&sort=-views&limit=20", r.path, rand.IntN(10000)), nil)
	}
	return err == nil && status == 200
}

// closedLoop runs Concurrency clients, each sending its next request when
// the previous one is answered.
func (r *runner) closedLoop(ctx context.Context, w string) (*Result, error) {
	warm, cancelWarm := context.WithTimeout(ctx, r.o.Warmup)
	r.loop(warm, w, nil)
	cancelWarm()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	run, cancel := context.WithTimeout(ctx, r.o.Duration)
	defer cancel()
	res := &Result{}
	start := time.Now()
	parts := r.loop(run, w, res)
	res.Duration = time.Since(start)
	res.Latencies = merge(parts)
	res.Requests = len(res.Latencies)
	return res, nil
}

func (r *runner) loop(ctx context.Context, w string, res *Result) [][]time.Duration {
	parts := make([][]time.Duration, r.o.Concurrency)
	var errs atomic.Int64
	var wg sync.WaitGroup
	for c := 0; c < r.o.Concurrency; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			token := r.o.Token
			if ruleWorkloads[w] {
				token = r.rules.token
			}
			cn, err := newConn(r.o.URL, token)
			if err != nil {
				errs.Add(1)
				return
			}
			defer cn.close()
			for ctx.Err() == nil {
				t0 := time.Now()
				ok := r.one(cn, w)
				if ctx.Err() != nil {
					break // the deadline cut this request short: not a result
				}
				if !ok {
					errs.Add(1)
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			parts[c] = lat
		}(c)
	}
	wg.Wait()
	if res != nil {
		res.Errors = int(errs.Load())
	}
	return parts
}
