package automation

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/consumer"
	"github.com/mantlehq/mantle/internal/egress"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/fn"
	"github.com/mantlehq/mantle/internal/policy"
	"github.com/mantlehq/mantle/internal/schema"
)

// Kind is the consumer kind of automations: cursors, dead letters and
// schedules are the store's automation_* secrets.
const Kind = "automation"

// KindFailed is the secret kind of failed runs, kept with their inputs.
const KindFailed = Kind + "_failed"

// keepRuns is how many recent runs each automation remembers in memory.
const keepRuns = 200

// Options configure the manager.
type Options struct {
	Engine       *engine.Engine
	Hub          *eventlog.Hub
	Funcs        *fn.Manager
	Log          *slog.Logger
	AllowPrivate bool // webhook steps may call loopback and private addresses
	Now          func() time.Time
	// Lease, when set, runs each consumer and schedule on one node of a
	// cluster at a time (internal/bus); nil runs them here.
	Lease consumer.Leaser
}

// Manager runs the project's automations.
type Manager struct {
	o      Options
	client *http.Client
	onRun  atomic.Pointer[func(Run)]
	onDead atomic.Pointer[func(name string, seq int64)]

	mu     sync.RWMutex
	autos  map[string]*auto
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type auto struct {
	c        *compiled
	allow    *policy.CallerRule
	identity mantle.Identity
	consumer *consumer.Consumer // guarded by Manager.mu
	sched    *consumer.Schedule // guarded by Manager.mu

	mu      sync.Mutex
	runs    []Run // ring, newest last
	n       int64
	count   counts
	pending *pending // an event's run being retried: resume at its failed step
}

type counts struct {
	Runs     int64 `json:"runs"`
	Failures int64 `json:"failures"`
	Skipped  int64 `json:"skipped"` // the condition was false
}

// pending is a run whose step failed, kept for the retry of its event.
type pending struct {
	seq     int64
	outputs map[string]any
	done    []Step
}

// Run is one run of an automation.
type Run struct {
	N          int64     `json:"n"`
	Automation string    `json:"automation"`
	Trigger    string    `json:"trigger"` // event, schedule or hook
	Seq        int64     `json:"seq,omitempty"`
	Tick       time.Time `json:"tick,omitzero"`
	Attempt    int       `json:"attempt,omitempty"`
	Started    time.Time `json:"started"`
	Millis     float64   `json:"ms"`
	OK         bool      `json:"ok"`
	FailedStep string    `json:"failedStep,omitempty"`
	Error      string    `json:"error,omitempty"`
	Steps      []Step    `json:"steps"`
}

// Step is one step of a run: what it was given and what it made.
type Step struct {
	Name   string          `json:"name"`
	Kind   string          `json:"kind"`
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
	Error  string          `json:"error,omitempty"`
	Millis float64         `json:"ms"`
}

// New returns a manager with no automations.
func New(o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	tr := &http.Transport{DialContext: egress.NewDialer(o.AllowPrivate).DialContext, MaxIdleConnsPerHost: 4,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
	return &Manager{o: o, autos: map[string]*auto{}, client: &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Load compiles the automations, replacing those loaded before; it does
// not start their triggers (Start does).
func (m *Manager) Load(defs []schema.Automation) error {
	cs, err := compile(defs)
	if err != nil {
		return err
	}
	autos := map[string]*auto{}
	for _, c := range cs {
		for _, st := range c.def.Do {
			if st.Kind == "webhook" {
				if err := egress.CheckURL(st.URL, m.o.AllowPrivate); err != nil {
					return fmt.Errorf("automation %s step %s: %w", c.def.Name, st.Name, err)
				}
			}
		}
		allow, err := policy.CompileCaller("automation "+c.def.Name, c.def.Allow)
		if err != nil {
			return fmt.Errorf("automation %s allow: %w", c.def.Name, err)
		}
		autos[c.def.Name] = &auto{c: c, allow: allow, identity: mantle.Identity{ID: "automation:" + c.def.Name, Roles: c.def.Roles}}
	}
	m.mu.Lock()
	m.autos = autos
	m.mu.Unlock()
	return nil
}

// OnRun sets a function told of every finished run (tests); nil removes
// it.
func (m *Manager) OnRun(f func(Run)) {
	if f == nil {
		m.onRun.Store(nil)
		return
	}
	m.onRun.Store(&f)
}

// OnDead sets a function told when an event's dead letter is stored
// (tests); nil removes it.
func (m *Manager) OnDead(f func(name string, seq int64)) {
	if f == nil {
		m.onDead.Store(nil)
		return
	}
	m.onDead.Store(&f)
}

// Start runs the event triggers and schedules until Stop.
func (m *Manager) Start(ctx context.Context) error {
	m.Stop()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.mu.Lock()
	m.cancel = cancel
	autos := m.list()
	m.mu.Unlock()
	for _, a := range autos {
		if len(a.c.def.On) > 0 {
			if err := m.startTrigger(ctx, a); err != nil {
				cancel()
				return fmt.Errorf("automation %s: %w", a.c.def.Name, err)
			}
		}
		if a.c.def.Cron != "" {
			if err := m.startSchedule(ctx, a); err != nil {
				cancel()
				return fmt.Errorf("automation %s: %w", a.c.def.Name, err)
			}
		}
	}
	return nil
}

// Stop ends the triggers and schedules, saving their cursors.
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

func (m *Manager) list() []*auto {
	out := make([]*auto, 0, len(m.autos))
	for _, a := range m.autos {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].c.def.Name < out[j].c.def.Name })
	return out
}

func (m *Manager) get(name string) (*auto, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if a := m.autos[name]; a != nil {
		return a, nil
	}
	return nil, mantle.Errorf(mantle.NotFound, "automation.not_found", "no automation %q", name)
}

func (m *Manager) startTrigger(ctx context.Context, a *auto) error {
	match := func(ev *eventlog.Event) bool {
		for _, t := range a.c.def.On {
			if t.Matches(ev.Type, ev.Collection) {
				return true
			}
		}
		return false
	}
	handle := func(ctx context.Context, ev *eventlog.Event, attempt int) error {
		vars, err := eventVars(ev)
		if err != nil {
			return err
		}
		a.mu.Lock()
		p := a.pending
		if p == nil || p.seq != ev.Seq {
			p = nil
		}
		a.mu.Unlock()
		if p == nil { // a first attempt (or a retry after a restart): check the condition
			ok, err := m.condition(a, vars)
			if err != nil {
				m.finish(ctx, a, Run{Trigger: "event", Seq: ev.Seq, Attempt: attempt, Started: time.Now().UTC(), Error: err.Error(), FailedStep: "if"}, attempt >= a.c.def.MaxAttempts)
				return err
			}
			if !ok {
				a.mu.Lock()
				a.count.Skipped++
				a.mu.Unlock()
				return nil
			}
			p = &pending{seq: ev.Seq, outputs: map[string]any{}}
		}
		run := m.execute(ctx, a, Run{Trigger: "event", Seq: ev.Seq, Attempt: attempt}, vars, p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.mu.Lock()
		if run.OK || attempt >= a.c.def.MaxAttempts {
			a.pending = nil
		} else {
			a.pending = p
		}
		a.mu.Unlock()
		m.finish(ctx, a, run, !run.OK && attempt >= a.c.def.MaxAttempts)
		if !run.OK {
			return fmt.Errorf("step %s: %s", run.FailedStep, run.Error)
		}
		return nil
	}
	c, err := consumer.Start(ctx, consumer.Spec{Name: a.c.def.Name, Kind: Kind, Match: match, Handle: handle,
		Attempts: a.c.def.MaxAttempts, RetryMin: a.c.def.RetryMin, RetryMax: a.c.def.RetryMax,
		Engine: m.o.Engine, Hub: m.o.Hub, Log: m.o.Log, Lease: m.o.Lease,
		AfterDead: func(seq int64) {
			if f := m.onDead.Load(); f != nil {
				(*f)(a.c.def.Name, seq)
			}
		}})
	if err != nil {
		return err
	}
	m.mu.Lock()
	a.consumer = c
	m.mu.Unlock()
	m.wg.Add(1)
	go func() { defer m.wg.Done(); c.Wait() }()
	return nil
}

func (m *Manager) startSchedule(ctx context.Context, a *auto) error {
	sc, err := consumer.StartSchedule(ctx, consumer.ScheduleSpec{Name: a.c.def.Name, Kind: Kind, Cron: a.c.def.Cron, CatchUp: a.c.def.CatchUp,
		Engine: m.o.Engine, Log: m.o.Log, Now: m.o.Now, Lease: m.o.Lease,
		Run: func(ctx context.Context, at time.Time, catchUp bool) error {
			vars := baseVars()
			vars["tick"] = map[string]any{"cron": a.c.def.Cron, "at": at.UTC().Format(time.RFC3339), "catchUp": catchUp}
			run := Run{Trigger: "schedule", Tick: at}
			ok, err := m.condition(a, vars)
			if err != nil {
				run.Started, run.Error, run.FailedStep = time.Now().UTC(), err.Error(), "if"
				m.finish(ctx, a, run, true)
				return err
			}
			if !ok {
				a.mu.Lock()
				a.count.Skipped++
				a.mu.Unlock()
				return nil
			}
			run = m.execute(ctx, a, run, vars, &pending{outputs: map[string]any{}})
			if ctx.Err() != nil {
				return ctx.Err()
			}
			m.finish(ctx, a, run, !run.OK)
			if !run.OK {
				return fmt.Errorf("step %s: %s", run.FailedStep, run.Error)
			}
			return nil
		},
		Skipped: func(last time.Time) {
			m.o.Log.Warn("automation: ticks were missed while the server was down; not run (catchUp is off)", "automation", a.c.def.Name, "last", last)
		},
	})
	if err != nil {
		return err
	}
	m.mu.Lock()
	a.sched = sc
	m.mu.Unlock()
	m.wg.Add(1)
	go func() { defer m.wg.Done(); sc.Wait() }()
	return nil
}

// Trigger runs an automation's hook with input (a JSON value) as the
// caller in ctx, and returns the run. A failed run is an
// automation.step_failed error, with the run.
func (m *Manager) Trigger(ctx context.Context, name string, input json.RawMessage) (*Run, error) {
	a, err := m.get(name)
	if err != nil {
		return nil, err
	}
	if !a.c.def.Hook {
		return nil, mantle.Errorf(mantle.FailedPrecondition, "automation.no_hook", "automation %s has no hook; set hook: true", name)
	}
	if err := a.allow.Allow(mantle.IdentityFrom(ctx), http.MethodPost); err != nil {
		return nil, err
	}
	var in any
	if len(input) > 0 {
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, mantle.Errorf(mantle.Invalid, "request.malformed_json", "the body is not JSON")
		}
	}
	vars := baseVars()
	vars["input"] = in
	run := Run{Trigger: "hook"}
	ok, err := m.condition(a, vars)
	if err != nil {
		return nil, &mantle.Error{Code: mantle.Invalid, Reason: "automation.condition_failed", Message: err.Error()}
	}
	if !ok {
		a.mu.Lock()
		a.count.Skipped++
		a.mu.Unlock()
		return &Run{Automation: name, Trigger: "hook", OK: true, Steps: []Step{}}, nil
	}
	run = m.execute(ctx, a, run, vars, &pending{outputs: map[string]any{}})
	m.finish(ctx, a, run, !run.OK)
	if !run.OK {
		return &run, &mantle.Error{Code: mantle.Unavailable, Reason: "automation.step_failed", Status: http.StatusBadGateway,
			Message: fmt.Sprintf("automation %s: step %s failed: %s", name, run.FailedStep, run.Error)}
	}
	return &run, nil
}

func (m *Manager) condition(a *auto, vars map[string]any) (bool, error) {
	if a.c.cond == nil {
		return true, nil
	}
	v, err := a.c.cond.eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s: the condition is %T, not a bool", a.c.cond.pos, v)
	}
	return b, nil
}

// finish records a run: in memory, in the failed runs when it is final,
// and to the observer.
func (m *Manager) finish(ctx context.Context, a *auto, run Run, final bool) {
	a.mu.Lock()
	a.n++
	run.N, run.Automation = a.n, a.c.def.Name
	if run.Steps == nil {
		run.Steps = []Step{}
	}
	if len(a.runs) >= keepRuns {
		a.runs = slices.Delete(a.runs, 0, 1)
	}
	a.runs = append(a.runs, run)
	a.count.Runs++
	if !run.OK {
		a.count.Failures++
	}
	a.mu.Unlock()
	if !run.OK {
		m.o.Log.Warn("automation run failed", "automation", run.Automation, "trigger", run.Trigger, "seq", run.Seq, "step", run.FailedStep, "err", run.Error)
	}
	if final && !run.OK {
		raw, _ := json.Marshal(run)
		key := fmt.Sprintf("%s/%019d", run.Automation, run.Started.UnixNano())
		err := m.o.Engine.Transact(context.WithoutCancel(ctx), func(tx engine.SystemTx) error { return tx.PutSecret(KindFailed, key, raw) })
		if err != nil {
			m.o.Log.Error("automation: store a failed run", "automation", run.Automation, "err", err)
		}
	}
	if f := m.onRun.Load(); f != nil {
		(*f)(run)
	}
}

// Status is an automation as GET /api/automations lists it.
type Status struct {
	Name     string                   `json:"name"`
	On       []string                 `json:"on,omitempty"`
	Cron     string                   `json:"cron,omitempty"`
	Hook     bool                     `json:"hook,omitempty"`
	Steps    []string                 `json:"steps"`
	Counts   counts                   `json:"counts"`
	Trigger  *consumer.Status         `json:"trigger,omitempty"`
	Schedule *consumer.ScheduleStatus `json:"schedule,omitempty"`
}

// Statuses lists the automations by name.
func (m *Manager) Statuses() []Status {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := []Status{}
	for _, a := range m.list() {
		s := Status{Name: a.c.def.Name, Cron: a.c.def.Cron, Hook: a.c.def.Hook}
		for _, t := range a.c.def.On {
			s.On = append(s.On, t.String())
		}
		for _, st := range a.c.def.Do {
			s.Steps = append(s.Steps, st.Name+" ("+st.Kind+")")
		}
		if a.consumer != nil {
			st := a.consumer.Status()
			s.Trigger = &st
		}
		if a.sched != nil {
			st := a.sched.Status()
			s.Schedule = &st
		}
		a.mu.Lock()
		s.Counts = a.count
		a.mu.Unlock()
		out = append(out, s)
	}
	return out
}

// Runs returns an automation's recent runs, newest first.
func (m *Manager) Runs(name string) ([]Run, error) {
	a, err := m.get(name)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.runs)
	slices.Reverse(out)
	if out == nil {
		out = []Run{}
	}
	return out, nil
}

// Failed returns an automation's failed runs kept in the store (the final
// attempt of each), oldest first.
func (m *Manager) Failed(ctx context.Context, name string) ([]Run, error) {
	if _, err := m.get(name); err != nil {
		return nil, err
	}
	return consumer.Stored[Run](ctx, m.o.Engine, KindFailed, name)
}

// DeadLetters returns the events an automation gave up on.
func (m *Manager) DeadLetters(ctx context.Context, name string) ([]consumer.DeadLetter, error) {
	if _, err := m.get(name); err != nil {
		return nil, err
	}
	return consumer.DeadLetters(ctx, m.o.Engine, Kind, name)
}

// Replay makes an event-triggered automation run again from sequence
// from.
func (m *Manager) Replay(name string, from int64) error {
	a, err := m.get(name)
	if err != nil {
		return err
	}
	m.mu.RLock()
	c := a.consumer
	m.mu.RUnlock()
	if c == nil {
		return mantle.Errorf(mantle.FailedPrecondition, "automation.no_trigger", "automation %s has no event trigger", name)
	}
	return c.Replay(from)
}

// Admin is the automations' administration surface (consumer.Admin).
func (m *Manager) Admin() consumer.Admin { return admin{m} }

type admin struct{ m *Manager }

func (a admin) Kind() string                      { return "automations" }
func (a admin) AttemptsName() string              { return "runs" }
func (a admin) ReplayReason() string              { return "automation.invalid_replay" }
func (a admin) Statuses() any                     { return a.m.Statuses() }
func (a admin) Attempts(name string) (any, error) { return a.m.Runs(name) }
func (a admin) DeadLetters(ctx context.Context, name string) (any, error) {
	return a.m.DeadLetters(ctx, name)
}
func (a admin) Replay(_ context.Context, name string, from int64) error {
	return a.m.Replay(name, from)
}
