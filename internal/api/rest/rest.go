// Package rest is the HTTP/JSON transport of API.md: records, batch,
// events (JSON and SSE), health, schema and the OpenAPI document. It
// decodes requests, calls the engine and renders answers; it holds no
// business rules.
package rest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/auth"
	"github.com/mantlehq/mantle/internal/automation"
	"github.com/mantlehq/mantle/internal/consumer"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/fn"
	"github.com/mantlehq/mantle/internal/gateway"
	"github.com/mantlehq/mantle/internal/schema"
)

// Options configure the handler.
type Options struct {
	Engine *engine.Engine
	Hub    *eventlog.Hub
	Log    *slog.Logger
	// Auth authenticates callers and serves the auth endpoints.
	Auth *auth.Service
	// Consumers are the administration surfaces of the durable consumers
	// of the log (webhooks, functions, automations), mounted once each.
	Consumers []consumer.Admin
	// Functions runs the project's functions; their routes are under /fn/.
	Functions *fn.Manager
	// Automations runs the project's automations.
	Automations *automation.Manager
	// SignupTokens makes sign-up answer with a session's tokens too.
	SignupTokens bool
	// PublicURL is the server's external URL, for OIDC callbacks; empty:
	// from the request.
	PublicURL string
	// RateLimit, when set, limits requests per signed-in identity, or per
	// IP address for anonymous callers.
	RateLimit *gateway.Limiter
	// Heartbeat is the SSE comment interval; default 15s.
	Heartbeat time.Duration
	// OpenAPI renders the OpenAPI document of a schema.
	OpenAPI func(*schema.Schema) []byte
	// Ready checks what the node needs to serve (GET /api/ready); nil
	// errors are passing checks. Nil Ready: always ready.
	Ready func(context.Context) map[string]error
}

type handler struct {
	Options
}

// New returns the API handler, without the gateway middleware.
func New(o Options) http.Handler {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	h := &handler{Options: o}
	mux := http.NewServeMux()
	route := func(path string, m methods) { mux.Handle(path, h.authn(m)) }
	route("/api/health", methods{"GET": h.health})
	route("/api/ready", methods{"GET": h.ready})
	route("/api/schema", methods{"GET": h.schema})
	route("/api/openapi.json", methods{"GET": h.openapi})
	route("/api/collections/{c}/records", methods{"GET": h.list, "POST": h.create})
	route("/api/collections/{c}/records/{id}", methods{"GET": h.get, "PATCH": h.update, "DELETE": h.delete})
	route("/api/batch", methods{"POST": h.batch})
	route("/api/events", methods{"GET": h.events})
	route("/api/events/stream", methods{"GET": h.stream})
	route("/api/auth/signup", methods{"POST": h.signup})
	route("/api/auth/login", methods{"POST": h.login})
	route("/api/auth/refresh", methods{"POST": h.refresh})
	route("/api/auth/logout", methods{"POST": h.logout})
	route("/api/auth/me", methods{"GET": h.me})
	route("/api/auth/providers", methods{"GET": h.providers})
	route("/api/auth/oidc/{provider}", methods{"GET": h.oidcStart})
	route("/api/auth/oidc/{provider}/callback", methods{"GET": h.oidcCallback})
	route("/api/keys", methods{"GET": h.listKeys, "POST": h.createKey})
	route("/api/keys/{id}", methods{"DELETE": h.deleteKey})
	h.mountConsumers(route, o.Consumers)
	if o.Functions != nil {
		route("/api/functions/{name}/logs", methods{"GET": h.functionLogs})
		route("/api/functions/{name}/invoke", methods{"POST": h.functionInvoke})
		mux.Handle("/fn/", h.authenticated(o.Functions))
	}
	if o.Automations != nil {
		route("/api/automations/{name}/failed", methods{"GET": h.automationFailed})
		route("/api/automations/{name}/run", methods{"POST": h.automationRun})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		gateway.WriteError(w, r, o.Log, mantle.Errorf(mantle.NotFound, "route.not_found", "no route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

// methods dispatches by HTTP method and answers others with a 405 problem.
type methods map[string]func(http.ResponseWriter, *http.Request) error

func (h *handler) authn(m methods) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn, ok := m[r.Method]
		if !ok && r.Method == http.MethodHead {
			fn, ok = m[http.MethodGet]
		}
		if !ok {
			allow := make([]string, 0, len(m))
			for k := range m {
				allow = append(allow, k)
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			gateway.WriteError(w, r, h.Log, &mantle.Error{Code: mantle.Invalid, Reason: "route.method_not_allowed",
				Status: http.StatusMethodNotAllowed, Message: r.Method + " is not allowed here; use " + strings.Join(allow, ", ")})
			return
		}
		r, ok = h.authenticate(w, r)
		if !ok {
			return
		}
		if err := fn(w, r); err != nil {
			gateway.WriteError(w, r, h.Log, err)
		}
	})
}

// authenticate finds the caller (and applies the rate limit). It answers
// the error itself and returns false when the request must stop.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	header := auth.RequestHeader(r, r.URL.Path == "/api/events/stream") // EventSource cannot set headers
	id, cred, err := h.Auth.Authenticate(r.Context(), header)
	if err != nil {
		gateway.WriteError(w, r, h.Log, err)
		return nil, false
	}
	if h.RateLimit != nil {
		key := "id:" + id.ID
		if id.Anonymous() {
			key = "ip:" + clientIP(r)
		}
		if ok, wait := h.RateLimit.Allow(key); !ok {
			gateway.WriteError(w, r, h.Log, &mantle.Error{Code: mantle.RateLimited, Reason: "rate_limited",
				Message: "too many requests; slow down", RetryAfter: int(wait.Seconds()) + 1})
			return nil, false
		}
	}
	ctx := mantle.WithIdentity(r.Context(), id)
	if cred.Kind != "" {
		ctx = auth.WithCredential(ctx, cred)
	}
	return r.WithContext(ctx), true
}

// authenticated is next behind authentication, for handlers that route
// themselves (function routes).
func (h *handler) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r, ok := h.authenticate(w, r); ok {
			next.ServeHTTP(w, r)
		}
	})
}

// writeJSON writes b and a newline. A failed write means the client went
// away: there is nothing left to render, so it is not an error.
func writeJSON(w http.ResponseWriter, status int, b []byte) error {
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(b) + 1)}
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return nil
}

var jsonType = []string{"application/json"}

func (h *handler) health(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`))
}

// ready answers 200 when every check passes and 503 naming the failing
// ones otherwise: for load balancers and orchestrators, where /api/health
// only says the process answers.
func (h *handler) ready(w http.ResponseWriter, r *http.Request) error {
	checks := map[string]string{}
	ok := true
	if h.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		for name, err := range h.Ready(ctx) {
			checks[name] = "ok"
			if err != nil {
				checks[name], ok = err.Error(), false
			}
		}
	}
	status, code := "ready", http.StatusOK
	if !ok {
		status, code = "unavailable", http.StatusServiceUnavailable
	}
	b, err := json.Marshal(map[string]any{"status": status, "checks": checks})
	if err != nil {
		return err
	}
	return writeJSON(w, code, b)
}
