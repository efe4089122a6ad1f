package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/query"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
)

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseSeq(name, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, mantle.Errorf(mantle.Invalid, "query.invalid_after", "%s must be an event sequence number, 0 or more", name)
	}
	return n, nil
}

// eventFilter reads after, collections and types, checking collection names.
func (h *handler) eventFilter(r *http.Request) (store.EventFilter, error) {
	q := r.URL.Query()
	var f store.EventFilter
	var err error
	if f.After, err = parseSeq("after", q.Get("after")); err != nil {
		return f, err
	}
	f.Collections = splitList(q.Get("collections"))
	for _, c := range f.Collections {
		if _, err := h.Engine.Collection(c); err != nil {
			return f, err
		}
	}
	f.Types = splitList(q.Get("types"))
	return f, nil
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) error {
	f, err := h.eventFilter(r)
	if err != nil {
		return err
	}
	f.Limit = 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return mantle.Errorf(mantle.Invalid, "query.invalid_limit", "limit must be a whole number from 1 to 1000")
		}
		f.Limit = n
	}
	evs, covered, err := h.Engine.Events(r.Context(), f)
	if err != nil {
		return err
	}
	b := []byte(`{"events":[`)
	for i, ev := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ev.JSON()...)
	}
	b = append(b, `],"lastSeq":`...)
	b = strconv.AppendInt(b, covered, 10)
	return writeJSON(w, http.StatusOK, append(b, '}'))
}

// streamFilter decides which events a stream subscriber receives.
type streamFilter struct {
	base    store.EventFilter
	exprs   map[string]query.Expr // per collection; nil map: no filter
	caller  mantle.Identity
	canSee  func(mantle.Identity, *eventlog.Event) bool
	schemaC func(string) *schema.Collection
}

func (f *streamFilter) match(ev *eventlog.Event) bool {
	if !f.base.Match(ev) || !f.canSee(f.caller, ev) {
		return false
	}
	if f.exprs == nil {
		return true
	}
	expr, ok := f.exprs[ev.Collection]
	if !ok {
		return false
	}
	c := f.schemaC(ev.Collection)
	if c == nil {
		return false
	}
	var d eventlog.RecordData
	if json.Unmarshal(ev.Data, &d) != nil || d.Record == nil {
		return false
	}
	rec, err := c.ParseRecord(d.Record)
	if err != nil {
		return false
	}
	return query.Eval(expr, func(name string) any { return query.Value(rec, name) })
}

// compileStreamFilter compiles filter for each subscribed collection (all
// when none are named). A filter that fits none of them is a 400.
func (h *handler) compileStreamFilter(src string, colls []string) (map[string]query.Expr, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	s := h.Engine.Schema()
	if len(colls) == 0 {
		for _, c := range s.Collections {
			colls = append(colls, c.Name)
		}
	}
	out := map[string]query.Expr{}
	var firstErr error
	for _, name := range colls {
		e, err := h.Engine.CompileFilter(name, src)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		out[name] = e
	}
	if len(out) == 0 {
		return nil, firstErr
	}
	return out, nil
}

// stream serves GET /api/events/stream as Server-Sent Events: the events
// after the resume point (Last-Event-ID or after), then the live tail. The
// cursor only moves forward through the log, so a subscriber sees each
// event once, in order, with no gap.
func (h *handler) stream(w http.ResponseWriter, r *http.Request) error {
	f, err := h.eventFilter(r)
	if err != nil {
		return err
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if f.After, err = parseSeq("Last-Event-ID", id); err != nil {
			return err
		}
	}
	exprs, err := h.compileStreamFilter(r.URL.Query().Get("filter"), f.Collections)
	if err != nil {
		return err
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		return fmt.Errorf("response writer cannot flush")
	}
	sf := &streamFilter{base: f, exprs: exprs, caller: mantle.IdentityFrom(r.Context()),
		canSee: h.Engine.CanSee, schemaC: func(n string) *schema.Collection { return h.Engine.Schema().Collection(n) }}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte("retry: 1000\n: connected\n\n"))
	flusher.Flush()
	return h.tail(r.Context(), w, flusher, sf, f.After)
}

func (h *handler) tail(ctx context.Context, w http.ResponseWriter, flusher http.Flusher, sf *streamFilter, cursor int64) error {
	heartbeat := time.NewTicker(h.Heartbeat)
	defer heartbeat.Stop()
	buf := make([]byte, 0, 4096)
	for {
		evs, ok, wait := h.Hub.Since(cursor, 512)
		if !ok {
			var err error
			evs, err = h.Engine.StoreEvents(ctx, store.EventFilter{After: cursor, Limit: 512})
			if err != nil {
				return nil // headers are sent; end the stream, the client resumes
			}
		}
		buf = buf[:0]
		for _, ev := range evs {
			cursor = ev.Seq
			if !sf.match(ev) {
				continue
			}
			buf = append(buf, "id: "...)
			buf = strconv.AppendInt(buf, ev.Seq, 10)
			buf = append(buf, "\nevent: "...)
			buf = append(buf, ev.Type...)
			buf = append(buf, "\ndata: "...)
			buf = append(buf, ev.JSON()...)
			buf = append(buf, "\n\n"...)
		}
		if len(buf) > 0 {
			if _, err := w.Write(buf); err != nil {
				return nil
			}
			flusher.Flush()
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wait:
		case <-heartbeat.C:
			if _, err := w.Write([]byte(": heartbeat\n\n")); err != nil {
				return nil
			}
			flusher.Flush()
		}
	}
}
