package automation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/fn"
)

// maxWebhookAnswer bounds what a webhook step reads of the answer.
const maxWebhookAnswer = 1 << 20

func baseVars() map[string]any {
	return map[string]any{"event": nil, "record": nil, "previous": nil, "steps": map[string]any{}, "input": nil, "tick": nil, "now": time.Now().UTC()}
}

// eventVars are the variables of an event: event, record and previous.
func eventVars(ev *eventlog.Event) (map[string]any, error) {
	vars := baseVars()
	var e map[string]any
	if err := json.Unmarshal(ev.JSON(), &e); err != nil {
		return nil, err
	}
	vars["event"] = e
	if d, ok := e["data"].(map[string]any); ok {
		vars["record"], vars["previous"] = d["record"], d["previous"]
	}
	return vars, nil
}

// execute runs the steps not yet done in p, in order, each with the
// outputs of those before it, and stops at the first that fails.
func (m *Manager) execute(ctx context.Context, a *auto, run Run, vars map[string]any, p *pending) Run {
	run.Started = time.Now().UTC()
	run.Steps = append([]Step(nil), p.done...)
	ctx = mantle.WithIdentity(ctx, a.identity)
	run.OK = true
	for _, cs := range a.c.steps[len(p.done):] {
		vars["steps"] = p.outputs
		start := time.Now()
		st := Step{Name: cs.def.Name, Kind: cs.def.Kind}
		input, out, err := m.step(ctx, cs, vars)
		st.Input, _ = json.Marshal(input)
		st.Millis = float64(time.Since(start).Microseconds()) / 1000
		if err != nil {
			st.Error = err.Error()
			run.Steps = append(run.Steps, st)
			run.OK, run.FailedStep, run.Error = false, cs.def.Name, err.Error()
			break
		}
		st.Output, _ = json.Marshal(out)
		run.Steps = append(run.Steps, st)
		p.outputs[cs.def.Name] = out
		p.done = append(p.done, st)
	}
	run.Millis = float64(time.Since(run.Started).Microseconds()) / 1000
	return run
}

// step evaluates a step's input and runs its action; it returns the
// input (recorded with a failed run) and the output (steps.NAME).
func (m *Manager) step(ctx context.Context, cs compiledStep, vars map[string]any) (input, output any, err error) {
	fields := map[string]any{}
	for k, p := range cs.data {
		if fields[k], err = p.eval(vars); err != nil {
			return fields, nil, err
		}
	}
	var id, subject string
	str := func(p *program, what string) (string, error) {
		v, err := p.eval(vars)
		if err != nil {
			return "", err
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s: %s is %T, not a string", p.pos, what, v)
		}
		return s, nil
	}
	if cs.id != nil {
		if id, err = str(cs.id, "id"); err != nil {
			return nil, nil, err
		}
	}
	if cs.subject != nil {
		if subject, err = str(cs.subject, "subject"); err != nil {
			return nil, nil, err
		}
	}
	var body any
	if cs.body != nil {
		if body, err = cs.body.eval(vars); err != nil {
			return nil, nil, err
		}
	}
	d := cs.def
	switch d.Kind {
	case "create", "update", "delete":
		in := map[string]any{"collection": d.Collection}
		if id != "" {
			in["id"] = id
		}
		if d.Kind != "delete" {
			in["data"] = fields
		}
		out, err := m.record(ctx, d.Kind, d.Collection, id, fields)
		return in, out, err
	case "webhook":
		headers := map[string]string{}
		for k, p := range cs.headers {
			if headers[k], err = str(p, "header "+k); err != nil {
				return nil, nil, err
			}
		}
		in := map[string]any{"url": d.URL, "headers": headers, "body": body}
		out, err := m.webhook(ctx, d.Method, d.URL, headers, body)
		return in, out, err
	case "invoke":
		raw, _ := json.Marshal(body)
		res, err := m.o.Funcs.Invoke(ctx, d.Function, raw)
		if err != nil {
			return body, nil, fn.HTTPError(d.Function, err)
		}
		var out any = res.Body
		if len(res.JSON) > 0 {
			json.Unmarshal(res.JSON, &out)
		}
		return body, map[string]any{"status": max(res.Status, 200), "body": out}, nil
	case "emit":
		raw, _ := json.Marshal(body)
		seq, err := m.o.Engine.Emit(ctx, d.Type, subject, raw)
		return map[string]any{"type": d.Type, "subject": subject, "data": body}, map[string]any{"seq": seq}, err
	}
	return nil, nil, fmt.Errorf("unknown step kind %q", d.Kind)
}

// record runs a create, update or delete through the engine as the
// automation, and answers the record (null for a delete).
func (m *Manager) record(ctx context.Context, kind, coll, id string, fields map[string]any) (any, error) {
	data := map[string]json.RawMessage{}
	for k, v := range fields {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		data[k] = raw
	}
	res, err := m.o.Engine.Write(ctx, []engine.Op{{Kind: kind, Collection: coll, ID: id, Data: data}})
	if err != nil {
		return nil, err
	}
	if kind == engine.Delete {
		return nil, nil
	}
	raw := res[0].JSON
	if raw == nil {
		raw = res[0].Collection.AppendJSON(nil, res[0].Record, nil, nil)
	}
	var out any
	err = json.Unmarshal(raw, &out)
	return out, err
}

// webhook calls a URL with the body as JSON; an answer outside 2xx fails
// the step. The output is {status, body}, the body decoded when JSON.
func (m *Manager) webhook(ctx context.Context, method, url string, headers map[string]string, body any) (any, error) {
	if method == "" {
		method = http.MethodPost
	}
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Mantle-Automations/1")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxWebhookAnswer))
	var out any = strings.TrimSpace(string(raw))
	if json.Valid(raw) {
		json.Unmarshal(raw, &out)
	}
	res := map[string]any{"status": resp.StatusCode, "body": out}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return res, fmt.Errorf("%s %s answered %d", method, url, resp.StatusCode)
	}
	return res, nil
}
