// Package webhook delivers the event log to URLs declared in the project
// file: signed per the Standard Webhooks specification, in order per
// webhook, at least once, with exponential backoff and jitter, a cursor
// that survives restarts, and a dead-letter list after a configurable
// number of failed attempts. See docs/webhooks.md.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/egress"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/feed"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

// Secret kinds in the store.
const (
	KindCursor = "webhook_cursor" // name → the last sequence done
	KindDead   = "webhook_dead"   // name/seq (zero-padded) → a dead letter
)

// flushEvery is how often a worker saves its cursor while delivering: a
// crash redelivers at most this much (at least once, never lost).
const flushEvery = 100 * time.Millisecond

// keepDeliveries is how many recent attempts each webhook remembers.
const keepDeliveries = 200

// Options configure the manager.
type Options struct {
	Engine  *engine.Engine
	Hub     *eventlog.Hub
	Log     *slog.Logger
	DataDir string // where generated signing secrets are kept
	// AllowPrivate lets webhooks call loopback and private addresses
	// (tests, a receiver on the same host). Off: SSRF guard.
	AllowPrivate bool
	// Timeout bounds one delivery; default 10s.
	Timeout time.Duration
}

// Manager runs one worker per webhook.
type Manager struct {
	o      Options
	client *http.Client

	mu      sync.Mutex
	workers map[string]*worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// NewManager returns a manager with no webhooks yet; see Start.
func NewManager(o Options) *Manager {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	tr := &http.Transport{DialContext: egress.NewDialer(o.AllowPrivate).DialContext, MaxIdleConnsPerHost: 4,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
	return &Manager{o: o, workers: map[string]*worker{}, client: &http.Client{Transport: tr, Timeout: o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Start (re)starts the workers for hooks, each from its saved cursor (a
// new webhook starts at the end of the log: it receives what happens from
// now on). It refuses URLs the SSRF guard forbids.
func (m *Manager) Start(ctx context.Context, hooks []schema.Webhook) error {
	for _, h := range hooks {
		if err := egress.CheckURL(h.URL, m.o.AllowPrivate); err != nil {
			return fmt.Errorf("webhook %s: %w", h.Name, err)
		}
	}
	m.Stop()
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.mu.Lock()
	m.cancel = cancel
	m.workers = map[string]*worker{}
	m.mu.Unlock()
	for _, h := range hooks {
		key, err := m.secret(h.Name)
		if err != nil {
			cancel()
			return err
		}
		matcher, err := feed.NewMatcher(m.o.Engine, mantle.Identity{ID: "webhook:" + h.Name, Roles: []string{"admin"}},
			feed.Spec{Collections: h.Collections, Types: h.Types, Filter: h.Filter})
		if err != nil {
			cancel()
			return fmt.Errorf("webhook %s: %w", h.Name, err)
		}
		after, err := m.loadCursor(ctx, h.Name)
		if err != nil {
			cancel()
			return err
		}
		w := &worker{m: m, hook: h, key: key, matcher: matcher, replay: make(chan int64, 1)}
		w.status.Cursor = after
		m.mu.Lock()
		m.workers[h.Name] = w
		m.mu.Unlock()
		m.wg.Add(1)
		go func() { defer m.wg.Done(); w.run(wctx, after) }()
	}
	return nil
}

// Stop ends the workers, saving their cursors.
func (m *Manager) Stop() {
	m.mu.Lock()
	cancel := m.cancel
	m.cancel = nil
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
}

// secret finds a webhook's signing secret: MANTLE_WEBHOOK_<NAME>_SECRET,
// else webhook-<name>.secret in the data folder, which is generated on
// first start. The secret is whsec_ and base64, as Standard Webhooks has
// it.
func (m *Manager) secret(name string) ([]byte, error) {
	raw := os.Getenv("MANTLE_WEBHOOK_" + strings.ToUpper(name) + "_SECRET")
	path := filepath.Join(m.o.DataDir, "webhook-"+name+".secret")
	if raw == "" {
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			k := make([]byte, 32)
			crand.Read(k)
			raw = "whsec_" + base64.StdEncoding.EncodeToString(k)
			if err := os.WriteFile(path, []byte(raw+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("webhook %s: write its secret: %w", name, err)
			}
			m.o.Log.Info("generated a webhook signing secret; give it to the receiver", "webhook", name, "file", path)
		case err != nil:
			return nil, err
		default:
			raw = strings.TrimSpace(string(b))
		}
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(raw, "whsec_"))
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("webhook %s: the secret must be whsec_ followed by base64 of at least 16 bytes", name)
	}
	return key, nil
}

func (m *Manager) loadCursor(ctx context.Context, name string) (int64, error) {
	raw, err := m.o.Engine.Secret(ctx, KindCursor, name)
	if mantle.ErrorCode(err) == mantle.NotFound {
		// A new webhook: its starting point is saved at once, so that
		// events written while it is stopped, before it delivered any,
		// are not taken for the past when it starts again.
		last, err := m.o.Engine.LastSeq(ctx)
		if err != nil {
			return 0, err
		}
		return last, m.saveCursor(ctx, name, last)
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(raw), 10, 64)
}

func (m *Manager) saveCursor(ctx context.Context, name string, seq int64) error {
	return m.o.Engine.Transact(ctx, func(tx store.Tx) error {
		return tx.PutSecret(KindCursor, name, []byte(strconv.FormatInt(seq, 10)))
	})
}

// Sign returns the Standard Webhooks signature header value of a message.
func Sign(key []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Delivery is one attempt.
type Delivery struct {
	Seq      int64     `json:"seq"`
	Attempt  int       `json:"attempt"`
	Status   int       `json:"status"` // 0: no answer
	Error    string    `json:"error,omitempty"`
	Millis   float64   `json:"ms"`
	At       time.Time `json:"at"`
	Ok       bool      `json:"ok"`
	DeadNext bool      `json:"deadLetter,omitempty"` // the last attempt failed: the event went to the dead letters
}

// Status is a webhook's state.
type Status struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Cursor    int64     `json:"cursor"` // the last sequence done (delivered or dead)
	Delivered int64     `json:"delivered"`
	Failed    int64     `json:"failedAttempts"`
	Dead      int64     `json:"deadLetters"`
	LastError string    `json:"lastError,omitempty"`
	LastOK    time.Time `json:"lastDelivered,omitzero"`
}

type worker struct {
	m       *Manager
	hook    schema.Webhook
	key     []byte
	matcher *feed.Matcher
	replay  chan int64

	mu         sync.Mutex
	status     Status
	deliveries []Delivery // ring, newest last
}

func (w *worker) snapshot() Status {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.status
	s.Name, s.URL = w.hook.Name, w.hook.URL
	return s
}

func (w *worker) note(d Delivery) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.deliveries) >= keepDeliveries {
		w.deliveries = w.deliveries[1:]
	}
	w.deliveries = append(w.deliveries, d)
	if d.Ok {
		w.status.Delivered++
		w.status.LastOK = d.At
	} else {
		w.status.Failed++
		w.status.LastError = d.Error
	}
}

// run delivers events after sequence after, one at a time, in order.
// done is the last sequence fully handled (delivered, dead-lettered or not
// for this webhook); it is saved every flushEvery and when the worker
// stops, so a restart resumes right after it.
func (w *worker) run(ctx context.Context, after int64) {
	cur := feed.NewCursor(w.m.o.Hub, w.m.o.Engine, after)
	done, saved, lastFlush := after, after, time.Now()
	flush := func() {
		lastFlush = time.Now()
		if done == saved {
			return
		}
		if err := w.m.saveCursor(context.WithoutCancel(ctx), w.hook.Name, done); err != nil {
			w.m.o.Log.Error("webhook: save cursor", "webhook", w.hook.Name, "err", err)
			return
		}
		saved = done
	}
	defer flush()
	replay := func(from int64) {
		cur.After, done = from, from
		w.mu.Lock()
		w.status.Cursor = from
		w.mu.Unlock()
		flush()
	}
	for {
		select {
		case from := <-w.replay:
			replay(from)
		default:
		}
		evs, wait, err := cur.Next(ctx, 256)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.m.o.Log.Error("webhook: read the log", "webhook", w.hook.Name, "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		for _, ev := range evs {
			if w.matcher.Match(ev) && !w.deliver(ctx, ev) {
				return // stopped mid-event: resume at it next time
			}
			done = ev.Seq
			w.mu.Lock()
			w.status.Cursor = done
			w.mu.Unlock()
			if time.Since(lastFlush) >= flushEvery {
				flush()
			}
			if len(w.replay) > 0 {
				break
			}
		}
		if len(evs) > 0 {
			continue
		}
		flush()
		select {
		case <-ctx.Done():
			return
		case <-wait:
		case from := <-w.replay:
			replay(from)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff is the wait after failed attempt n (1-based): exponential from
// RetryMin, capped at RetryMax, with jitter over its upper half so that
// many retrying webhooks do not beat in step.
func (w *worker) backoff(n int) time.Duration {
	d := w.hook.RetryMin << min(n-1, 30)
	if d <= 0 || d > w.hook.RetryMax {
		d = w.hook.RetryMax
	}
	return d/2 + rand.N(d/2+1)
}

// deliver posts ev until it succeeds or runs out of attempts (then it is a
// dead letter). It returns false only when stopped.
func (w *worker) deliver(ctx context.Context, ev *eventlog.Event) bool {
	body := ev.JSON()
	id := "msg_" + strconv.FormatInt(ev.Seq, 10)
	for n := 1; ; n++ {
		d := w.attempt(ctx, id, ev.Seq, n, body)
		if ctx.Err() != nil {
			return false
		}
		if d.Ok {
			w.note(d)
			return true
		}
		if n >= w.hook.MaxAttempts {
			d.DeadNext = true
			w.note(d)
			w.dead(ctx, ev, d)
			return true
		}
		w.note(d)
		if !sleep(ctx, w.backoff(n)) {
			return false
		}
	}
}

func (w *worker) attempt(ctx context.Context, id string, seq int64, n int, body []byte) Delivery {
	now := time.Now()
	d := Delivery{Seq: seq, Attempt: n, At: now.UTC()}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.hook.URL, bytes.NewReader(body))
	if err != nil {
		d.Error = err.Error()
		return d
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Mantle-Webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", Sign(w.key, id, now.Unix(), body))
	resp, err := w.m.client.Do(req)
	d.Millis = float64(time.Since(now).Microseconds()) / 1000
	if err != nil {
		d.Error = err.Error()
		return d
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	d.Status = resp.StatusCode
	d.Ok = resp.StatusCode >= 200 && resp.StatusCode < 300
	if !d.Ok {
		d.Error = "status " + strconv.Itoa(resp.StatusCode)
	}
	return d
}

// DeadLetter is an event that exhausted its attempts.
type DeadLetter struct {
	Webhook   string          `json:"webhook"`
	Seq       int64           `json:"seq"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"lastError"`
	At        time.Time       `json:"at"`
	Event     json.RawMessage `json:"event"`
}

func deadKey(name string, seq int64) string { return fmt.Sprintf("%s/%019d", name, seq) }

func (w *worker) dead(ctx context.Context, ev *eventlog.Event, d Delivery) {
	raw, _ := json.Marshal(DeadLetter{Webhook: w.hook.Name, Seq: ev.Seq, Attempts: d.Attempt, LastError: d.Error, At: d.At, Event: ev.JSON()})
	err := w.m.o.Engine.Transact(context.WithoutCancel(ctx), func(tx store.Tx) error {
		return tx.PutSecret(KindDead, deadKey(w.hook.Name, ev.Seq), raw)
	})
	if err != nil {
		w.m.o.Log.Error("webhook: store a dead letter", "webhook", w.hook.Name, "seq", ev.Seq, "err", err)
	}
	w.mu.Lock()
	w.status.Dead++
	w.mu.Unlock()
	w.m.o.Log.Warn("webhook: event moved to the dead letters", "webhook", w.hook.Name, "seq", ev.Seq, "err", d.Error)
}

func (m *Manager) worker(name string) (*worker, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	w := m.workers[name]
	if w == nil {
		return nil, mantle.Errorf(mantle.NotFound, "webhook.not_found", "no webhook %q", name)
	}
	return w, nil
}

// Statuses lists the webhooks, by name.
func (m *Manager) Statuses() []Status {
	m.mu.Lock()
	ws := make([]*worker, 0, len(m.workers))
	for _, w := range m.workers {
		ws = append(ws, w)
	}
	m.mu.Unlock()
	out := make([]Status, len(ws))
	for i, w := range ws {
		out[i] = w.snapshot()
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Deliveries returns a webhook's recent attempts, newest first.
func (m *Manager) Deliveries(name string) ([]Delivery, error) {
	w, err := m.worker(name)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.deliveries)
	slices.Reverse(out)
	return out, nil
}

// DeadLetters returns a webhook's dead letters, oldest first.
func (m *Manager) DeadLetters(ctx context.Context, name string) ([]DeadLetter, error) {
	if _, err := m.worker(name); err != nil {
		return nil, err
	}
	all, err := m.o.Engine.Secrets(ctx, KindDead)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		if strings.HasPrefix(k, name+"/") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := make([]DeadLetter, 0, len(keys))
	for _, k := range keys {
		var d DeadLetter
		if json.Unmarshal(all[k], &d) == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// Replay makes a webhook deliver again from sequence from (inclusive).
func (m *Manager) Replay(ctx context.Context, name string, from int64) error {
	w, err := m.worker(name)
	if err != nil {
		return err
	}
	if from < 1 {
		return mantle.Errorf(mantle.Invalid, "webhook.invalid_replay", "from must be a sequence number, 1 or more")
	}
	select {
	case <-w.replay: // a newer request replaces one not yet taken
	default:
	}
	w.replay <- from - 1
	return nil
}
