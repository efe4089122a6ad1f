package rest

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/fn"
	"github.com/mantlehq/mantle/internal/gateway"
)

// The function management endpoints (docs/functions.md): listing, logs,
// attempts and dead letters of event triggers, replay, and a direct
// invocation. Administrators only.

func (h *handler) functionLogs(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "functions"); err != nil {
		return err
	}
	q := r.URL.Query()
	after, limit := int64(0), 100
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return mantle.Errorf(mantle.Invalid, "query.invalid_after", "after must be a log line number, 0 or more")
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return mantle.Errorf(mantle.Invalid, "query.invalid_limit", "limit must be 1 to 1000")
		}
		limit = n
	}
	lines, err := h.Functions.Logs(r.PathValue("name"), after, limit)
	if err != nil {
		return err
	}
	return writeItems(w, lines)
}

// functionInvoke runs a function once with the body as its data and
// answers its result: {"status", "headers", "body" or "json"}.
func (h *handler) functionInvoke(w http.ResponseWriter, r *http.Request) error {
	if err := adminOnly(r, "functions"); err != nil {
		return err
	}
	body, err := gateway.ReadBody(r)
	if err != nil {
		return err
	}
	if !json.Valid(body) {
		return mantle.Errorf(mantle.Invalid, "request.malformed_json", "the body is not JSON")
	}
	res, err := h.Functions.Invoke(r.Context(), r.PathValue("name"), body)
	if err != nil {
		return fn.HTTPError(r.PathValue("name"), err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, b)
}
