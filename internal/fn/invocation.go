package fn

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/mantlehq/mantle"
)

// Triggers, as an invocation names them.
const (
	TriggerHTTP     = "http"
	TriggerEvent    = "event"
	TriggerSchedule = "schedule"
	TriggerInvoke   = "invoke"
)

// Invocation is what a function is called with, encoded as JSON for the
// guest (docs/functions.md, "The invocation").
type Invocation struct {
	ABI      int               `json:"abi"`
	Function string            `json:"function"`
	Trigger  string            `json:"trigger"`
	Request  *Request          `json:"request,omitempty"`
	Event    json.RawMessage   `json:"event,omitempty"`
	Tick     *Tick             `json:"tick,omitempty"`
	Data     json.RawMessage   `json:"data,omitempty"`
	Caller   Caller            `json:"caller"`
	Env      map[string]string `json:"env,omitempty"`
	Attempt  int               `json:"attempt,omitempty"`
}

// Caller is the identity that made the request or caused the event.
type Caller struct {
	ID    string   `json:"id,omitempty"`
	Email string   `json:"email,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

func callerOf(id mantle.Identity) Caller { return Caller{ID: id.ID, Email: id.Email, Roles: id.Roles} }

// Request is an HTTP trigger's request.
type Request struct {
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Query      string            `json:"query,omitempty"`
	Params     map[string]string `json:"params,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
	BodyBase64 string            `json:"bodyBase64,omitempty"`
}

// Tick is a schedule's firing.
type Tick struct {
	Cron    string `json:"cron"`
	At      string `json:"at"`
	CatchUp bool   `json:"catchUp,omitempty"`
}

// hidden headers are not passed to functions: the caller's credentials
// were checked by the gateway, and the function acts as itself.
var hidden = map[string]bool{"Authorization": true, "Cookie": true, "X-Api-Key": true}

func newRequest(r *http.Request, body []byte, params map[string]string) *Request {
	req := &Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Params: params, Headers: map[string]string{}}
	for k, v := range r.Header {
		if !hidden[k] {
			req.Headers[k] = strings.Join(v, ", ")
		}
	}
	if utf8.Valid(body) {
		req.Body = string(body)
	} else {
		req.BodyBase64 = base64.StdEncoding.EncodeToString(body)
	}
	return req
}

// Result is a function's output (docs/functions.md, "The result").
type Result struct {
	Status     int               `json:"status,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
	BodyBase64 string            `json:"bodyBase64,omitempty"`
	JSON       json.RawMessage   `json:"json,omitempty"`
	Error      string            `json:"error,omitempty"`
}
