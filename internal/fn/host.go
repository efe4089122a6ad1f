package fn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
)

// maxFetchBody bounds an outbound HTTP answer read by a function.
const maxFetchBody = 1 << 20

// EngineHost answers host calls through the engine, as Identity: the
// rules of every collection apply, and writes emit events like any other.
type EngineHost struct {
	Engine   *engine.Engine
	Identity mantle.Identity
	// Hosts may be called by http.fetch: exact names, or *.example.com
	// for the subdomains of a name. Empty: no outbound HTTP.
	Hosts  []string
	Client *http.Client // with the SSRF guard; see egress
	Log    *slog.Logger
}

type recordReq struct {
	Collection string          `json:"collection"`
	ID         string          `json:"id"`
	Data       json.RawMessage `json:"data"`
	IfMatch    int64           `json:"ifMatch"`
	Filter     string          `json:"filter"`
	Sort       string          `json:"sort"`
	Limit      int             `json:"limit"`
	Cursor     string          `json:"cursor"`
	Fields     string          `json:"fields"`
}

// Call implements Host.
func (h *EngineHost) Call(ctx context.Context, op string, req []byte) ([]byte, bool) {
	ctx = mantle.WithIdentity(ctx, h.Identity)
	var (
		data any
		raw  []byte
		err  error
	)
	switch op {
	case "records.get", "records.list", "records.create", "records.update", "records.delete":
		var r recordReq
		if err = decode(req, &r); err == nil {
			raw, err = h.records(ctx, op, r)
		}
	case "events.emit":
		var r struct {
			Type    string          `json:"type"`
			Subject string          `json:"subject"`
			Data    json.RawMessage `json:"data"`
		}
		if err = decode(req, &r); err == nil {
			var seq int64
			seq, err = h.Engine.Emit(ctx, r.Type, r.Subject, r.Data)
			data = map[string]int64{"seq": seq}
		}
	case "http.fetch":
		data, err = h.fetch(ctx, req)
	default:
		return nil, false
	}
	if err != nil {
		return problemOf(h.Log, op, err), true
	}
	if raw == nil {
		raw, _ = json.Marshal(data)
	}
	out := make([]byte, 0, len(raw)+9)
	out = append(out, `{"data":`...)
	out = append(out, raw...)
	return append(out, '}'), true
}

func decode(req []byte, v any) error {
	if err := json.Unmarshal(req, v); err != nil {
		return mantle.Errorf(mantle.Invalid, "fn.invalid_request", "the host call's request is not the JSON it takes: %v", err)
	}
	return nil
}

// problemOf renders an error as a host call's error answer. An error that
// is not Mantle's own is logged and reported as internal, without detail.
func problemOf(log *slog.Logger, op string, err error) []byte {
	e := mantle.AsError(err)
	if e == nil || e.Code == mantle.Internal {
		if log != nil {
			log.Error("function host call", "call", op, "err", err)
		}
		return Problem(500, "internal", "the host call failed; the server log has the details")
	}
	return Problem(e.HTTPStatus(), e.Reason, e.Message)
}

func (h *EngineHost) records(ctx context.Context, op string, r recordReq) ([]byte, error) {
	if r.Collection == "" {
		return nil, mantle.Errorf(mantle.Invalid, "fn.invalid_request", "%s needs a collection", op)
	}
	var data map[string]json.RawMessage
	if op == "records.create" || op == "records.update" {
		if err := json.Unmarshal(r.Data, &data); err != nil || data == nil {
			return nil, mantle.Errorf(mantle.Invalid, "fn.invalid_request", "%s needs data, a JSON object of fields", op)
		}
	}
	switch op {
	case "records.get":
		c, rec, err := h.Engine.Get(ctx, r.Collection, r.ID)
		if err != nil {
			return nil, err
		}
		return c.AppendJSON(nil, rec, nil, nil), nil
	case "records.list":
		q := url.Values{}
		for k, v := range map[string]string{"filter": r.Filter, "sort": r.Sort, "cursor": r.Cursor, "fields": r.Fields} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if r.Limit != 0 {
			q.Set("limit", strconv.Itoa(r.Limit))
		}
		p, err := h.Engine.List(ctx, r.Collection, q)
		if err != nil {
			return nil, err
		}
		return p.AppendJSON(nil), nil
	}
	res, err := h.Engine.Write(ctx, []engine.Op{{Kind: writeOps[op], Collection: r.Collection, ID: r.ID, Data: data, IfMatch: r.IfMatch}})
	if err != nil {
		return nil, err
	}
	if op == "records.delete" {
		return []byte("null"), nil
	}
	if res[0].JSON != nil {
		return res[0].JSON, nil
	}
	return res[0].Collection.AppendJSON(nil, res[0].Record, nil, nil), nil
}

var writeOps = map[string]string{"records.create": engine.Create, "records.update": engine.Update, "records.delete": engine.Delete}

type fetchReq struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

type fetchResp struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    string            `json:"body"`
}

// fetch makes an outbound request to an allowed host.
func (h *EngineHost) fetch(ctx context.Context, req []byte) (any, error) {
	var r fetchReq
	if err := decode(req, &r); err != nil {
		return nil, err
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, mantle.Errorf(mantle.Invalid, "fn.invalid_url", "fetch needs an absolute http(s) URL")
	}
	if !hostAllowed(h.Hosts, u.Hostname()) {
		return nil, mantle.Errorf(mantle.PermissionDenied, "fn.host_not_allowed", "host %q is not in the function's hosts allow-list", u.Hostname())
	}
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	hr, err := http.NewRequestWithContext(ctx, strings.ToUpper(r.Method), u.String(), bytes.NewReader([]byte(r.Body)))
	if err != nil {
		return nil, mantle.Errorf(mantle.Invalid, "fn.invalid_request", "fetch: %v", err)
	}
	for k, v := range r.Headers {
		hr.Header.Set(k, v)
	}
	resp, err := h.Client.Do(hr)
	if err != nil {
		return nil, &mantle.Error{Code: mantle.Unavailable, Reason: "fn.fetch_failed", Status: http.StatusBadGateway, Message: fmt.Sprintf("fetch %s: %v", u.Host, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxFetchBody+1))
	if err != nil {
		return nil, &mantle.Error{Code: mantle.Unavailable, Reason: "fn.fetch_failed", Status: http.StatusBadGateway, Message: fmt.Sprintf("fetch %s: %v", u.Host, err)}
	}
	if len(body) > maxFetchBody {
		return nil, &mantle.Error{Code: mantle.Invalid, Reason: "fn.fetch_too_large", Status: http.StatusBadGateway, Message: fmt.Sprintf("the answer is over %d bytes", maxFetchBody)}
	}
	out := fetchResp{Status: resp.StatusCode, Headers: map[string]string{}, Body: string(body)}
	for k := range resp.Header {
		out.Headers[k] = resp.Header.Get(k)
	}
	return out, nil
}

func hostAllowed(hosts []string, host string) bool {
	host = strings.ToLower(host)
	for _, h := range hosts {
		h = strings.ToLower(h)
		if h == host || strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:]) {
			return true
		}
	}
	return false
}
