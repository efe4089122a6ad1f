// Package webhook delivers the event log to URLs declared in the project
// file: signed per the Standard Webhooks specification, in order per
// webhook, at least once, with exponential backoff and jitter, a cursor
// that survives restarts, and a dead-letter list after a configurable
// number of failed attempts (the durable consumer of internal/consumer).
// See docs/webhooks.md.
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
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/consumer"
	"github.com/mantlehq/mantle/internal/egress"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/feed"
	"github.com/mantlehq/mantle/internal/schema"
)

// Kind is the consumer kind of webhooks: their cursors and dead letters
// are the store's webhook_cursor and webhook_dead secrets.
const Kind = "webhook"

// keepDeliveries is how many recent attempts each webhook remembers.
const keepDeliveries = 200

// Options configure the manager.
type Options struct {
	Engine  *engine.Engine
	Hub     *eventlog.Hub
	Log     *slog.Logger
	DataDir string // where generated signing secrets are kept
	// StoredSecrets keeps generated signing secrets in the store instead
	// of the data folder, so that every node of a cluster signs alike.
	StoredSecrets bool
	// AllowPrivate lets webhooks call loopback and private addresses
	// (tests, a receiver on the same host). Off: SSRF guard.
	AllowPrivate bool
	// Timeout bounds one delivery; default 10s.
	Timeout time.Duration
	// Lease, when set, runs each consumer and schedule on one node of a
	// cluster at a time (internal/bus); nil runs them here.
	Lease consumer.Leaser
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
		if err := m.start(wctx, h); err != nil {
			cancel()
			return err
		}
	}
	return nil
}

func (m *Manager) start(ctx context.Context, h schema.Webhook) error {
	key, err := m.secret(ctx, h.Name)
	if err != nil {
		return err
	}
	matcher, err := feed.NewMatcher(m.o.Engine, mantle.Identity{ID: "webhook:" + h.Name, Roles: []string{"admin"}},
		feed.Spec{Collections: h.Collections, Types: h.Types, Filter: h.Filter})
	if err != nil {
		return fmt.Errorf("webhook %s: %w", h.Name, err)
	}
	w := &worker{hook: h, key: key, client: m.client}
	w.c, err = consumer.Start(ctx, consumer.Spec{Name: h.Name, Kind: Kind, Match: matcher.Match, Handle: w.handle,
		Attempts: h.MaxAttempts, RetryMin: h.RetryMin, RetryMax: h.RetryMax, Engine: m.o.Engine, Hub: m.o.Hub, Log: m.o.Log, Lease: m.o.Lease})
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.workers[h.Name] = w
	m.mu.Unlock()
	m.wg.Add(1)
	go func() { defer m.wg.Done(); w.c.Wait() }()
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

// SecretKind is the store's secret kind of generated signing secrets kept
// in the store (Options.StoredSecrets).
const SecretKind = "webhook_secret"

// secret finds a webhook's signing secret: MANTLE_WEBHOOK_<NAME>_SECRET,
// else (StoredSecrets) the store's webhook_secret NAME, else
// webhook-<name>.secret in the data folder; the last two are generated on
// first start. The secret is whsec_ and base64, as Standard Webhooks has
// it.
func (m *Manager) secret(ctx context.Context, name string) ([]byte, error) {
	raw := os.Getenv("MANTLE_WEBHOOK_" + strings.ToUpper(name) + "_SECRET")
	path := filepath.Join(m.o.DataDir, "webhook-"+name+".secret")
	if raw == "" && m.o.StoredSecrets {
		k := make([]byte, 32)
		crand.Read(k)
		err := m.o.Engine.Transact(ctx, func(tx engine.SystemTx) error {
			v, err := tx.CreateSecret(SecretKind, name, []byte("whsec_"+base64.StdEncoding.EncodeToString(k)))
			raw = string(v)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("webhook %s: its secret: %w", name, err)
		}
	}
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

// worker is one webhook: the consumer that feeds it events, and the
// deliveries it made (with their HTTP status, which the consumer's
// attempts do not have).
type worker struct {
	hook   schema.Webhook
	key    []byte
	client *http.Client
	c      *consumer.Consumer

	mu         sync.Mutex
	deliveries []Delivery // ring, newest last
}

func (w *worker) snapshot() Status {
	st := w.c.Status()
	return Status{Name: w.hook.Name, URL: w.hook.URL, Cursor: st.Cursor, Delivered: st.Handled, Failed: st.Failed,
		Dead: st.Dead, LastError: st.LastError, LastOK: st.LastOK}
}

func (w *worker) note(d Delivery) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.deliveries) >= keepDeliveries {
		w.deliveries = w.deliveries[1:]
	}
	w.deliveries = append(w.deliveries, d)
}

// handle makes one delivery attempt of ev; the consumer retries a failure
// with backoff and dead-letters the event after the last attempt.
func (w *worker) handle(ctx context.Context, ev *eventlog.Event, attempt int) error {
	d := w.attempt(ctx, "msg_"+strconv.FormatInt(ev.Seq, 10), ev.Seq, attempt, ev.JSON())
	if ctx.Err() != nil {
		return ctx.Err() // stopped mid-delivery: not an attempt
	}
	d.DeadNext = !d.Ok && attempt >= w.hook.MaxAttempts
	w.note(d)
	if !d.Ok {
		return errors.New(d.Error)
	}
	return nil
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
	resp, err := w.client.Do(req)
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
	dead, err := consumer.DeadLetters(ctx, m.o.Engine, Kind, name)
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, len(dead))
	for i, d := range dead {
		out[i] = DeadLetter{Webhook: name, Seq: d.Seq, Attempts: d.Attempts, LastError: d.LastError, At: d.At, Event: d.Event}
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
	return w.c.Replay(from)
}

// Admin is the webhooks' administration surface (consumer.Admin).
func (m *Manager) Admin() consumer.Admin { return admin{m} }

type admin struct{ m *Manager }

func (a admin) Kind() string                      { return "webhooks" }
func (a admin) AttemptsName() string              { return "deliveries" }
func (a admin) ReplayReason() string              { return "webhook.invalid_replay" }
func (a admin) Statuses() any                     { return a.m.Statuses() }
func (a admin) Attempts(name string) (any, error) { return a.m.Deliveries(name) }
func (a admin) DeadLetters(ctx context.Context, name string) (any, error) {
	return a.m.DeadLetters(ctx, name)
}
func (a admin) Replay(ctx context.Context, name string, from int64) error {
	return a.m.Replay(ctx, name, from)
}
