package fn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/consumer"
	"github.com/mantlehq/mantle/internal/egress"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/policy"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/tetratelabs/wazero"
)

// KindTrigger is the consumer kind of event triggers: their cursors and
// dead letters are the store's fn_cursor and fn_dead secrets.
const KindTrigger = "fn"

// Options configure the manager.
type Options struct {
	Engine     *engine.Engine
	Hub        *eventlog.Hub
	Log        *slog.Logger
	CacheDir   string // the compilation cache; empty: in memory
	ProjectDir string // module paths are relative to it
	// AllowPrivate lets http.fetch reach loopback and private addresses.
	AllowPrivate bool
	// Now is the clock of schedules; default time.Now.
	Now func() time.Time
	// Lease, when set, runs each consumer and schedule on one node of a
	// cluster at a time (internal/bus); nil runs them here.
	Lease consumer.Leaser
}

// Run is one finished call.
type Run struct {
	Function string
	Trigger  string
	Seq      int64     // event triggers: the event
	Tick     time.Time // schedules: the tick
	Err      error
	Duration time.Duration
}

// Manager loads the project's functions and runs their triggers.
type Manager struct {
	o      Options
	cache  wazero.CompilationCache
	client *http.Client

	observe atomic.Pointer[func(Run)]

	mu     sync.RWMutex
	funcs  map[string]*function
	routes *http.ServeMux
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// function is one loaded function.
type function struct {
	def      schema.Function
	mod      *Module // nil when it failed to load
	loadErr  error
	allow    *policy.CallerRule
	host     *EngineHost
	logs     *logRing
	consumer *consumer.Consumer // guarded by Manager.mu
	sched    *consumer.Schedule // guarded by Manager.mu
	stats    stats
	lag      stats                                                // event triggers: from commit to the start of the call
	native   func(ctx context.Context, in []byte) ([]byte, error) // a Go twin, for benchmarks
}

// New returns a manager with no functions; see Load and Start.
func New(o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	var cache wazero.CompilationCache
	if o.CacheDir != "" {
		if c, err := wazero.NewCompilationCacheWithDir(o.CacheDir); err == nil {
			cache = c
		} else {
			o.Log.Warn("functions: no compilation cache on disk", "err", err)
		}
	}
	if cache == nil {
		cache = wazero.NewCompilationCache()
	}
	tr := &http.Transport{DialContext: egress.NewDialer(o.AllowPrivate).DialContext, MaxIdleConnsPerHost: 4,
		IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Manager{o: o, cache: cache, client: client, funcs: map[string]*function{}, routes: http.NewServeMux()}
}

// Validate builds and compiles each function's module into the
// compilation cache and checks its ABI and limits, as `mantle
// plan` and `mantle apply` do; it returns why each function that would
// not load would not, by name.
func Validate(ctx context.Context, projectDir, cacheDir string, defs []schema.Function) map[string]error {
	m := New(Options{ProjectDir: projectDir, CacheDir: cacheDir, Log: slog.New(slog.DiscardHandler)})
	errs := map[string]error{}
	var sources sourceMemo
	for _, d := range defs {
		mod, err := m.compile(ctx, d, &sources)
		if err != nil {
			errs[d.Name] = err
			continue
		}
		mod.Close(ctx)
	}
	return errs
}

func (m *Manager) compile(ctx context.Context, d schema.Function, sources *sourceMemo) (*Module, error) {
	p, err := sources.get(ctx, filepath.Join(m.o.ProjectDir, d.Module), Style(d.Style))
	if err != nil {
		return nil, err
	}
	return compilePrepared(ctx, m.cache, d.Name, p, d.Env, Limits{Timeout: d.Timeout, MemoryBytes: d.MemoryBytes,
		MaxOutput: d.MaxOutput, MaxInstances: d.MaxInstances, Warm: d.Warm})
}

// sourceMemo builds and prepares each module of one Load once, however
// many functions name it.
type sourceMemo struct {
	mu      sync.Mutex
	entries map[sourceKey]*sourceEntry
}

type sourceKey struct {
	path  string
	style Style
}

type sourceEntry struct {
	once sync.Once
	p    prepared
	err  error
}

func (s *sourceMemo) get(ctx context.Context, path string, style Style) (prepared, error) {
	s.mu.Lock()
	if s.entries == nil {
		s.entries = map[sourceKey]*sourceEntry{}
	}
	e := s.entries[sourceKey{path, style}]
	if e == nil {
		e = &sourceEntry{}
		s.entries[sourceKey{path, style}] = e
	}
	s.mu.Unlock()
	e.once.Do(func() {
		var wasm []byte
		if wasm, e.err = Source(ctx, path, style); e.err == nil {
			e.p = prepare(wasm)
		}
	})
	return e.p, e.err
}

// Load builds, compiles and instantiates the functions (the first call
// after it runs at warm speed), replacing those loaded before. A function
// that fails to load is kept with its error: its route answers 503 and
// GET /api/functions shows why; the others load. Load does not start the
// event triggers and schedules; Start does.
func (m *Manager) Load(ctx context.Context, defs []schema.Function) error {
	loaded := make([]*function, len(defs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(runtime.GOMAXPROCS(0), 2)) // compiling is CPU-bound
	var sources sourceMemo
	for i, d := range defs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			loaded[i] = m.load(ctx, d, &sources)
		})
	}
	wg.Wait()
	funcs := map[string]*function{}
	routes := http.NewServeMux()
	var errs []error
	for _, f := range loaded {
		if f.loadErr != nil {
			errs = append(errs, fmt.Errorf("function %s: %w", f.def.Name, f.loadErr))
		}
		funcs[f.def.Name] = f
		if f.def.HTTP != nil {
			routes.Handle(f.def.HTTP.Method+" "+f.def.HTTP.Path, m.httpHandler(f))
		}
	}
	m.mu.Lock()
	old := m.funcs
	m.funcs, m.routes = funcs, routes
	m.mu.Unlock()
	for _, f := range old {
		if f.mod != nil {
			f.mod.Close(context.Background())
		}
	}
	return errors.Join(errs...)
}

// load builds and compiles one function; a failure is kept in loadErr.
func (m *Manager) load(ctx context.Context, d schema.Function, sources *sourceMemo) *function {
	f := &function{def: d, logs: newLogRing(1000)}
	f.host = &EngineHost{Engine: m.o.Engine, Identity: mantle.Identity{ID: "fn:" + d.Name, Roles: d.Roles},
		Hosts: d.Hosts, Client: m.client, Log: m.o.Log}
	var err error
	if f.allow, err = policy.CompileCaller("function "+d.Name, d.Allow); err == nil {
		start := time.Now()
		if f.mod, err = m.compile(ctx, d, sources); err == nil {
			m.o.Log.Info("function loaded", "function", d.Name, "style", f.mod.Style(), "ms", time.Since(start).Milliseconds())
		}
	}
	if err != nil {
		f.loadErr = err
		m.o.Log.Error("function failed to load; its triggers are off", "function", d.Name, "err", err)
	}
	return f
}

// Start runs the event triggers and schedules of the loaded functions
// until Stop.
func (m *Manager) Start(ctx context.Context) error {
	m.Stop()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.mu.Lock()
	m.cancel = cancel
	funcs := m.list()
	m.mu.Unlock()
	for _, f := range funcs {
		if f.mod == nil {
			continue
		}
		if len(f.def.On) > 0 {
			if err := m.startTrigger(ctx, f); err != nil {
				cancel()
				return err
			}
		}
		if f.def.Cron != "" {
			if err := m.startSchedule(ctx, f); err != nil {
				cancel()
				return err
			}
		}
	}
	return nil
}

// Stop ends the triggers and schedules, saving their cursors, and waits
// for calls they started.
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

// Close stops everything and closes the modules.
func (m *Manager) Close() {
	m.Stop()
	m.mu.Lock()
	funcs := m.funcs
	m.funcs = map[string]*function{}
	m.mu.Unlock()
	for _, f := range funcs {
		if f.mod != nil {
			f.mod.Close(context.Background())
		}
	}
}

// list returns the functions by name; m.mu is held.
func (m *Manager) list() []*function {
	out := make([]*function, 0, len(m.funcs))
	for _, f := range m.funcs {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].def.Name < out[j].def.Name })
	return out
}

func (m *Manager) function(name string) (*function, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f := m.funcs[name]
	if f == nil {
		return nil, mantle.Errorf(mantle.NotFound, "fn.not_found", "no function %q", name)
	}
	return f, nil
}

// call runs f on inv and records the outcome in its log and stats.
func (m *Manager) call(ctx context.Context, f *function, inv *Invocation) (*Result, error) {
	if f.mod == nil && f.native == nil {
		return nil, &mantle.Error{Code: mantle.Unavailable, Reason: "fn.not_loaded", Message: fmt.Sprintf("function %s did not load: %v", f.def.Name, f.loadErr)}
	}
	inv.ABI, inv.Function, inv.Env = ABIVersion, f.def.Name, f.def.Env
	in, err := json.Marshal(inv)
	if err != nil {
		return nil, err
	}
	tag := inv.Trigger
	start := time.Now()
	var out []byte
	if f.native != nil {
		out, err = f.native(ctx, in)
	} else {
		out, err = f.mod.Call(ctx, in, f.host, func(level int, msg string) { f.logs.add(level, tag, msg) })
	}
	d := time.Since(start)
	f.stats.record(d, err)
	if err == nil {
		var res Result
		if jerr := json.Unmarshal(out, &res); jerr != nil && len(out) > 0 {
			err = &Failure{Kind: "error", Message: "the output is not the result JSON: " + jerr.Error()}
		} else if res.Error != "" {
			err = &Failure{Kind: "error", Message: res.Error}
		} else {
			return &res, nil
		}
	}
	f.logs.add(LevelError, tag, err.Error())
	return nil, err
}

// Invoke runs a function once with data as the invocation's data, as the
// caller in ctx (`mantle fn invoke`, POST /api/functions/{name}/invoke).
func (m *Manager) Invoke(ctx context.Context, name string, data json.RawMessage) (*Result, error) {
	f, err := m.function(name)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	res, err := m.call(ctx, f, &Invocation{Trigger: TriggerInvoke, Data: data, Caller: callerOf(mantle.IdentityFrom(ctx))})
	m.report(Run{Function: name, Trigger: TriggerInvoke, Err: err})
	return res, err
}

// OnRun sets a function told of every finished call (tests, metrics);
// nil removes it.
func (m *Manager) OnRun(f func(Run)) {
	if f == nil {
		m.observe.Store(nil)
		return
	}
	m.observe.Store(&f)
}

func (m *Manager) report(r Run) {
	if f := m.observe.Load(); f != nil {
		(*f)(r)
	}
}

// Status is a function as GET /api/functions lists it.
type Status struct {
	Name     string         `json:"name"`
	Module   string         `json:"module"`
	Style    Style          `json:"style,omitempty"`
	Loaded   bool           `json:"loaded"`
	Error    string         `json:"error,omitempty"`
	HTTP     string         `json:"http,omitempty"`
	On       []string       `json:"on,omitempty"`
	Cron     string         `json:"cron,omitempty"`
	Limits   map[string]any `json:"limits"`
	Calls    int64          `json:"calls"`
	Failures int64          `json:"failures"`
	P50ms    float64        `json:"p50ms"`
	P99ms    float64        `json:"p99ms"`
	// LagP50ms… are event triggers' delay from commit to the start of
	// the call, over the last 10,000 events; LagCount counts them all.
	LagCount int64                    `json:"triggerLagCount,omitempty"`
	LagP50ms float64                  `json:"triggerLagP50ms,omitempty"`
	LagP90ms float64                  `json:"triggerLagP90ms,omitempty"`
	LagP99ms float64                  `json:"triggerLagP99ms,omitempty"`
	Trigger  *consumer.Status         `json:"trigger,omitempty"`
	Schedule *consumer.ScheduleStatus `json:"schedule,omitempty"`
}

// Statuses lists the functions by name.
func (m *Manager) Statuses() []Status {
	m.mu.RLock()
	defer m.mu.RUnlock()
	funcs := m.list()
	out := make([]Status, 0, len(funcs))
	for _, f := range funcs {
		s := Status{Name: f.def.Name, Module: f.def.Module, Loaded: f.mod != nil || f.native != nil, Cron: f.def.Cron}
		if f.loadErr != nil {
			s.Error = f.loadErr.Error()
		}
		if f.def.HTTP != nil {
			s.HTTP = f.def.HTTP.Method + " " + f.def.HTTP.Path
		}
		for _, t := range f.def.On {
			s.On = append(s.On, t.String())
		}
		if f.mod != nil {
			s.Style = f.mod.Style()
			l := f.mod.Limits()
			s.Limits = map[string]any{"timeout": l.Timeout.String(), "memoryBytes": l.MemoryBytes, "maxOutput": l.MaxOutput,
				"instances": l.MaxInstances, "warm": l.Warm}
		}
		if f.consumer != nil { // before the counts, which lead it: a reader never sees the cursor ahead of them
			st := f.consumer.Status()
			s.Trigger = &st
		}
		s.Calls, s.Failures, s.P50ms, s.P99ms = f.stats.snapshot()
		var q []float64
		s.LagCount, _, q = f.lag.quantiles(0.5, 0.9, 0.99)
		s.LagP50ms, s.LagP90ms, s.LagP99ms = q[0], q[1], q[2]
		if f.sched != nil {
			st := f.sched.Status()
			s.Schedule = &st
		}
		out = append(out, s)
	}
	return out
}

// Logs returns a function's log lines after line number after, oldest
// first, at most limit.
func (m *Manager) Logs(name string, after int64, limit int) ([]LogLine, error) {
	f, err := m.function(name)
	if err != nil {
		return nil, err
	}
	return f.logs.since(after, limit), nil
}

// Attempts returns an event-triggered function's recent attempts, newest
// first.
func (m *Manager) Attempts(name string) ([]consumer.Attempt, error) {
	f, err := m.function(name)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	c := f.consumer
	m.mu.RUnlock()
	if c == nil {
		return []consumer.Attempt{}, nil
	}
	return c.Attempts(), nil
}

// DeadLetters returns an event-triggered function's dead letters.
func (m *Manager) DeadLetters(ctx context.Context, name string) ([]consumer.DeadLetter, error) {
	if _, err := m.function(name); err != nil {
		return nil, err
	}
	return consumer.DeadLetters(ctx, m.o.Engine, KindTrigger, name)
}

// Replay makes an event-triggered function handle events again from
// sequence from.
func (m *Manager) Replay(name string, from int64) error {
	f, err := m.function(name)
	if err != nil {
		return err
	}
	m.mu.RLock()
	c := f.consumer
	m.mu.RUnlock()
	if c == nil {
		return mantle.Errorf(mantle.FailedPrecondition, "fn.no_trigger", "function %s has no running event trigger", name)
	}
	return c.Replay(from)
}

// HTTPError is the error an HTTP caller sees for a failed call of
// function name: a timeout is 504 fn.timeout, a trap 500 fn.trap, a
// failure the function reported 500 fn.error with its message.
func HTTPError(name string, err error) error {
	var f *Failure
	if !errors.As(err, &f) {
		return err
	}
	switch f.Kind {
	case "timeout":
		return &mantle.Error{Code: mantle.Unavailable, Reason: "fn.timeout", Status: http.StatusGatewayTimeout, Message: fmt.Sprintf("function %s: %s", name, f.Message)}
	case "trap":
		return &mantle.Error{Code: mantle.Unavailable, Reason: "fn.trap", Status: http.StatusInternalServerError, Message: fmt.Sprintf("function %s trapped; its log has the details", name)}
	case "closed":
		return &mantle.Error{Code: mantle.Unavailable, Reason: "fn.unavailable", Message: fmt.Sprintf("function %s is being replaced; retry", name)}
	}
	return &mantle.Error{Code: mantle.Unavailable, Reason: "fn." + f.Kind, Status: http.StatusInternalServerError, Message: fmt.Sprintf("function %s failed: %s", name, strings.TrimSpace(f.Message))}
}

// AddNative adds a function implemented in Go with the same invocation
// and result JSON as a module: the native twin `mantle bench` compares a
// WebAssembly function with (MANTLE_BENCH_NATIVE=1). It replaces a
// function of the same name and mounts its route.
func (m *Manager) AddNative(d schema.Function, h func(ctx context.Context, in []byte) ([]byte, error)) error {
	f := &function{def: d, logs: newLogRing(1000), native: h}
	var err error
	if f.allow, err = policy.CompileCaller("function "+d.Name, d.Allow); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.funcs[d.Name] = f
	if d.HTTP != nil {
		m.routes.Handle(d.HTTP.Method+" "+d.HTTP.Path, m.httpHandler(f))
	}
	return nil
}

// NativeEcho is the Go twin of the bench echo function
// (examples/bench/functions/echo): it answers the request's JSON body as
// it is, or with ?decode=1 decoded and encoded again with the caller.
func NativeEcho(_ context.Context, in []byte) ([]byte, error) {
	var inv Invocation
	if err := json.Unmarshal(in, &inv); err != nil {
		return nil, err
	}
	if inv.Request == nil {
		return json.Marshal(Result{Status: 400, Body: "send JSON"})
	}
	body := []byte(inv.Request.Body)
	if !strings.Contains(inv.Request.Query, "decode=1") {
		if !json.Valid(body) {
			return json.Marshal(Result{Status: 400, Body: "send JSON"})
		}
		return json.Marshal(Result{Status: 200, JSON: body})
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return json.Marshal(Result{Status: 400, Body: "send JSON"})
	}
	out, err := json.Marshal(map[string]any{"function": inv.Function, "caller": inv.Caller.ID, "echo": v})
	if err != nil {
		return nil, err
	}
	return json.Marshal(Result{Status: 200, JSON: out})
}

// Admin is the event-triggered functions' administration surface
// (consumer.Admin).
func (m *Manager) Admin() consumer.Admin { return fnAdmin{m} }

type fnAdmin struct{ m *Manager }

func (a fnAdmin) Kind() string                      { return "functions" }
func (a fnAdmin) AttemptsName() string              { return "attempts" }
func (a fnAdmin) ReplayReason() string              { return "fn.invalid_replay" }
func (a fnAdmin) Statuses() any                     { return a.m.Statuses() }
func (a fnAdmin) Attempts(name string) (any, error) { return a.m.Attempts(name) }
func (a fnAdmin) DeadLetters(ctx context.Context, name string) (any, error) {
	return a.m.DeadLetters(ctx, name)
}
func (a fnAdmin) Replay(_ context.Context, name string, from int64) error {
	return a.m.Replay(name, from)
}
