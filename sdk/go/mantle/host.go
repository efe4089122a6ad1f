package mantle

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ErrNoHost is returned by host calls outside a Mantle host (go test).
var ErrNoHost = errors.New("mantle: not running inside Mantle")

// Error is a failed host call, as the engine answered it: Status is the
// HTTP status the same request would get, Reason the stable reason.
type Error struct {
	Status int    `json:"status"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s (%d): %s", e.Reason, e.Status, e.Detail) }

// NotFound reports whether err is a host call's not_found answer.
func NotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == 404
}

// invoke runs host call op with req encoded as JSON and decodes the
// answer's data into out (when not nil).
func invoke(op string, req, out any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	raw, err := hostCall(op, b)
	if err != nil {
		return err
	}
	var env struct {
		Data  json.RawMessage `json:"data"`
		Error *Error          `json:"error"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("mantle: host answer to %s: %w", op, err)
	}
	if env.Error != nil {
		return env.Error
	}
	if out == nil || len(env.Data) == 0 {
		return nil
	}
	return json.Unmarshal(env.Data, out)
}

// Emit appends a custom event to the log, of a type the project does not
// reserve (not record.*, schema.*, auth.* or mantle.*), and returns its
// sequence.
func Emit(typ, subject string, data any) (int64, error) {
	var out struct {
		Seq int64 `json:"seq"`
	}
	err := invoke("events.emit", map[string]any{"type": typ, "subject": subject, "data": data}, &out)
	return out.Seq, err
}

// Log writes a line to the function's log at level "debug", "info",
// "warn" or "error". Anything written to stderr lands there too.
func Log(level, msg string) { hostLog(levels[level], msg) }

// Logf formats and writes an info line to the function's log.
func Logf(format string, args ...any) { hostLog(1, fmt.Sprintf(format, args...)) }

var levels = map[string]int32{"debug": 0, "info": 1, "warn": 2, "error": 3}

// FetchRequest is an outbound HTTP request.
type FetchRequest struct {
	Method  string            `json:"method,omitempty"` // default GET
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// FetchResponse is the answer to a FetchRequest.
type FetchResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body,omitempty"`
}

// Fetch makes an outbound HTTP request. Mantle allows only the hosts the
// function declares (`hosts:` in the project file).
func Fetch(req FetchRequest) (*FetchResponse, error) {
	var out FetchResponse
	if err := invoke("http.fetch", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
