// Package consumer runs durable consumers of the event log: each one
// handles the events it matches one at a time, in order, at least once,
// retrying a failure with exponential backoff and jitter, moving an event
// that exhausts its attempts to a dead-letter list, and keeping a cursor
// in the store so that a restart resumes where it stopped. Event-triggered
// functions and automations run on it.
package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/feed"
)

// flushEvery is how often a consumer saves its cursor while working: a
// crash repeats at most this much (at least once, never lost).
const flushEvery = 100 * time.Millisecond

// keepAttempts is how many recent attempts a consumer remembers.
const keepAttempts = 200

// Spec is one consumer.
type Spec struct {
	Name      string // unique within Kind
	Kind      string // the store's secret kinds are Kind+"_cursor" and Kind+"_dead"
	Match     func(*eventlog.Event) bool
	Handle    func(ctx context.Context, ev *eventlog.Event, attempt int) error
	Attempts  int             // then the event is a dead letter; default 10
	RetryMin  time.Duration   // first backoff; default 1s
	RetryMax  time.Duration   // backoff cap; default 10m
	FromStart bool            // a new consumer reads the log from the start, not from its end
	AfterDead func(seq int64) // told once an event's dead letter is stored (tests, metrics)
	Engine    *engine.Engine
	Hub       *eventlog.Hub
	Log       *slog.Logger
	// Lease, when set, elects the one node of a cluster that runs this
	// consumer (internal/bus); nil runs it here.
	Lease Leaser
}

// Leaser elects, cluster-wide, the one node that runs a named task.
type Leaser interface {
	// Hold blocks until this node holds the lease called name, or ctx
	// ends. held ends when the lease is lost; release gives it up.
	Hold(ctx context.Context, name string) (held context.Context, release func(), err error)
}

// Attempt is one try at an event.
type Attempt struct {
	Seq      int64     `json:"seq"`
	Attempt  int       `json:"attempt"`
	Error    string    `json:"error,omitempty"`
	Millis   float64   `json:"ms"`
	At       time.Time `json:"at"`
	Ok       bool      `json:"ok"`
	DeadNext bool      `json:"deadLetter,omitempty"` // the last attempt failed: the event went to the dead letters
}

// Status is a consumer's state.
type Status struct {
	Cursor    int64     `json:"cursor"` // the last sequence done (handled, dead, or not matched)
	Handled   int64     `json:"handled"`
	Failed    int64     `json:"failedAttempts"`
	Dead      int64     `json:"deadLetters"`
	LastError string    `json:"lastError,omitempty"`
	LastOK    time.Time `json:"lastHandled,omitzero"`
}

// DeadLetter is an event that exhausted its attempts.
type DeadLetter struct {
	Consumer  string          `json:"consumer"`
	Seq       int64           `json:"seq"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"lastError"`
	At        time.Time       `json:"at"`
	Event     json.RawMessage `json:"event"`
}

// Consumer is a running consumer.
type Consumer struct {
	s      Spec
	replay chan int64
	done   chan struct{}

	mu       sync.Mutex
	status   Status
	attempts []Attempt // ring, newest last
}

// Start loads the consumer's cursor and runs it until ctx ends; Wait
// returns when it has stopped and saved its cursor.
func Start(ctx context.Context, s Spec) (*Consumer, error) {
	if s.Attempts <= 0 {
		s.Attempts = 10
	}
	if s.RetryMin <= 0 {
		s.RetryMin = time.Second
	}
	if s.RetryMax < s.RetryMin {
		s.RetryMax = max(s.RetryMin, 10*time.Minute)
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	c := &Consumer{s: s, replay: make(chan int64, 1), done: make(chan struct{})}
	if s.Lease != nil {
		go func() { defer close(c.done); c.runLeased(ctx) }()
		return c, nil
	}
	after, err := s.loadCursor(ctx)
	if err != nil {
		return nil, err
	}
	c.status.Cursor = after
	go func() { defer close(c.done); c.run(ctx, after) }()
	return c, nil
}

// runLeased runs the consumer whenever this node holds its lease: from
// the cursor in the store, which the previous holder saved, so a node
// that died hands its work over with at most flushEvery repeated.
func (c *Consumer) runLeased(ctx context.Context) {
	for {
		held, release, err := c.s.Lease.Hold(ctx, c.s.Kind+"."+c.s.Name)
		if err != nil {
			return // ctx ended
		}
		after, err := c.s.loadCursor(held)
		if err != nil {
			c.s.Log.Error("consumer: load the cursor", "kind", c.s.Kind, "name", c.s.Name, "err", err)
			sleep(held, time.Second)
			release()
			continue
		}
		c.mu.Lock()
		c.status.Cursor = after
		c.mu.Unlock()
		c.run(held, after)
		release()
		if ctx.Err() != nil {
			return
		}
	}
}

// Wait blocks until the consumer has stopped.
func (c *Consumer) Wait() { <-c.done }

func (s Spec) loadCursor(ctx context.Context) (int64, error) {
	raw, err := s.Engine.Secret(ctx, s.Kind+"_cursor", s.Name)
	if mantle.ErrorCode(err) == mantle.NotFound {
		// A new consumer: its starting point is saved at once, so that
		// events written while it is stopped, before it handled any, are
		// not taken for the past when it starts again.
		var after int64
		if !s.FromStart {
			if after, err = s.Engine.LastSeq(ctx); err != nil {
				return 0, err
			}
		}
		return after, s.saveCursor(ctx, after)
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(raw), 10, 64)
}

func (s Spec) saveCursor(ctx context.Context, seq int64) error {
	return s.Engine.Transact(ctx, func(tx engine.SystemTx) error {
		return tx.PutSecret(s.Kind+"_cursor", s.Name, []byte(strconv.FormatInt(seq, 10)))
	})
}

// Status returns the consumer's state.
func (c *Consumer) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Attempts returns recent attempts, newest first.
func (c *Consumer) Attempts() []Attempt {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.attempts)
	slices.Reverse(out)
	return out
}

func (c *Consumer) note(a Attempt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.attempts) >= keepAttempts {
		c.attempts = c.attempts[1:]
	}
	c.attempts = append(c.attempts, a)
	if a.Ok {
		c.status.Handled++
		c.status.LastOK = a.At
	} else {
		c.status.Failed++
		c.status.LastError = a.Error
	}
}

// Replay makes the consumer handle events again from sequence from
// (inclusive). A leased consumer may run on another node: the request is
// stored, and whichever node holds the lease takes it within
// replayCheckEvery.
func (c *Consumer) Replay(from int64) error {
	if from < 1 {
		return mantle.Errorf(mantle.Invalid, "consumer.invalid_replay", "from must be a sequence number, 1 or more")
	}
	if c.s.Lease != nil {
		return c.s.Engine.Transact(context.Background(), func(tx engine.SystemTx) error {
			return tx.PutSecret(c.s.Kind+"_replay", c.s.Name, []byte(strconv.FormatInt(from-1, 10)))
		})
	}
	select {
	case <-c.replay: // a newer request replaces one not yet taken
	default:
	}
	c.replay <- from - 1
	return nil
}

// replayCheckEvery is how often the node running a leased consumer looks
// for a replay requested on any node.
const replayCheckEvery = time.Second

// takeReplay moves a stored replay request into the replay channel. It
// reads first and writes only when there is a request: the check runs
// every second on every leased consumer.
func (c *Consumer) takeReplay(ctx context.Context) {
	kind := c.s.Kind + "_replay"
	raw, err := c.s.Engine.Secret(ctx, kind, c.s.Name)
	if err != nil {
		return // none (not_found), or the store will answer next time
	}
	after, perr := strconv.ParseInt(string(raw), 10, 64)
	err = c.s.Engine.Transact(ctx, func(tx engine.SystemTx) error {
		_, err := tx.DeleteSecret(kind, c.s.Name)
		return err
	})
	if err != nil || perr != nil || after < 0 {
		return // a request that does not parse is dropped
	}
	select {
	case <-c.replay:
	default:
	}
	c.replay <- after
}

// run handles events after sequence after, one at a time, in order. done
// is the last sequence fully handled; it is saved every flushEvery and
// when the consumer stops, so a restart resumes right after it.
func (c *Consumer) run(ctx context.Context, after int64) {
	cur := feed.NewCursor(c.s.Hub, c.s.Engine, after)
	done, saved, lastFlush := after, after, time.Now()
	flush := func() {
		lastFlush = time.Now()
		if done == saved {
			return
		}
		if err := c.s.saveCursor(context.WithoutCancel(ctx), done); err != nil {
			c.s.Log.Error("consumer: save cursor", "kind", c.s.Kind, "name", c.s.Name, "err", err)
			return
		}
		saved = done
	}
	defer flush()
	replay := func(from int64) {
		cur.After, done = from, from
		c.mu.Lock()
		c.status.Cursor = from
		c.mu.Unlock()
		flush()
	}
	var check <-chan time.Time // leased: look for replays requested on other nodes
	if c.s.Lease != nil {
		t := time.NewTicker(replayCheckEvery)
		defer t.Stop()
		check = t.C
		c.takeReplay(ctx)
	}
	for {
		select {
		case from := <-c.replay:
			replay(from)
		case <-check:
			c.takeReplay(ctx)
			if len(c.replay) > 0 {
				replay(<-c.replay)
			}
		default:
		}
		evs, wait, err := cur.Next(ctx, 256)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.s.Log.Error("consumer: read the log", "kind", c.s.Kind, "name", c.s.Name, "err", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		for _, ev := range evs {
			if c.s.Match(ev) && !c.handle(ctx, ev) {
				return // stopped mid-event: resume at it next time
			}
			done = ev.Seq
			c.mu.Lock()
			c.status.Cursor = done
			c.mu.Unlock()
			if time.Since(lastFlush) >= flushEvery {
				flush()
			}
			if len(c.replay) > 0 {
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
		case from := <-c.replay:
			replay(from)
		case <-check:
			c.takeReplay(ctx)
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

// Backoff is the wait after failed attempt n (1-based): exponential from
// lo, capped at hi, with jitter over its upper half so that many retrying
// consumers do not beat in step.
func Backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo << min(n-1, 30)
	if d <= 0 || d > hi {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}

// handle runs the handler on ev until it succeeds or runs out of
// attempts (then it is a dead letter). It returns false only when
// stopped.
func (c *Consumer) handle(ctx context.Context, ev *eventlog.Event) bool {
	for n := 1; ; n++ {
		start := time.Now()
		err := c.s.Handle(ctx, ev, n)
		if err != nil && ctx.Err() != nil {
			return false // cut short by the stop: not handled
		}
		a := Attempt{Seq: ev.Seq, Attempt: n, At: start.UTC(), Ok: err == nil, Millis: float64(time.Since(start).Microseconds()) / 1000}
		if err != nil {
			a.Error = err.Error()
		}
		if a.Ok {
			c.note(a)
			return true
		}
		if n >= c.s.Attempts {
			a.DeadNext = true
			c.note(a)
			c.dead(ctx, ev, a)
			return true
		}
		c.note(a)
		if !sleep(ctx, Backoff(n, c.s.RetryMin, c.s.RetryMax)) {
			return false
		}
	}
}

func deadKey(name string, seq int64) string { return fmt.Sprintf("%s/%019d", name, seq) }

func (c *Consumer) dead(ctx context.Context, ev *eventlog.Event, a Attempt) {
	raw, _ := json.Marshal(DeadLetter{Consumer: c.s.Name, Seq: ev.Seq, Attempts: a.Attempt, LastError: a.Error, At: a.At, Event: ev.JSON()})
	err := c.s.Engine.Transact(context.WithoutCancel(ctx), func(tx engine.SystemTx) error {
		return tx.PutSecret(c.s.Kind+"_dead", deadKey(c.s.Name, ev.Seq), raw)
	})
	if err != nil {
		c.s.Log.Error("consumer: store a dead letter", "kind", c.s.Kind, "name", c.s.Name, "seq", ev.Seq, "err", err)
	}
	c.mu.Lock()
	c.status.Dead++
	c.mu.Unlock()
	c.s.Log.Warn("consumer: event moved to the dead letters", "kind", c.s.Kind, "name", c.s.Name, "seq", ev.Seq, "err", a.Error)
	if c.s.AfterDead != nil {
		c.s.AfterDead(ev.Seq)
	}
}

// DeadLetters returns the dead letters of consumer name of a kind, oldest
// first.
func DeadLetters(ctx context.Context, eng *engine.Engine, kind, name string) ([]DeadLetter, error) {
	return Stored[DeadLetter](ctx, eng, kind+"_dead", name)
}

// Stored decodes the secrets of a kind whose keys are name/…, in key
// order: what a consumer (or its owner) keeps per event or per run, keyed
// by zero-padded numbers. Values that do not decode are left out.
func Stored[T any](ctx context.Context, eng *engine.Engine, kind, name string) ([]T, error) {
	all, err := eng.Secrets(ctx, kind)
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
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		var v T
		if json.Unmarshal(all[k], &v) == nil {
			out = append(out, v)
		}
	}
	return out, nil
}

// Admin is what administrators see and do of one kind of durable consumer
// of the log: webhooks, functions' event triggers, automations. The HTTP
// API mounts it once per kind (GET /api/{kind}, GET
// /api/{kind}/{name}/{attempts}, GET …/dead, POST …/replay), so the kinds
// share one administration surface.
type Admin interface {
	// Kind is the path segment: webhooks, functions or automations.
	Kind() string
	// AttemptsName is the path segment of the recent attempts:
	// deliveries, attempts or runs.
	AttemptsName() string
	// ReplayReason is the reason of a replay whose from is not valid.
	ReplayReason() string
	// Statuses lists each consumer of the kind with its state.
	Statuses() any
	// Attempts lists a consumer's recent attempts; not_found for a name
	// the project does not have.
	Attempts(name string) (any, error)
	// DeadLetters lists the events given up on; not_found as Attempts.
	DeadLetters(ctx context.Context, name string) (any, error)
	// Replay moves the consumer back to deliver again from a sequence;
	// not_found as Attempts, invalid for a from less than 1.
	Replay(ctx context.Context, name string, from int64) error
}
