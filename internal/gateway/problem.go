// Package gateway is the HTTP edge shared by every transport: request ids,
// panic recovery, body limits, access logs, and the one place where errors
// become application/problem+json (RFC 9457).
package gateway

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/mantlehq/mantle"
)

// Problem is the RFC 9457 body of every error answer.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail"`
	Code      mantle.Code       `json:"code"`
	Reason    string            `json:"reason,omitempty"`
	Fields    map[string]string `json:"fields,omitempty"`
	RequestID string            `json:"requestId"`
}

// WriteError renders err as problem+json. An error that is not a
// *mantle.Error is internal: it is logged with the request id and its text
// never reaches the client.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	me := mantle.AsError(err)
	if me == nil || me.Code == mantle.Internal {
		if log != nil {
			log.Error("request failed", "requestId", RequestID(r.Context()), "method", r.Method, "path", r.URL.Path, "err", err)
		}
		me = &mantle.Error{Code: mantle.Internal, Reason: "internal", Message: "an internal error occurred; quote the requestId when reporting it"}
	}
	status := me.HTTPStatus()
	p := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: me.Message,
		Code: me.Code, Reason: me.Reason, Fields: me.Fields, RequestID: RequestID(r.Context())}
	if me.Code == mantle.RateLimited || me.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(max(me.RetryAfter, 1)))
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	b, _ := json.Marshal(p)
	w.Write(append(b, '\n'))
}
