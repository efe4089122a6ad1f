// Package app is the composition root: it opens the store, builds the
// engine and the HTTP stack, and starts and stops them in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/mantlehq/mantle/internal/api/kafka"
	"github.com/mantlehq/mantle/internal/api/openapi"
	"github.com/mantlehq/mantle/internal/api/realtime"
	"github.com/mantlehq/mantle/internal/api/rest"
	"github.com/mantlehq/mantle/internal/auth"
	"github.com/mantlehq/mantle/internal/automation"
	"github.com/mantlehq/mantle/internal/bus"
	"github.com/mantlehq/mantle/internal/config"
	"github.com/mantlehq/mantle/internal/consumer"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/fn"
	"github.com/mantlehq/mantle/internal/gateway"
	"github.com/mantlehq/mantle/internal/policy"
	"github.com/mantlehq/mantle/internal/project"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/postgres"
	"github.com/mantlehq/mantle/internal/store/sqlite"
	"github.com/mantlehq/mantle/internal/webhook"
)

// App is a running Mantle node.
type App struct {
	Config config.Config
	Log    *slog.Logger
	Store  store.Store
	Hub    *eventlog.Hub
	Engine *engine.Engine
	Auth   *auth.Service
	Hooks  *webhook.Manager
	Funcs  *fn.Manager
	Autos  *automation.Manager
	// Bus joins this node to the others of a cluster (--nats); nil alone.
	Bus *bus.Bus

	closer   []func()    // what Open opened, closed in reverse order by Close
	draining atomic.Bool // set when shutdown begins: not ready any more

	webhooks  []schema.Webhook  // of the applied project, started by StartWorkers
	functions []schema.Function // of the applied project, loaded by StartWorkers
}

// StartWorkers starts delivering the project's webhooks and loads its
// functions and runs their triggers (serve does; one-shot commands do
// not). A function that fails to load is logged and reported by GET
// /api/functions; it does not stop the server.
func (a *App) StartWorkers(ctx context.Context) error {
	if err := a.Hooks.Start(ctx, a.webhooks); err != nil {
		return err
	}
	a.Funcs.Load(ctx, a.functions) // errors are kept per function
	if a.Config.BenchNative {
		twin := schema.Function{Name: "native_echo", Module: "(native)", HTTP: &schema.Route{Method: "POST", Path: "/fn/native/echo"}, Allow: "true"}
		if err := a.Funcs.AddNative(twin, fn.NativeEcho); err != nil {
			return err
		}
	}
	if err := a.Funcs.Start(ctx); err != nil {
		return err
	}
	return a.Autos.Start(ctx)
}

// Functions returns the functions of the applied project.
func (a *App) Functions() []schema.Function { return a.functions }

// Open opens the data directory and builds the engine. It does not load
// the project; see ApplyProject.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *App, err error) {
	// Everything opened is pushed on closers; if a later step fails they
	// run in reverse order, so a failed start leaks no connection or
	// goroutine. On success App.Close runs the same stack.
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	hub := eventlog.NewHub(budgetOf(cfg).events, 0)
	onCommit := hub.Publish
	var (
		b        *bus.Bus
		follower *bus.Follower
		st       store.Store
	)
	if cfg.Nats != "" {
		// In a cluster the hub is fed in sequence order by the follower,
		// with this node's commits and the ones other nodes announce.
		if b, err = bus.Connect(ctx, bus.Options{URL: cfg.Nats, Node: cfg.Node, Cluster: cfg.Cluster, Log: log}); err != nil {
			return nil, err
		}
		closers = append(closers, func() { b.Close() })
		follower = bus.NewFollower(hub, func(ctx context.Context, f store.EventFilter) ([]*eventlog.Event, error) {
			return st.Events(ctx, f)
		}, log)
		onCommit = func(evs []*eventlog.Event) {
			follower.Committed(evs)
			b.Announce(evs)
		}
	}
	if st, err = OpenStore(ctx, cfg, true, onCommit); err != nil {
		return nil, err
	}
	closers = append(closers, func() { st.Close() })
	last, err := st.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	hub.Reset(last)
	if w, ok := st.(interface{ WriterPriority() (int, error) }); ok {
		if nice, err := w.WriterPriority(); err != nil {
			log.Info("the SQLite writer runs at normal priority; writes slow down when requests fill the CPU (docs/storage.md)", "reason", err)
		} else {
			log.Debug("the SQLite writer's thread runs at a raised priority", "nice", nice)
		}
	}
	eng, err := engine.New(ctx, st)
	if err != nil {
		return nil, err
	}
	if err := eng.RegisterState(StateKinds()...); err != nil {
		return nil, err
	}
	if err := claimCluster(ctx, eng, cfg); err != nil {
		return nil, err
	}
	var lease consumer.Leaser
	if b != nil {
		cctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); follower.Run(cctx) }()
		closers = append(closers, func() { cancel(); <-done }) // the follower stops before the store closes
		if err := b.Follow(cctx, follower.Announced); err != nil {
			return nil, err
		}
		lease = b
	}
	eng.SetReadLimits(engine.ReadLimits{QueryTimeout: cfg.QueryTimeout, AnonQueryTimeout: cfg.AnonQueryTimeout})
	if err := os.MkdirAll(cfg.Data, 0o755); err != nil { // keys and compiled modules live here with any store
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	var keys *auth.Keyset
	if cfg.Postgres() { // nodes sharing the database share the keys
		keys, err = auth.LoadStoredKeys(ctx, eng)
	} else {
		keys, err = auth.LoadKeys(cfg.Data)
	}
	if err != nil {
		return nil, err
	}
	as, err := auth.New(ctx, eng, keys, auth.Config{AccessTTL: cfg.AccessTTL, AdminToken: cfg.AdminToken,
		Throttle: auth.ThrottleConfig{LoginPerIP: cfg.SignInLimit, LoginPerAccount: max(cfg.SignInLimit/2, 1),
			SignupPerIP: max(cfg.SignInLimit/2, 1), SignupPerAccount: 3}})
	if err != nil {
		return nil, err
	}
	hub.Observe(as.Observe) // revocations reach every node through the log
	hooks := webhook.NewManager(webhook.Options{Engine: eng, Hub: hub, Log: log, DataDir: cfg.Data, AllowPrivate: cfg.WebhookAllowPrivate, Lease: lease,
		StoredSecrets: cfg.Postgres()})
	funcs := fn.New(fn.Options{Engine: eng, Hub: hub, Log: log, CacheDir: cfg.WasmCache, ProjectDir: cfg.Project, AllowPrivate: cfg.WebhookAllowPrivate, Lease: lease})
	autos := automation.New(automation.Options{Engine: eng, Hub: hub, Funcs: funcs, Log: log, AllowPrivate: cfg.WebhookAllowPrivate, Lease: lease})
	return &App{Config: cfg, Log: log, Store: st, Hub: hub, Engine: eng, Auth: as, Hooks: hooks, Funcs: funcs, Autos: autos,
		Bus: b, closer: closers}, nil
}

// OpenStore opens the configured store: SQLite in the data folder (locked
// unless lock is false, for tools that only read), or PostgreSQL.
func OpenStore(ctx context.Context, cfg config.Config, lock bool, onCommit func([]*eventlog.Event)) (store.Store, error) {
	if cfg.Postgres() {
		return postgres.Open(ctx, cfg.Store, postgres.Options{OnCommit: onCommit})
	}
	b := budgetOf(cfg)
	return sqlite.Open(ctx, cfg.Data, sqlite.Options{OnCommit: onCommit, NoLock: !lock, CachePages: b.listCache,
		ReaderCache: b.readerCache, CacheRecords: b.records, Readers: b.readers})
}

// LoadProjectFiles reads the project files whole: schema, auth,
// webhooks and functions.
func LoadProjectFiles(dir string) (*project.Project, error) { return project.Load(dir, policy.Check) }

// LoadProject reads the project files.
func LoadProject(dir string) (*schema.Schema, error) {
	p, err := project.Load(dir, policy.Check)
	if err != nil {
		return nil, err
	}
	return p.Schema, nil
}

// ApplyProject loads the project and applies its safe steps, reporting
// the destructive ones it skipped.
func (a *App) ApplyProject(ctx context.Context) error {
	p, err := project.Load(a.Config.Project, policy.Check)
	if err != nil {
		return err
	}
	if err := CheckProject(p, a.Config); err != nil {
		return err
	}
	return a.ApplyLoaded(ctx, p)
}

// ApplyLoaded applies a project already loaded and checked (CheckProject)
// as ApplyProject does: serve checks the files before it opens anything
// and applies what it checked, reading them once.
func (a *App) ApplyLoaded(ctx context.Context, p *project.Project) error {
	a.Auth.SetOIDC(p.OIDC, func(name string) string { return auth.OIDCSecret(a.Config.Data, name) })
	ran, skipped, err := a.Engine.Apply(ctx, p.Schema, engine.SafeOnly)
	if err != nil {
		return err
	}
	if ran != nil {
		for _, st := range ran.Steps {
			a.Log.Info("applied", "step", st.String())
		}
	}
	if err := a.Auth.SweepOIDCStates(ctx); err != nil {
		a.Log.Warn("could not delete the pending OIDC sign-ins of an older version", "err", err)
	}
	a.webhooks = p.Webhooks // checked (SSRF guard) and started by StartWorkers
	a.functions = p.Functions
	if err := a.Autos.Load(p.Automations); err != nil { // compiled now: a bad expression stops the start, like a bad rule
		return err
	}
	for _, st := range skipped {
		a.Log.Warn("skipped destructive step; run `mantle apply --allow-destructive`", "step", st.String())
	}
	return nil
}

// Handler returns the HTTP stack.
func (a *App) Handler() http.Handler { return a.HandlerWith(0) }

// HandlerWith returns the HTTP stack with an SSE heartbeat interval other
// than the default 15s (tests use a short one).
func (a *App) HandlerWith(heartbeat time.Duration) http.Handler {
	o := rest.Options{Engine: a.Engine, Hub: a.Hub, Log: a.Log, Auth: a.Auth, Consumers: []consumer.Admin{a.Hooks.Admin(), a.Funcs.Admin(), a.Autos.Admin()}, Functions: a.Funcs, Automations: a.Autos, OpenAPI: openapi.Render, Heartbeat: heartbeat,
		PublicURL: a.Config.PublicURL, Ready: a.Ready, SignupTokens: a.Config.SignupTokens}
	if a.Config.RateLimit > 0 {
		o.RateLimit = gateway.NewRateLimiter(a.Config.RateLimit, int(2*a.Config.RateLimit)+1)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/realtime/ws", realtime.New(realtime.Options{Engine: a.Engine, Hub: a.Hub, Auth: a.Auth, Log: a.Log}))
	mux.Handle("/", rest.New(o))
	api := gateway.Compress(mux, func(r *http.Request) bool {
		return r.URL.Path == "/api/events/stream" || r.URL.Path == "/api/realtime/ws"
	})
	if len(a.Config.CORSOrigins) > 0 {
		api = gateway.CORS(api, a.Config.CORSOrigins, a.Config.CORSCredentials)
	}
	return gateway.Wrap(api, gateway.Options{Log: a.Log, MaxBodyBytes: a.Config.MaxBodyBytes})
}

// Serve listens on ln until ctx ends, with the settings' timeouts and
// connection caps, then drains: new requests stop,
// streams are told to end, and in-flight requests finish (up to 10s).
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	base, cancelStreams := context.WithCancel(context.Background())
	defer cancelStreams()
	lim := a.Config.Limits
	ln = gateway.LimitListener(ln, gateway.ConnLimits{Total: connCap(lim.MaxConns, a.Log), PerIP: lim.MaxConnsPerIP, Reject: gateway.RejectHTTP})
	// Streams (SSE, WebSocket) and function routes lift the read and write
	// deadlines for themselves; every other request has these.
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: min(10*time.Second, lim.ReadTimeout),
		ReadTimeout: lim.ReadTimeout, WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout,
		BaseContext: func(net.Listener) context.Context { return base }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.draining.Store(true) // load balancers see /api/ready fail and stop sending
	cancelStreams()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}

// ServeKafka serves the Kafka protocol on ln until ctx ends.
func (a *App) ServeKafka(ctx context.Context, ln net.Listener) error {
	lim := a.Config.Limits
	ln = gateway.LimitListener(ln, gateway.ConnLimits{Total: connCap(lim.MaxConns, a.Log), PerIP: lim.MaxConnsPerIP})
	return kafka.Serve(ctx, ln, kafka.Options{Engine: a.Engine, Hub: a.Hub, Auth: a.Auth, Log: a.Log})
}

// Close stops the webhooks and functions (saving their cursors) and
// closes the store after pending writes.
func (a *App) Close() error {
	a.draining.Store(true)
	a.Hooks.Stop()
	a.Autos.Stop()
	a.Funcs.Close()
	// Then what Open opened, newest first: the follower, the store (after
	// its pending writes), the bus.
	for i := len(a.closer) - 1; i >= 0; i-- {
		a.closer[i]()
	}
	return nil
}

// Ready checks what this node needs to serve: the database and, in a
// cluster, the bus; a node that is shutting down is not ready.
func (a *App) Ready(ctx context.Context) map[string]error {
	checks := map[string]error{}
	if a.draining.Load() {
		checks["shutdown"] = errors.New("the node is shutting down")
	}
	if p, ok := a.Store.(interface{ Ping(context.Context) error }); ok {
		checks["store"] = p.Ping(ctx)
	} else {
		_, err := a.Store.LastSeq(ctx)
		checks["store"] = err
	}
	if a.Bus != nil {
		checks["bus"] = a.Bus.Ready()
	}
	return checks
}
