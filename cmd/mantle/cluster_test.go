package main_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mantlehq/mantle/internal/fn/fntest"
	"github.com/mantlehq/mantle/internal/testenv"
	"github.com/mantlehq/mantle/internal/testenv/natstest"
	"github.com/mantlehq/mantle/internal/webhook"
)

// clusterProject has a webhook, a function and an automation on item
// creations: the work that must happen once per event across the cluster.
const clusterProject = crashProject + `
  audits:
    fields:
      item: { type: text, required: true }
    rules: { list: "true", view: "true", create: "true" }
  fnlog:
    fields:
      item: { type: text, required: true }
    rules: { list: "true", view: "true", create: "true" }
functions:
  fnlog:
    module: functions/fnlog
    on: [items.record.created]
    retryMin: 10ms
    retryMax: 200ms
automations:
  audit_items:
    on: items.record.created
    do:
      - create:
          collection: audits
          data: { item: "record.id" }
webhooks:
  items:
    url: RECEIVER
    collections: [items]
    types: [record.created]
    retryMin: 10ms
    retryMax: 200ms
`

// fnlogSource is an event-triggered function that records each item it
// is called for.
const fnlogSource = `package main

import "github.com/mantlehq/mantle/sdk/go/mantle"

func init() { mantle.Handle(logItem) }

func main() { mantle.Main() }

func logItem(inv *mantle.Invocation) (*mantle.Result, error) {
	var item struct {
		ID string ` + "`json:\"id\"`" + `
	}
	if err := inv.Event.Record(&item); err != nil {
		return nil, err
	}
	_, err := mantle.Records("fnlog").Create(map[string]any{"item": item.ID})
	return nil, err
}
`

// writeFunction writes the fnlog function into a project folder, its
// go.mod pointing at this repository's SDK.
func writeFunction(t *testing.T, project string) {
	t.Helper()
	sdk, err := filepath.Abs("../../sdk/go")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(project, "functions", "fnlog")
	os.MkdirAll(dir, 0o755)
	gomod := "module clusterfn\n\ngo 1.24\n\nrequire github.com/mantlehq/mantle/sdk/go v0.0.0\n\nreplace github.com/mantlehq/mantle/sdk/go => " + sdk + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(fnlogSource), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startNode runs `mantle serve` as one node of a cluster. The nodes share
// the tests' compilation cache, so the function compiles once.
func startNode(t *testing.T, bin, project, store, natsURL, cluster, node string) *server {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--project", project, "--data", filepath.Join(t.TempDir(), node),
		"--http", "127.0.0.1:0", "--store", store, "--nats", natsURL, "--cluster", cluster, "--node", node,
		"--wasm-cache", fntest.CacheDir())
	cmd.Env = append(os.Environ(), "MANTLE_ADMIN_TOKEN="+adminToken, "MANTLE_WEBHOOK_ALLOW_PRIVATE=true")
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	var logs strings.Builder
	var logMu sync.Mutex
	go func() {
		b, _ := io.ReadAll(stderr)
		logMu.Lock()
		logs.Write(b)
		logMu.Unlock()
	}()
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			logMu.Lock()
			t.Logf("node %s log:\n%s", node, logs.String())
			logMu.Unlock()
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("node %s did not start: %v", node, err)
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("unexpected first line: %q", line)
	}
	s.url = strings.Fields(line[i:])[0]
	go io.Copy(io.Discard, stdout)
	return s
}

// sseSeqs follows a node's event stream from the start and sends each
// event's sequence to out until the stream ends.
func sseSeqs(ctx context.Context, url string, out chan<- int64) {
	defer close(out)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/events/stream?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			n, _ := strconv.ParseInt(id, 10, 64)
			out <- n
		}
	}
}

// TestCluster runs three nodes as real processes on one PostgreSQL and one
// NATS. Writes go to every node; a subscriber on each node must see every
// event exactly once, in order; one node is killed with SIGKILL mid-load
// and no acknowledged write is lost; the webhook and the automation act
// once per event across the cluster (duplicates only in the one window
// where the dead node's work was handed over, and deduplicable by id).
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the three-process cluster test in -short mode")
	}
	pgURL, natsURL := testenv.PostgresURL(t), natstest.URL(t)
	r := make([]byte, 5)
	rand.Read(r)
	name := "cluster_" + hex.EncodeToString(r)
	t.Cleanup(func() {
		if c, err := pgx.Connect(context.Background(), pgURL); err == nil {
			c.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+name+` CASCADE`)
			c.Close(context.Background())
		}
		if nc, err := nats.Connect(natsURL); err == nil {
			js, _ := jetstream.New(nc)
			for _, n := range []string{name, name + "_typo"} {
				js.DeleteStream(context.Background(), strings.ToUpper(n)+"_LOG")
				js.DeleteKeyValue(context.Background(), n+"_leases")
			}
			nc.Close()
		}
	})
	store := pgURL + "&search_path=" + name
	if !strings.Contains(pgURL, "?") {
		store = pgURL + "?search_path=" + name
	}

	// The webhook receiver: it verifies each signature with the secret the
	// nodes share (generated once, kept in the database) and counts
	// deliveries per webhook-id.
	var (
		recvMu    sync.Mutex
		secret    []byte
		firstSeen []int64            // seqs in order of first arrival
		arrivals  = map[string]int{} // webhook-id -> deliveries
		badSig    int
		recvWake  = make(chan struct{}, 1)
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		n, _ := strconv.ParseInt(ts, 10, 64)
		recvMu.Lock()
		defer recvMu.Unlock()
		if secret == nil {
			w.WriteHeader(503) // not ready yet: the node retries
			return
		}
		if r.Header.Get("webhook-signature") != webhook.Sign(secret, id, n, body) {
			badSig++
		}
		var ev struct{ Seq int64 }
		json.Unmarshal(body, &ev)
		if arrivals[id] == 0 {
			firstSeen = append(firstSeen, ev.Seq)
		}
		arrivals[id]++
		select {
		case recvWake <- struct{}{}:
		default:
		}
		w.WriteHeader(204)
	}))
	defer recv.Close()

	bin := buildMantle(t)
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "mantle.yaml"), []byte(strings.Replace(clusterProject, "RECEIVER", recv.URL, 1)), 0o644)
	writeFunction(t, project)
	var nodes []*server
	for i := range 3 {
		nodes = append(nodes, startNode(t, bin, project, store, natsURL, name, fmt.Sprintf("n%d", i+1)))
	}
	// A node started with another --cluster name on the same database would
	// run every webhook, automation and schedule a second time: it refuses.
	stray := exec.Command(bin, "serve", "--project", project, "--data", filepath.Join(t.TempDir(), "stray"),
		"--http", "127.0.0.1:0", "--store", store, "--nats", natsURL, "--cluster", name+"_typo", "--node", "stray",
		"--wasm-cache", fntest.CacheDir())
	stray.Env = append(os.Environ(), "MANTLE_ADMIN_TOKEN="+adminToken, "MANTLE_WEBHOOK_ALLOW_PRIVATE=true")
	if out, err := stray.CombinedOutput(); err == nil || !strings.Contains(string(out), "is run by the cluster") {
		t.Errorf("a node of another cluster on the same database: %v %s", err, out)
	}
	for i, n := range nodes {
		var ready struct {
			Status string
			Checks map[string]string
		}
		if code := getJSON(t, n.url+"/api/ready", &ready); code != 200 || ready.Checks["bus"] != "ok" || ready.Checks["store"] != "ok" {
			t.Fatalf("node %d not ready: %d %+v", i+1, code, ready)
		}
	}
	func() {
		c, err := pgx.Connect(context.Background(), pgURL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(context.Background())
		var raw string
		if err := c.QueryRow(context.Background(), `SELECT convert_from(value, 'UTF8') FROM `+name+`._mantle_secrets WHERE kind = 'webhook_secret' AND key = 'items'`).Scan(&raw); err != nil {
			t.Fatalf("the shared webhook secret: %v", err)
		}
		key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(raw, "whsec_"))
		recvMu.Lock()
		secret = key
		recvMu.Unlock()
	}()

	// A subscriber on each node, from the start of the log.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subs := make([]chan int64, 3)
	for i, n := range nodes {
		subs[i] = make(chan int64, 100000)
		go sseSeqs(ctx, n.url, subs[i])
	}

	// Writers spread over the nodes. After 300 acknowledged creates the
	// node that holds the webhook's lease (so the work must be handed
	// over) dies, and its writers move on to the others.
	const total = 900
	var (
		mu     sync.Mutex
		acked  = map[string]int64{} // id -> seq
		killed = make(chan struct{})
		victim = -1
		once   sync.Once
	)
	holder := func() int {
		nc, err := nats.Connect(natsURL)
		if err != nil {
			t.Error(err)
			return 0
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		kv, err := js.KeyValue(context.Background(), name+"_leases")
		if err != nil {
			t.Error(err)
			return 0
		}
		e, err := kv.Get(context.Background(), "webhook.items")
		if err != nil {
			t.Errorf("the webhook's lease: %v", err)
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(string(e.Value()), "n"))
		return n - 1
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				mu.Lock()
				done := len(acked) >= total
				mu.Unlock()
				if done {
					return
				}
				node := nodes[(w+i)%3]
				select {
				case <-killed:
					if k := (w + i) % 3; k == victim {
						node = nodes[(k+1)%3]
					}
				default:
				}
				body := fmt.Sprintf(`{"name":"w%d-%d","n":%d}`, w, i, i)
				resp, err := client.Post(node.url+"/api/collections/items/records", "application/json", strings.NewReader(body))
				if err != nil {
					continue // the node died under this request: unacknowledged
				}
				var rec struct{ ID string }
				json.NewDecoder(resp.Body).Decode(&rec)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					t.Errorf("create on %s: %d", node.url, resp.StatusCode)
					return
				}
				seq, _ := strconv.ParseInt(resp.Header.Get("Mantle-Seq"), 10, 64)
				mu.Lock()
				acked[rec.ID] = seq
				if len(acked) == 300 {
					once.Do(func() {
						victim = holder()
						t.Logf("killing node n%d, which holds the webhook's lease", victim+1)
						nodes[victim].cmd.Process.Signal(syscall.SIGKILL)
						<-nodes[victim].done
						close(killed)
					})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// The whole log, read from a survivor.
	var last int64
	created := map[string]int64{} // item id -> created seq
	for after := int64(0); ; {
		var page struct {
			Events []struct {
				Seq     int64
				Type    string
				Source  string
				Subject string
			}
			LastSeq int64
		}
		getJSONAdmin(t, fmt.Sprintf("%s/api/events?limit=1000&after=%d", nodes[(victim+1)%3].url, after), &page)
		if len(page.Events) == 0 {
			break
		}
		for _, e := range page.Events {
			if e.Seq != last+1 {
				t.Fatalf("the log has seq %d after %d", e.Seq, last)
			}
			last = e.Seq
			if e.Type == "record.created" && e.Source == "/collections/items" {
				created[e.Subject] = e.Seq
			}
		}
		after = page.LastSeq
	}
	for id, seq := range acked {
		if created[id] != seq {
			t.Errorf("acknowledged create %s (seq %d) is not in the log as such (%d)", id, seq, created[id])
		}
	}
	t.Logf("%d acknowledged creates, %d created events, log ends at %d", len(acked), len(created), last)

	// Every surviving node's subscriber saw every event once, in order;
	// the dead node's saw an unbroken prefix.
	for i, ch := range subs {
		var got []int64
		timeout := time.After(30 * time.Second)
	read:
		for len(got) == 0 || got[len(got)-1] < last {
			select {
			case s, ok := <-ch:
				if !ok {
					break read
				}
				got = append(got, s)
			case <-timeout:
				break read
			}
		}
		for k, s := range got {
			if s != int64(k+1) {
				t.Fatalf("node %d's subscriber: seq %d at position %d (a gap, duplicate or reorder)", i+1, s, k)
			}
		}
		if i != victim && int64(len(got)) != last {
			t.Errorf("node %d's subscriber saw %d of %d events", i+1, len(got), last)
		}
	}

	// The webhook: every created item delivered, first arrivals in order,
	// signatures valid, duplicates only in one handed-over window.
	want := len(created)
	timeout := time.After(60 * time.Second)
	for {
		recvMu.Lock()
		n := len(firstSeen)
		recvMu.Unlock()
		if n >= want {
			break
		}
		select {
		case <-recvWake:
		case <-timeout:
			t.Fatalf("the webhook delivered %d of %d events", n, want)
		}
	}
	recvMu.Lock()
	if badSig > 0 {
		t.Errorf("%d deliveries with a bad signature: the nodes do not share the secret", badSig)
	}
	if !slices.IsSorted(firstSeen) {
		t.Errorf("webhook deliveries out of order")
	}
	var dupSeqs []int64
	for id, n := range arrivals {
		if n > 1 {
			seq, _ := strconv.ParseInt(strings.TrimPrefix(id, "msg_"), 10, 64)
			dupSeqs = append(dupSeqs, seq)
		}
	}
	recvMu.Unlock()
	checkWindow(t, "webhook", dupSeqs, created)

	// The automation and the function: one record per item, but for the
	// same kind of window.
	for _, c := range []struct{ what, collection string }{{"automation", "audits"}, {"function", "fnlog"}} {
		per := map[string]int{}
		deadline := time.Now().Add(60 * time.Second)
		for len(per) < want && time.Now().Before(deadline) {
			clear(per)
			for cursor := ""; ; {
				var page struct {
					Items      []struct{ Item string }
					NextCursor *string
				}
				getJSON(t, nodes[(victim+1)%3].url+"/api/collections/"+c.collection+"/records?limit=1000"+cursor, &page)
				for _, it := range page.Items {
					per[it.Item]++
				}
				if page.NextCursor == nil {
					break
				}
				cursor = "&cursor=" + *page.NextCursor
			}
		}
		if len(per) != want {
			t.Fatalf("the %s acted on %d of %d items", c.what, len(per), want)
		}
		var twice []int64
		for item, n := range per {
			if n > 1 {
				twice = append(twice, created[item])
			}
		}
		checkWindow(t, c.what, twice, created)
	}
}

// checkWindow accepts repeated work only as at-least-once allows it: the
// events repeated are consecutive events of the log (the ones between the
// dead holder's last saved cursor and its death), a few hundred at most.
func checkWindow(t *testing.T, what string, seqs []int64, created map[string]int64) {
	t.Helper()
	if len(seqs) == 0 {
		return
	}
	slices.Sort(seqs)
	var all []int64
	for _, s := range created {
		all = append(all, s)
	}
	slices.Sort(all)
	i := slices.Index(all, seqs[0])
	for k, s := range seqs {
		if i+k >= len(all) || all[i+k] != s {
			t.Errorf("%s repeated events %v: not one consecutive window", what, seqs)
			return
		}
	}
	t.Logf("%s repeated %d consecutive events after the hand-over (seqs %d..%d)", what, len(seqs), seqs[0], seqs[len(seqs)-1])
}
