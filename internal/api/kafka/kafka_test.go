package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/api/kafka"
	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

const project = `
name: k
collections:
  notes:
    fields:
      text: { type: text }
    rules:
      list: "true"
      view: "true"
      create: "true"
  posts:
    fields:
      title:     { type: text }
      published: { type: bool }
    rules:
      view: "published"
      create: "true"
      update: "true"
`

// start serves the app's log over the Kafka protocol on a free port.
func start(t *testing.T) (*apptest.Server, string) {
	t.Helper()
	s := apptest.Start(t, project)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.App.ServeKafka(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, ln.Addr().String()
}

func write(t *testing.T, s *apptest.Server, coll string, n int, body func(i int) map[string]any) []int64 {
	t.Helper()
	var seqs []int64
	for i := 0; i < n; i++ {
		r := s.Do("POST", "/api/collections/"+coll+"/records", body(i))
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var seq int64
		fmt.Sscan(r.Header.Get("Mantle-Seq"), &seq)
		seqs = append(seqs, seq)
	}
	return seqs
}

func poll(t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records", len(out), n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestConsumeLog(t *testing.T) {
	s, addr := start(t)
	seqs := write(t, s, "notes", 30, func(i int) map[string]any { return map[string]any{"text": fmt.Sprint(i)} })
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(kafka.LogTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := poll(t, cl, len(seqs)) // schema.applied (seq 1) is for administrators only
	for i, r := range recs {
		seq := seqs[i]
		if r.Offset != seq-1 || header(r, "ce_id") != fmt.Sprint(seq) || header(r, "ce_specversion") != "1.0" {
			t.Fatalf("record %d: offset %d, headers %v", i, r.Offset, r.Headers)
		}
	}
	last := recs[len(recs)-1]
	var data struct{ Record struct{ Text string } }
	if err := json.Unmarshal(last.Value, &data); err != nil || data.Record.Text != "29" ||
		header(last, "ce_type") != "record.created" || header(last, "ce_source") != "/collections/notes" || string(last.Key) != header(last, "ce_subject") {
		t.Errorf("last record: %s %v (%v)", last.Value, last.Headers, err)
	}
	// Live: a new write reaches the waiting consumer (long polling).
	more := write(t, s, "notes", 1, func(int) map[string]any { return map[string]any{"text": "live"} })
	if r := poll(t, cl, 1)[0]; r.Offset != more[0]-1 {
		t.Errorf("live record at offset %d, want %d", r.Offset, more[0]-1)
	}
}

// A collection's topic has that collection's events, at their log offsets
// (with gaps), and the caller's view rule applies.
func TestCollectionTopicAndRules(t *testing.T) {
	s, addr := start(t)
	write(t, s, "notes", 5, func(i int) map[string]any { return map[string]any{"text": "n"} })
	posts := write(t, s, "posts", 6, func(i int) map[string]any { return map[string]any{"title": fmt.Sprint(i), "published": i%2 == 0} })
	write(t, s, "notes", 5, func(i int) map[string]any { return map[string]any{"text": "n"} })
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("posts"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	recs := poll(t, cl, 3) // anonymous: the published posts only
	var offsets []int64
	for _, r := range recs {
		offsets = append(offsets, r.Offset)
	}
	want := []int64{posts[0] - 1, posts[2] - 1, posts[4] - 1}
	if !slices.Equal(offsets, want) {
		t.Errorf("offsets %v, want %v", offsets, want)
	}
	// An API key with the admin role sees every post (SASL/PLAIN, the key as the password).
	kr := s.Do("POST", "/api/keys", map[string]any{"name": "kafka", "roles": []string{"admin"}}, "admin")
	var key struct{ Key string }
	json.Unmarshal(kr.Body, &key)
	admin, _ := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("posts"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
		kgo.SASL(plain.Auth{User: "reader", Pass: key.Key}.AsMechanism()))
	defer admin.Close()
	if recs := poll(t, admin, 6); len(recs) != 6 {
		t.Errorf("the admin key got %d posts", len(recs))
	}
	// A wrong key fails authentication.
	bad, _ := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(plain.Auth{User: "x", Pass: "mk_nope"}.AsMechanism()))
	defer bad.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := bad.Ping(ctx); err == nil {
		t.Error("a wrong key authenticated")
	}
}

func TestProduceRefused(t *testing.T) {
	_, addr := start(t)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordRetries(0))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cl.ProduceSync(ctx, &kgo.Record{Topic: "notes", Value: []byte("x")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Errorf("produce: %v", err)
	}
}

// Two members of a group split the topics; when one leaves, the other
// takes over from the committed offsets; offsets survive a new client.
func TestConsumerGroup(t *testing.T) {
	s, addr := start(t)
	type assignment struct {
		who    string
		topics []string
	}
	assigned := make(chan assignment, 100)
	member := func(name string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("notes", "posts"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond),
			kgo.HeartbeatInterval(200*time.Millisecond), kgo.SessionTimeout(3*time.Second), kgo.RebalanceTimeout(5*time.Second),
			kgo.Balancers(kgo.RoundRobinBalancer()), kgo.DisableAutoCommit(),
			kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
				var ts []string
				for t := range m {
					ts = append(ts, t)
				}
				slices.Sort(ts)
				assigned <- assignment{name, ts}
			}))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	// Both members poll (a member only joins and rebalances while it polls).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs := map[string]chan *kgo.Record{"a": make(chan *kgo.Record, 1000), "b": make(chan *kgo.Record, 1000)}
	clients := map[string]*kgo.Client{"a": member("a"), "b": member("b")}
	stops := map[string]context.CancelFunc{}
	for name, cl := range clients {
		pctx, stop := context.WithCancel(ctx)
		stops[name] = stop
		go func() {
			for pctx.Err() == nil {
				cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { recs[name] <- r })
			}
		}()
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	latest := map[string][]string{}
	for !(len(latest["a"]) == 1 && len(latest["b"]) == 1 && latest["a"][0] != latest["b"][0]) {
		select {
		case as := <-assigned:
			latest[as.who] = as.topics
		case <-ctx.Done():
			t.Fatalf("the members never split the topics: %v", latest)
		}
	}
	notes := write(t, s, "notes", 10, func(i int) map[string]any { return map[string]any{"text": "n"} })
	write(t, s, "posts", 10, func(i int) map[string]any { return map[string]any{"title": "p", "published": true} })
	for name, ch := range recs {
		var mine []*kgo.Record
		for i := 0; i < 10; i++ {
			select {
			case r := <-ch:
				if r.Topic != latest[name][0] {
					t.Fatalf("%s, assigned %v, got a record of %s", name, latest[name], r.Topic)
				}
				mine = append(mine, r)
			case <-ctx.Done():
				t.Fatalf("%s got %d of its 10 records", name, i)
			}
		}
		if err := clients[name].CommitRecords(ctx, mine...); err != nil {
			t.Fatal(err)
		}
	}
	// b leaves: a takes both topics and goes on after the committed offsets.
	stops["b"]()
	clients["b"].Close()
	for !(len(latest["a"]) == 2) {
		select {
		case as := <-assigned:
			latest[as.who] = as.topics
		case <-ctx.Done():
			t.Fatalf("a never took over: %v", latest)
		}
	}
	more := write(t, s, "notes", 2, func(i int) map[string]any { return map[string]any{"text": "n"} })
	more = append(more, write(t, s, "posts", 2, func(i int) map[string]any { return map[string]any{"title": "p", "published": true} })...)
	var got []int64
	var taken []*kgo.Record
	for len(got) < 4 {
		select {
		case r := <-recs["a"]:
			got = append(got, r.Offset+1)
			taken = append(taken, r)
		case <-ctx.Done():
			t.Fatalf("a got %v after the rebalance, want %v", got, more)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, more) {
		t.Errorf("after the rebalance a read %v, want %v (nothing before the committed offsets)", got, more)
	}
	if err := clients["a"].CommitRecords(ctx, taken...); err != nil {
		t.Fatal(err)
	}
	stops["a"]()
	clients["a"].Close()
	// A new member resumes after the committed offsets.
	c := member("c")
	defer c.Close()
	last := write(t, s, "notes", 1, func(i int) map[string]any { return map[string]any{"text": "n"} })
	r := poll(t, c, 1)[0]
	if r.Offset != last[0]-1 {
		t.Errorf("the new member started at %s@%d, want notes@%d (notes before: %v)", r.Topic, r.Offset, last[0]-1, notes)
	}
}

// Committed offsets are stored in the data folder: after the server
// restarts, the group resumes after them.
func TestGroupOffsetsSurviveRestart(t *testing.T) {
	s, addr := start(t)
	first := write(t, s, "notes", 5, func(i int) map[string]any { return map[string]any{"text": "n"} })
	consume := func(addr string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("g2"), kgo.ConsumeTopics("notes"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	a := consume(addr)
	recs := poll(t, a, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.CommitRecords(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	a.Close()
	s.Close()
	s2 := apptest.StartDir(t, s.Dir, s.Data)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kctx, kcancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s2.App.ServeKafka(kctx, ln) }()
	defer func() { kcancel(); <-done }()
	next := write(t, s2, "notes", 1, func(i int) map[string]any { return map[string]any{"text": "after"} })
	b := consume(ln.Addr().String())
	defer b.Close()
	if r := poll(t, b, 1)[0]; r.Offset != next[0]-1 {
		t.Errorf("after the restart the group resumed at %d, want %d (committed through %d)", r.Offset, next[0]-1, first[4]-1)
	}
}

// A consumer who could not view a post before it was published gets the
// update without the previous state; an administrator's key gets it whole.
func TestPreviousFollowsViewRule(t *testing.T) {
	s, addr := start(t)
	r := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "SECRET draft"}, "admin")
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.JSON()["id"].(string)
	if r := s.Do("PATCH", "/api/collections/posts/records/"+id, map[string]any{"title": "public", "published": true}, "admin"); r.Status != 200 {
		t.Fatalf("publish: %d %s", r.Status, r.Body)
	}
	kr := s.Do("POST", "/api/keys", map[string]any{"name": "kafka", "roles": []string{"admin"}}, "admin")
	var key struct{ Key string }
	json.Unmarshal(kr.Body, &key)
	for _, c := range []struct {
		who   string
		opts  []kgo.Opt
		whole bool
	}{{"anonymous", nil, false}, {"admin", []kgo.Opt{kgo.SASL(plain.Auth{User: "reader", Pass: key.Key}.AsMechanism())}, true}} {
		cl, _ := kgo.NewClient(append(c.opts, kgo.SeedBrokers(addr), kgo.ConsumeTopics("posts"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))...)
		defer cl.Close()
		var upd *kgo.Record
		for upd == nil {
			for _, r := range poll(t, cl, 1) {
				if header(r, "ce_type") == "record.updated" {
					upd = r
				}
			}
		}
		var d struct {
			Previous json.RawMessage
			Changed  []string
		}
		json.Unmarshal(upd.Value, &d)
		if got := d.Previous != nil; got != c.whole || len(d.Changed) != 2 {
			t.Errorf("%s got %s", c.who, upd.Value)
		}
	}
}
