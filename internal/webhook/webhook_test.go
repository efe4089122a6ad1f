package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/config"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is a webhook endpoint that verifies every delivery the way
// the Standard Webhooks specification says, independently of Mantle's
// signing code.
type receiver struct {
	t    *testing.T
	srv  *httptest.Server
	mu   sync.Mutex
	seqs []int64
	got  chan int64
	// fail, when set, decides the status of a delivery of seq (0: 204).
	fail func(seq int64, attempt int) int
	hits map[int64]int
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, got: make(chan int64, 10000), hits: map[int64]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func verify(headers http.Header, body []byte) error {
	id, ts, sigs := headers.Get("webhook-id"), headers.Get("webhook-timestamp"), headers.Get("webhook-signature")
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(n, 0)).Abs() > 5*time.Minute {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, s := range strings.Fields(sigs) {
		if v, sig, _ := strings.Cut(s, ","); v == "v1" && hmac.Equal([]byte(sig), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("no valid signature in %q", sigs)
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := verify(r.Header, body); err != nil {
		rc.t.Errorf("delivery: %v", err)
		w.WriteHeader(400)
		return
	}
	var ev struct{ Seq int64 }
	json.Unmarshal(body, &ev)
	if r.Header.Get("webhook-id") != "msg_"+strconv.FormatInt(ev.Seq, 10) {
		rc.t.Errorf("webhook-id %q for seq %d", r.Header.Get("webhook-id"), ev.Seq)
	}
	rc.mu.Lock()
	rc.hits[ev.Seq]++
	attempt := rc.hits[ev.Seq]
	fail := rc.fail
	rc.mu.Unlock()
	if fail != nil {
		if status := fail(ev.Seq, attempt); status != 0 {
			w.WriteHeader(status)
			return
		}
	}
	rc.mu.Lock()
	rc.seqs = append(rc.seqs, ev.Seq)
	rc.mu.Unlock()
	w.WriteHeader(204)
	rc.got <- ev.Seq
}

func (rc *receiver) wait(n int) []int64 {
	rc.t.Helper()
	var out []int64
	timeout := time.After(30 * time.Second)
	for len(out) < n {
		select {
		case s := <-rc.got:
			out = append(out, s)
		case <-timeout:
			rc.t.Fatalf("received %d of %d deliveries: %v", len(out), n, out)
		}
	}
	return out
}

// project declares one webhook of record.created events of notes; retry
// is its attempts and backoff, such as "maxAttempts: 3, retryMin: 5ms".
func project(url string, retry string) string {
	var r strings.Builder
	for _, kv := range strings.Split(retry, ", ") {
		r.WriteString("    " + kv + "\n")
	}
	return `
name: hooks
collections:
  notes:
    fields:
      text:  { type: text }
      n:     { type: number }
    rules:
      create: "true"
      view: "true"
webhooks:
  notes:
    url: ` + url + `
    collections: [notes]
    types: [record.created]
` + r.String()
}

const fastRetry = "maxAttempts: 3, retryMin: 5ms, retryMax: 20ms"

func start(t *testing.T, proj string) *apptest.Server {
	t.Setenv("MANTLE_WEBHOOK_NOTES_SECRET", secret)
	return apptest.StartConfig(t, proj, func(c *config.Config) { c.WebhookAllowPrivate = true })
}

func create(t *testing.T, s *apptest.Server, n int) []int64 {
	t.Helper()
	var seqs []int64
	for i := 0; i < n; i++ {
		r := s.Do("POST", "/api/collections/notes/records", map[string]any{"text": fmt.Sprint(i), "n": i})
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		seq, _ := strconv.ParseInt(r.Header.Get("Mantle-Seq"), 10, 64)
		seqs = append(seqs, seq)
	}
	return seqs
}

func TestDeliversSignedInOrder(t *testing.T) {
	rc := newReceiver(t)
	s := start(t, project(rc.srv.URL, fastRetry))
	want := create(t, s, 25)
	got := rc.wait(25)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	r := s.Do("GET", "/api/webhooks", nil, "admin")
	if r.Status != 200 || !strings.Contains(string(r.Body), `"name":"notes"`) {
		t.Fatalf("status: %d %s", r.Status, r.Body)
	}
	if r := s.Do("GET", "/api/webhooks", nil); r.Status != 401 {
		t.Errorf("anonymous webhook status: %d", r.Status)
	}
}

// A failing delivery is retried with backoff, in order; one that never
// succeeds becomes a dead letter, and the next events still arrive.
func TestRetriesAndDeadLetters(t *testing.T) {
	rc := newReceiver(t)
	s := start(t, project(rc.srv.URL, fastRetry))
	base := s.LastSeq()
	rc.fail = func(seq int64, attempt int) int {
		switch {
		case seq == base+2 && attempt <= 2:
			return 503 // succeeds on the third attempt
		case seq == base+4:
			return 500 // never
		}
		return 0
	}
	create(t, s, 6)
	got := rc.wait(5)
	want := []int64{base + 1, base + 2, base + 3, base + 5, base + 6}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	dead := s.Do("GET", "/api/webhooks/notes/dead", nil, "admin")
	var dl struct {
		Items []struct {
			Seq       int64
			Attempts  int
			LastError string
		}
	}
	json.Unmarshal(dead.Body, &dl)
	if len(dl.Items) != 1 || dl.Items[0].Seq != base+4 || dl.Items[0].Attempts != 3 || dl.Items[0].LastError != "status 500" {
		t.Errorf("dead letters: %s", dead.Body)
	}
	del := s.Do("GET", "/api/webhooks/notes/deliveries", nil, "admin")
	if !strings.Contains(string(del.Body), `"status":503`) || !strings.Contains(string(del.Body), `"deadLetter":true`) {
		t.Errorf("deliveries: %s", del.Body)
	}
	// Replay from the dead letter once the receiver is fixed.
	rc.mu.Lock()
	rc.fail = nil
	rc.mu.Unlock()
	if r := s.Do("POST", "/api/webhooks/notes/replay", map[string]int64{"from": base + 4}, "admin"); r.Status != 202 {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	if got := rc.wait(3); fmt.Sprint(got) != fmt.Sprint([]int64{base + 4, base + 5, base + 6}) {
		t.Errorf("replayed %v", got)
	}
	for _, tc := range []struct {
		path string
		body any
		want int
	}{
		{"/api/webhooks/nope/deliveries", nil, 404},
		{"/api/webhooks/notes/replay", map[string]any{"from": "x"}, 400},
		{"/api/webhooks/notes/replay", map[string]any{"from": 0}, 400},
	} {
		method := "GET"
		if tc.body != nil {
			method = "POST"
		}
		if r := s.Do(method, tc.path, tc.body, "admin"); r.Status != tc.want {
			t.Errorf("%s %s: %d, want %d", method, tc.path, r.Status, tc.want)
		}
	}
}

// The cursor survives a restart: events written while the receiver was
// down arrive after it, with no gap.
func TestCursorSurvivesRestart(t *testing.T) {
	rc := newReceiver(t)
	proj := project(rc.srv.URL, fastRetry)
	s := start(t, proj)
	first := create(t, s, 5)
	rc.wait(5)
	s.Close()
	// Written by another process's view: reopen the same folders.
	t.Setenv("MANTLE_WEBHOOK_NOTES_SECRET", secret)
	s2 := apptest.StartDirConfig(t, s.Dir, s.Data, func(c *config.Config) { c.WebhookAllowPrivate = true })
	more := create(t, s2, 5)
	// At least once: the last delivery before the stop may come again
	// (its acknowledgement raced the stop); receivers dedupe by
	// webhook-id. Nothing may be missing or out of order.
	var got []int64
	for len(got) < len(more) {
		seq := rc.wait(1)[0]
		if seq <= first[4] {
			if seq != first[4] {
				t.Errorf("redelivered %d, older than the last delivery %d", seq, first[4])
			}
			continue
		}
		got = append(got, seq)
	}
	if fmt.Sprint(got) != fmt.Sprint(more) || more[0] != first[4]+1 {
		t.Errorf("after the restart: %v, want %v", got, more)
	}
}

func TestSSRFGuard(t *testing.T) {
	for _, url := range []string{"http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/x", "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "http://192.168.0.10/x"} {
		t.Setenv("MANTLE_WEBHOOK_NOTES_SECRET", secret)
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "mantle.yaml"), []byte(project(url, fastRetry)), 0o644)
		err := apptest.TryStartDir(t, dir, filepath.Join(dir, "data"), nil)
		if err == nil || !strings.Contains(err.Error(), "--webhook-allow-private") {
			t.Errorf("%s: %v", url, err)
		}
	}
}

// BenchmarkDeliveries measures deliveries per second to a local receiver
// that answers at once: events are written in batches, then the time is
// taken until the receiver has every one.
func BenchmarkDeliveries(b *testing.B) {
	var got atomicCounter
	all := make(chan struct{})
	n := int64(max(b.N, 1000))
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(204)
		if got.add() == n {
			close(all)
		}
	}))
	defer recv.Close()
	b.Setenv("MANTLE_WEBHOOK_NOTES_SECRET", secret)
	s := apptest.StartConfig(b, project(recv.URL, fastRetry), func(c *config.Config) { c.WebhookAllowPrivate = true })
	b.ResetTimer()
	start := time.Now()
	for left := n; left > 0; left -= 1000 {
		var ops []map[string]any
		for i := int64(0); i < min(1000, left); i++ {
			ops = append(ops, map[string]any{"op": "create", "collection": "notes", "data": map[string]any{"text": "x"}})
		}
		if r := s.Do("POST", "/api/batch", map[string]any{"ops": ops}); r.Status != 200 {
			b.Fatalf("batch: %d %s", r.Status, r.Body)
		}
	}
	<-all
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "deliveries/s")
}

type atomicCounter struct {
	mu sync.Mutex
	n  int64
}

func (c *atomicCounter) add() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

// A webhook stopped before it delivered anything still delivers, after
// a restart, what was written while it was stopped: its starting point
// was saved when it first started.
func TestNewWebhookKeepsItsStart(t *testing.T) {
	rc := newReceiver(t)
	s := start(t, project(rc.srv.URL, fastRetry))
	s.App.Hooks.Stop()
	written := create(t, s, 3) // while the webhook is stopped
	s.Close()
	t.Setenv("MANTLE_WEBHOOK_NOTES_SECRET", secret)
	apptest.StartDirConfig(t, s.Dir, s.Data, func(c *config.Config) { c.WebhookAllowPrivate = true })
	if got := rc.wait(3); fmt.Sprint(got) != fmt.Sprint(written) {
		t.Fatalf("after the restart: %v, want %v", got, written)
	}
}
