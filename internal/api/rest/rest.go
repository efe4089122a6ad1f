// Package rest is the HTTP/JSON transport of API.md: records, batch,
// events (JSON and SSE), health, schema and the OpenAPI document. It
// decodes requests, calls the engine and renders answers; it holds no
// business rules.
package rest

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/gateway"
	"github.com/mantlehq/mantle/internal/schema"
)

// Options configure the handler.
type Options struct {
	Engine *engine.Engine
	Hub    *eventlog.Hub
	Log    *slog.Logger
	// AdminToken, when set, is a bearer token that acts as an
	// administrator (the "admin secret"; user sign-in comes with auth).
	AdminToken string
	// Heartbeat is the SSE comment interval; default 15s.
	Heartbeat time.Duration
	// OpenAPI renders the OpenAPI document of a schema.
	OpenAPI func(*schema.Schema) []byte
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
	route("/api/schema", methods{"GET": h.schema})
	route("/api/openapi.json", methods{"GET": h.openapi})
	route("/api/collections/{c}/records", methods{"GET": h.list, "POST": h.create})
	route("/api/collections/{c}/records/{id}", methods{"GET": h.get, "PATCH": h.update, "DELETE": h.delete})
	route("/api/batch", methods{"POST": h.batch})
	route("/api/events", methods{"GET": h.events})
	route("/api/events/stream", methods{"GET": h.stream})
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
		id, err := h.identify(r)
		if err != nil {
			gateway.WriteError(w, r, h.Log, err)
			return
		}
		r = r.WithContext(mantle.WithIdentity(r.Context(), id))
		if err := fn(w, r); err != nil {
			gateway.WriteError(w, r, h.Log, err)
		}
	})
}

// identify reads the bearer credentials. Without any the caller is
// anonymous; with credentials that are not valid the request fails.
func (h *handler) identify(r *http.Request) (mantle.Identity, error) {
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return mantle.Identity{}, nil
	}
	token, ok := strings.CutPrefix(authz, "Bearer ")
	if ok && h.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(h.AdminToken)) == 1 {
		return mantle.Identity{ID: "admin", Roles: []string{"admin"}}, nil
	}
	return mantle.Identity{}, mantle.Errorf(mantle.Unauthenticated, "auth.invalid_credentials", "the credentials are not valid")
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
