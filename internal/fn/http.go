package fn

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/gateway"
)

// ServeHTTP serves the functions' HTTP routes (paths under /fn/). The
// caller was authenticated (and rate limited) by the gateway; the
// function's allow rule decides whether it may call.
func (m *Manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.RLock()
	routes := m.routes
	m.mu.RUnlock()
	if _, pattern := routes.Handler(r); pattern == "" {
		gateway.WriteError(w, r, m.o.Log, mantle.Errorf(mantle.NotFound, "route.not_found", "no function route %s %s", r.Method, r.URL.Path))
		return
	}
	routes.ServeHTTP(w, r) // sets the path values of the route's wildcards
}

// dropped are result headers a function may not set.
var dropped = map[string]bool{"Content-Length": true, "Transfer-Encoding": true, "Connection": true}

func (m *Manager) httpHandler(f *function) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := m.serve(w, r, f); err != nil {
			gateway.WriteError(w, r, m.o.Log, err)
		}
	})
}

func (m *Manager) serve(w http.ResponseWriter, r *http.Request, f *function) error {
	if f.mod == nil && f.native == nil {
		return &mantle.Error{Code: mantle.Unavailable, Reason: "fn.not_loaded", Message: fmt.Sprintf("function %s did not load; GET /api/functions says why", f.def.Name)}
	}
	id := mantle.IdentityFrom(r.Context())
	if err := f.allow.Allow(id, r.Method); err != nil {
		return err
	}
	body, err := io.ReadAll(r.Body)
	if d := f.def.Timeout; d > 0 {
		// The answer may come as late as the function's own timeout.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(d + 10*time.Second))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &mantle.Error{Code: mantle.Invalid, Reason: "request.too_large", Status: http.StatusRequestEntityTooLarge,
				Message: "the body is larger than the limit of " + strconv.FormatInt(mbe.Limit, 10) + " bytes"}
		}
		return mantle.Errorf(mantle.Invalid, "request.unreadable", "could not read the body: %v", err)
	}
	params := map[string]string{}
	for _, seg := range strings.Split(f.def.HTTP.Path, "/") {
		if strings.HasPrefix(seg, "{") {
			name := strings.Trim(seg, "{}")
			params[name] = r.PathValue(name)
		}
	}
	inv := &Invocation{Trigger: TriggerHTTP, Request: newRequest(r, body, params), Caller: callerOf(id)}
	res, err := m.call(r.Context(), f, inv)
	m.report(Run{Function: f.def.Name, Trigger: TriggerHTTP, Err: err})
	if err != nil {
		return HTTPError(f.def.Name, err)
	}
	return writeResult(w, res, m.o.Log, f.def.Name)
}

func writeResult(w http.ResponseWriter, res *Result, log *slog.Logger, name string) error {
	status := res.Status
	if status == 0 {
		status = http.StatusOK
	}
	if status < 200 || status > 599 {
		return &mantle.Error{Code: mantle.Unavailable, Reason: "fn.invalid_result", Status: http.StatusInternalServerError,
			Message: "function " + name + " answered status " + strconv.Itoa(status) + "; use 200 to 599"}
	}
	var body []byte
	switch {
	case res.JSON != nil:
		body = append(res.JSON, '\n')
		w.Header().Set("Content-Type", "application/json")
	case res.BodyBase64 != "":
		b, err := base64.StdEncoding.DecodeString(res.BodyBase64)
		if err != nil {
			return &mantle.Error{Code: mantle.Unavailable, Reason: "fn.invalid_result", Status: http.StatusInternalServerError,
				Message: "function " + name + " answered bodyBase64 that is not base64"}
		}
		body = b
	default:
		body = []byte(res.Body)
	}
	for k, v := range res.Headers {
		k = http.CanonicalHeaderKey(k)
		if dropped[k] || strings.ContainsAny(k+v, "\r\n") {
			continue
		}
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" && len(body) > 0 {
		w.Header().Set("Content-Type", http.DetectContentType(body))
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if _, err := w.Write(body); err != nil {
		log.Debug("function answer not delivered", "function", name, "err", err)
	}
	return nil
}
