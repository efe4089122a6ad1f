package mantle

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"unicode/utf8"
)

// ABI is the version of the function ABI this SDK speaks.
const ABI = 1

// Invocation is what a function is called with. Exactly one of Request,
// Event and Tick is set, as Trigger says.
type Invocation struct {
	ABI      int               `json:"abi"`
	Function string            `json:"function"`
	Trigger  string            `json:"trigger"` // "http", "event", "schedule" or "invoke"
	Request  *Request          `json:"request,omitempty"`
	Event    *Event            `json:"event,omitempty"`
	Tick     *Tick             `json:"tick,omitempty"`
	Data     json.RawMessage   `json:"data,omitempty"` // trigger "invoke": the caller's JSON
	Caller   Identity          `json:"caller"`         // who made the request or caused the event
	Env      map[string]string `json:"env,omitempty"`  // the function's environment values
	Attempt  int               `json:"attempt,omitempty"`
}

// Identity is a caller: empty ID when anonymous.
type Identity struct {
	ID    string   `json:"id,omitempty"`
	Email string   `json:"email,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

// Request is an HTTP request to an HTTP-triggered function.
type Request struct {
	Method     string            `json:"method"`
	Path       string            `json:"path"`
	Query      string            `json:"query,omitempty"`   // the raw query string
	Params     map[string]string `json:"params,omitempty"`  // path wildcards of the route
	Headers    map[string]string `json:"headers,omitempty"` // canonical names; repeated values joined by ", "
	Body       string            `json:"body,omitempty"`
	BodyBase64 string            `json:"bodyBase64,omitempty"` // instead of Body when it is not UTF-8
}

// Bytes returns the request body.
func (r *Request) Bytes() []byte {
	if r.BodyBase64 != "" {
		b, _ := base64.StdEncoding.DecodeString(r.BodyBase64)
		return b
	}
	return []byte(r.Body)
}

// JSON decodes the request body into v.
func (r *Request) JSON(v any) error {
	if r == nil {
		return errors.New("mantle: no request")
	}
	return json.Unmarshal(r.Bytes(), v)
}

// Event is a CloudEvent of Mantle's log.
type Event struct {
	ID         string          `json:"id"`
	Seq        int64           `json:"seq"`
	Type       string          `json:"type"`
	Source     string          `json:"source"`
	Subject    string          `json:"subject,omitempty"`
	Time       string          `json:"time"`
	Collection string          `json:"collection,omitempty"`
	Actor      string          `json:"actor,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

// Record returns the record of a record event (the new one; the deleted
// one for record.deleted), decoded into v.
func (e *Event) Record(v any) error {
	var d struct {
		Record json.RawMessage `json:"record"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return err
	}
	if d.Record == nil {
		return errors.New("mantle: the event carries no record")
	}
	return json.Unmarshal(d.Record, v)
}

// Tick is a schedule's firing.
type Tick struct {
	Cron    string `json:"cron"`
	At      string `json:"at"`                // the scheduled time, RFC 3339
	CatchUp bool   `json:"catchUp,omitempty"` // a tick missed while the server was down, run late
}

// Result is what a function returns. For HTTP triggers it is the
// response; for the others only success or failure counts.
type Result struct {
	Status     int               `json:"status,omitempty"` // default 200
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body,omitempty"`
	BodyBase64 string            `json:"bodyBase64,omitempty"`
	JSON       json.RawMessage   `json:"json,omitempty"` // instead of Body: sent as application/json
}

// JSON returns a result with v encoded as JSON.
func JSON(status int, v any) (*Result, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &Result{Status: status, JSON: b}, nil
}

// Text returns a plain-text result.
func Text(status int, body string) *Result {
	r := &Result{Status: status, Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}}
	if utf8.ValidString(body) {
		r.Body = body
	} else {
		r.BodyBase64 = base64.StdEncoding.EncodeToString([]byte(body))
	}
	return r
}

// Handler handles one invocation. A returned error fails it: an HTTP
// trigger answers 500, an event trigger is retried.
type Handler func(*Invocation) (*Result, error)

var handler Handler

// outBuf is reused for the result between calls of a reactor.
var outBuf = make([]byte, 0, 4096)

// Handle registers the function's handler. Call it from init, so that it
// is set in a reactor module, whose main never runs.
func Handle(h Handler) { handler = h }

// Main runs the handler once, for a module built as a command. In a
// reactor module it is never called.
func Main() {
	if code := handle(); code != 0 {
		os.Exit(code)
	}
}

// Call runs a handler on inv and returns its result as the host would see
// it: for tests of a handler outside WebAssembly.
func Call(h Handler, inv *Invocation) (res *Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return h(inv)
}

// handle reads the invocation, runs the handler and writes its output. It
// returns 0 on success, 1 when the handler failed and 2 when it panicked.
func handle() (code int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "panic: %v\n%s", p, debug.Stack())
			writeError(fmt.Sprintf("panic: %v", p))
			code = 2
		}
	}()
	if handler == nil {
		writeError("no handler: call mantle.Handle in init")
		return 1
	}
	var inv Invocation
	if err := decodeInvocation(readInput(), &inv); err != nil {
		writeError("mantle: the invocation is not JSON: " + err.Error())
		return 1
	}
	res, err := handler(&inv)
	if err != nil {
		writeError(err.Error())
		return 1
	}
	if res == nil {
		res = &Result{}
	}
	if len(res.JSON) > 0 && !json.Valid(res.JSON) {
		writeError("mantle: the result's JSON is not valid JSON")
		return 1
	}
	if err := writeOutput(appendResult(outBuf[:0], res)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func writeError(msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	writeOutput(b)
}
