package rest

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/auth"
	"github.com/mantlehq/mantle/internal/feed"
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
	m, err := feed.NewMatcher(h.Engine, mantle.IdentityFrom(r.Context()),
		feed.Spec{Collections: f.Collections, Types: f.Types, Filter: r.URL.Query().Get("filter")})
	if err != nil {
		return err
	}
	if err := h.Engine.CheckAfter(r.Context(), f.After); err != nil {
		return err
	}
	out, ctx, err := openSSE(w, r)
	if errors.Is(err, errClientGone) {
		return nil
	}
	if err != nil {
		return err
	}
	defer out.end()
	if out.send(connectedFrame) != nil {
		return nil
	}
	revoked, stop := h.Auth.Watch(auth.CredentialFrom(r.Context()))
	defer stop()
	h.tail(ctx, out, m, feed.NewCursor(h.Hub, h.Engine, f.After), revoked)
	return nil
}

// tail sends the stream's events until the client goes, the server stops
// or the credential is revoked or expires (revoked is closed): each
// step's matching events in one send, as the frames the events rendered
// once for every stream. A revocation is in place before any later event
// is published (auth.Service.Observe), so the check before each send
// keeps every event after it from the stream.
func (h *handler) tail(ctx context.Context, out sseOut, m *feed.Matcher, cur *feed.Cursor, revoked <-chan struct{}) {
	heartbeat := time.NewTicker(h.Heartbeat)
	defer heartbeat.Stop()
	var frames [][]byte
	for {
		evs, wait, err := cur.Next(ctx, 512)
		if err != nil {
			return // headers are sent; end the stream, the client resumes
		}
		select {
		case <-revoked:
			out.send(revokedFrame)
			return
		default:
		}
		frames = frames[:0]
		for _, ev := range evs {
			if m.Match(ev) {
				frames = append(frames, m.View(ev).SSE())
			}
		}
		if out.send(frames...) != nil {
			return
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-revoked:
			out.send(revokedFrame)
			return
		case <-wait:
		case <-heartbeat.C:
			if out.send(heartbeatFrame) != nil {
				return
			}
		}
	}
}

var (
	connectedFrame = []byte("retry: 1000\n: connected\n\n")
	heartbeatFrame = []byte(": heartbeat\n\n")
	// revokedFrame tells the client why the stream ends: its credential
	// was revoked or expired. EventSource reconnects by itself; with a
	// fresh token it resumes after its last event id.
	revokedFrame = []byte("event: auth.revoked\ndata: {\"reason\":\"auth.credential_ended\",\"detail\":\"the credential was revoked or expired; reconnect with a fresh token\"}\n\n")
)
