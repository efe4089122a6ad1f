// Package realtime serves the WebSocket realtime API at
// /api/realtime/ws (github.com/coder/websocket): a client subscribes to
// collections with an optional CEL filter and a resume sequence, and
// receives the events its view rule admits, each once, in order. The
// message protocol is in docs/realtime.md.
package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/auth"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/feed"
	"github.com/mantlehq/mantle/internal/gateway"
)

// Close codes beyond RFC 6455's, in the range for applications.
const (
	// CloseAuth: the credential expired or was revoked; reconnect with a
	// fresh token and resume.
	CloseAuth websocket.StatusCode = 4401
	// CloseSlow: the client read too slowly and its send buffer filled;
	// reconnect and resume from the last sequence received.
	CloseSlow websocket.StatusCode = 4408
)

// Options configure the handler. Zero values take the defaults.
type Options struct {
	Engine *engine.Engine
	Hub    *eventlog.Hub
	Auth   *auth.Service
	Log    *slog.Logger
	// SendBuffer is how many messages may wait for a client; default
	// 1024. Queued events share the log's copy of their JSON, so this
	// bounds a connection's memory to about SendBuffer small structs.
	SendBuffer int
	// SlowTimeout is how long a subscription waits for room in a full
	// buffer before the client counts as too slow and is disconnected;
	// default 5s. Other subscribers never wait for it.
	SlowTimeout time.Duration
	// MaxMessage bounds a client's message; default 64 KiB.
	MaxMessage int64
	// MaxSubscriptions bounds a connection's subscriptions; default 100.
	MaxSubscriptions int
	// OnClose, when set, hears every connection the server closes, with
	// the code and reason (for metrics and tests).
	OnClose func(code websocket.StatusCode, reason string)
	// Recheck is how often the connection's credential is checked again
	// (logout, revoked keys); default 30s. Expiry closes it on time.
	Recheck time.Duration
}

type handler struct{ Options }

// New returns the WebSocket handler.
func New(o Options) http.Handler {
	if o.SendBuffer <= 0 {
		o.SendBuffer = 1024
	}
	if o.SlowTimeout <= 0 {
		o.SlowTimeout = 5 * time.Second
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = 64 << 10
	}
	if o.MaxSubscriptions <= 0 {
		o.MaxSubscriptions = 100
	}
	if o.Recheck <= 0 {
		o.Recheck = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &handler{o}
}

// ServeHTTP authenticates (the Authorization header, or ?token= since
// browsers cannot set headers on a WebSocket) and upgrades.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	header := auth.RequestHeader(r, true)
	id, cred, err := h.Auth.Authenticate(r.Context(), header)
	if err != nil {
		gateway.WriteError(w, r, h.Log, err)
		return
	}
	// Credentials travel as tokens, never cookies, so a page on another
	// origin cannot ride on a user's session: any origin may connect.
	c, err := websocket.Accept(bigWrites{w}, r, &websocket.AcceptOptions{OriginPatterns: []string{"*"}})
	if err != nil {
		return // Accept has answered
	}
	c.SetReadLimit(h.MaxMessage)
	s := &session{h: h, c: c, id: id, cred: cred, header: header,
		out: make(chan outMsg, h.SendBuffer), subs: map[string]*subscription{},
		closeDone: make(chan struct{}), writerDone: make(chan struct{})}
	s.run(r.Context())
}

// session is one connection.
type session struct {
	h      *handler
	c      *websocket.Conn
	id     mantle.Identity
	cred   auth.Credential
	header string

	out chan outMsg // messages for the writer goroutine

	mu        sync.Mutex
	subs      map[string]*subscription
	closed    bool          // fail was called
	closeDone chan struct{} // the close handshake ended
	closeOnce sync.Once
	cancel    context.CancelFunc
	// writerDone is closed when the writer goroutine has returned.
	writerDone chan struct{}
}

func (s *session) closeFinished() { s.closeOnce.Do(func() { close(s.closeDone) }) }

type subscription struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// run serves the connection until either side closes it. Closing is
// always a close frame with a code and reason (coder/websocket closes the
// connection without one when a context passed to Read or Write ends, so
// those calls get contexts that only time out).
func (s *session) run(parent context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	s.cancel = cancel
	defer cancel()
	writerDone := s.writerDone
	go func() { defer close(writerDone); s.writer(ctx) }()
	go s.watchCredential(ctx)
	go func() {
		select {
		case <-parent.Done():
			s.fail(websocket.StatusGoingAway, "the server is shutting down; reconnect and resume")
		case <-ctx.Done():
		}
	}()
	s.reader(ctx)
	cancel()
	s.mu.Lock()
	subs := s.subs
	s.subs = map[string]*subscription{}
	failed := s.closed
	s.mu.Unlock()
	for _, sub := range subs {
		sub.cancel()
		<-sub.done
	}
	<-writerDone
	if !failed {
		s.c.Close(websocket.StatusNormalClosure, "")
		s.closeFinished()
	}
	<-s.closeDone
}

// fail ends the connection with a close code and reason: the close frame
// goes out after the messages already written, and the reader returns
// when the handshake ends.
func (s *session) fail(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	first := !s.closed
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	if first {
		if s.h.OnClose != nil {
			s.h.OnClose(code, reason)
		}
		if code == CloseSlow {
			s.h.Log.Info("realtime: slow consumer disconnected", "identity", s.id.ID)
		}
		go func() {
			// The close frame goes after the message being written, if
			// any: a client that reads again in time learns why.
			<-s.writerDone
			s.c.Close(code, reason)
			s.closeFinished()
		}()
	}
}

// outMsg is a queued message: raw bytes, or an event of a subscription
// (framed by the writer, so the queue holds no copy of the event).
type outMsg struct {
	raw []byte
	sub []byte // the subscription id, as JSON
	ev  *eventlog.Event
	evs []*eventlog.Event // a batch ("events"), for subscriptions that asked
}

// send queues a control message; a full queue closes the connection.
func (s *session) send(raw []byte) bool {
	select {
	case s.out <- outMsg{raw: raw}:
		return true
	default:
		s.slow()
		return false
	}
}

func (s *session) slow() {
	s.fail(CloseSlow, "slow consumer: "+strconv.Itoa(cap(s.out))+" messages waited "+s.h.SlowTimeout.String()+"; reconnect and resume after the last seq you received")
}

// sendEvent queues an event, waiting up to SlowTimeout for room: the
// subscription's cursor simply pauses meanwhile. A client that stays
// behind longer is disconnected.
func (s *session) sendEvent(ctx context.Context, m outMsg) bool {
	select {
	case s.out <- m:
		return true
	default:
	}
	t := time.NewTimer(s.h.SlowTimeout)
	defer t.Stop()
	select {
	case s.out <- m:
		return true
	case <-ctx.Done():
		return false
	case <-t.C:
		s.slow()
		return false
	}
}

var (
	eventHead = []byte(`{"type":"event","id":`)
	seqPart   = []byte(`,"seq":`)
	eventPart = []byte(`,"event":`)
)

func (s *session) writer(ctx context.Context) {
	var buf []byte
	// A write that a client does not take within the limit ends the
	// connection: one timer for the session, armed around each write
	// (a context with a deadline per write cost a tenth of fan-out).
	stuck := time.AfterFunc(time.Hour, func() { s.c.CloseNow() })
	stuck.Stop()
	defer stuck.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-s.out:
			switch {
			case m.ev != nil:
				buf = append(buf[:0], eventHead...)
				buf = append(buf, m.sub...)
				buf = append(buf, seqPart...)
				buf = strconv.AppendInt(buf, m.ev.Seq, 10)
				buf = append(buf, eventPart...)
				buf = append(buf, m.ev.JSON()...)
				m.raw = append(buf, '}')
			case m.evs != nil:
				buf = append(buf[:0], `{"type":"events","id":`...)
				buf = append(buf, m.sub...)
				buf = append(buf, `,"events":[`...)
				for i, ev := range m.evs {
					if i > 0 {
						buf = append(buf, ',')
					}
					buf = append(buf, `{"seq":`...)
					buf = strconv.AppendInt(buf, ev.Seq, 10)
					buf = append(buf, eventPart...)
					buf = append(buf, ev.JSON()...)
					buf = append(buf, '}')
				}
				m.raw = append(buf, "]}"...)
			}
			stuck.Reset(s.h.SlowTimeout + 10*time.Second)
			err := s.c.Write(context.Background(), websocket.MessageText, m.raw)
			stuck.Stop()
			if err != nil {
				s.fail(CloseSlow, "slow consumer: a message could not be written in time")
				return
			}
		}
	}
}

// watchCredential closes the connection when its credential expires, and
// checks now and then that it was not revoked (logout, a deleted key).
func (s *session) watchCredential(ctx context.Context) {
	if s.cred.Kind == "" {
		return // anonymous: nothing to expire
	}
	var expiry <-chan time.Time
	if !s.cred.Expires.IsZero() {
		t := time.NewTimer(time.Until(s.cred.Expires))
		defer t.Stop()
		expiry = t.C
	}
	tick := time.NewTicker(s.h.Recheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-expiry:
			s.fail(CloseAuth, "the credential expired; reconnect with a fresh token and resume")
			return
		case <-tick.C:
			if _, _, err := s.h.Auth.Authenticate(ctx, s.header); err != nil && ctx.Err() == nil {
				s.fail(CloseAuth, "the credential is no longer valid; reconnect with a fresh token and resume")
				return
			}
		}
	}
}

// clientMsg is any message a client sends.
type clientMsg struct {
	Type        string   `json:"type"`
	ID          string   `json:"id"`
	Collections []string `json:"collections"`
	Types       []string `json:"types"`
	Filter      string   `json:"filter"`
	After       *int64   `json:"after"`
	// Batch asks for several events per message ("events") when more
	// than one is ready: fewer frames when catching up or under load.
	Batch bool `json:"batch"`
}

func (s *session) reader(ctx context.Context) {
	for n := 1; ; n++ {
		typ, data, err := s.c.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			switch {
			case errors.As(err, &ce), ctx.Err() != nil:
				if !s.isClosed() {
					s.closeFinished() // the client closed: nothing to wait for
				}
			case errors.Is(err, websocket.ErrMessageTooBig):
				s.fail(websocket.StatusMessageTooBig, "a message is larger than "+strconv.FormatInt(s.h.MaxMessage, 10)+" bytes")
			default:
				s.fail(websocket.StatusProtocolError, "unreadable frame")
			}
			return
		}
		if typ != websocket.MessageText {
			s.fail(websocket.StatusUnsupportedData, "binary messages are not part of the protocol; send JSON text")
			return
		}
		var m clientMsg
		if err := json.Unmarshal(data, &m); err != nil {
			s.fail(websocket.StatusInvalidFramePayloadData, "message "+strconv.Itoa(n)+" is not a JSON object")
			return
		}
		switch m.Type {
		case "subscribe":
			s.subscribe(ctx, m)
		case "unsubscribe":
			s.unsubscribe(m.ID)
		case "ping":
			s.send([]byte(`{"type":"pong"}`))
		default:
			s.sendError(m.ID, mantle.Errorf(mantle.Invalid, "realtime.unknown_type",
				"message type %q: use subscribe, unsubscribe or ping", m.Type))
		}
	}
}

func (s *session) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *session) sendError(id string, err error) {
	me := mantle.AsError(err)
	if me == nil {
		me = &mantle.Error{Code: mantle.Internal, Reason: "internal", Message: "an internal error occurred"}
		s.h.Log.Error("realtime", "err", err)
	}
	b, _ := json.Marshal(map[string]any{"type": "error", "id": id, "code": me.Code, "reason": me.Reason,
		"message": me.Message, "fields": me.Fields})
	s.send(b)
}

func validSubID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r > 0x7e || r == '"' || r == '\\' {
			return false
		}
	}
	return true
}

func (s *session) subscribe(ctx context.Context, m clientMsg) {
	if !validSubID(m.ID) {
		s.sendError("", mantle.Errorf(mantle.Invalid, "realtime.invalid_id", "a subscription needs an id of 1 to 64 printable ASCII characters"))
		return
	}
	s.mu.Lock()
	_, dup := s.subs[m.ID]
	n := len(s.subs)
	s.mu.Unlock()
	switch {
	case dup:
		s.sendError(m.ID, mantle.Errorf(mantle.Invalid, "realtime.duplicate_id", "subscription %q exists; unsubscribe first", m.ID))
		return
	case n >= s.h.MaxSubscriptions:
		s.sendError(m.ID, mantle.Errorf(mantle.Invalid, "realtime.too_many", "at most %d subscriptions per connection", s.h.MaxSubscriptions))
		return
	}
	matcher, err := feed.NewMatcher(s.h.Engine, s.id, feed.Spec{Collections: m.Collections, Types: m.Types, Filter: m.Filter})
	if err != nil {
		s.sendError(m.ID, err)
		return
	}
	var after int64
	if m.After != nil {
		if *m.After < 0 {
			s.sendError(m.ID, mantle.Errorf(mantle.Invalid, "query.invalid_after", "after must be a sequence number, 0 or more"))
			return
		}
		after = *m.After
	} else if after, err = s.h.Engine.LastSeq(ctx); err != nil {
		s.sendError(m.ID, err)
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	sub := &subscription{cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.subs[m.ID] = sub
	s.mu.Unlock()
	idJSON, _ := json.Marshal(m.ID)
	s.send([]byte(`{"type":"subscribed","id":` + string(idJSON) + `,"after":` + strconv.FormatInt(after, 10) + `}`))
	go func() {
		defer close(sub.done)
		s.tail(sctx, idJSON, matcher, feed.NewCursor(s.h.Hub, s.h.Engine, after), m.Batch)
	}()
}

func (s *session) unsubscribe(id string) {
	s.mu.Lock()
	sub := s.subs[id]
	delete(s.subs, id)
	s.mu.Unlock()
	if sub == nil {
		s.sendError(id, mantle.Errorf(mantle.NotFound, "realtime.unknown_subscription", "no subscription %q", id))
		return
	}
	sub.cancel()
	<-sub.done // no event of it may follow the answer
	idJSON, _ := json.Marshal(id)
	s.send([]byte(`{"type":"unsubscribed","id":` + string(idJSON) + `}`))
}

// tail sends the subscription's events: from its cursor through the log,
// then live.
func (s *session) tail(ctx context.Context, idJSON []byte, m *feed.Matcher, cur *feed.Cursor, batch bool) {
	for {
		evs, wait, err := cur.Next(ctx, 512)
		if err != nil {
			if ctx.Err() == nil {
				s.fail(websocket.StatusInternalError, "the event log could not be read; reconnect and resume")
			}
			return
		}
		var group []*eventlog.Event // batch mode: the matching events of this step, up to ~1 MiB
		size := 0
		flush := func() bool {
			if len(group) == 0 {
				return true
			}
			msg := outMsg{sub: idJSON, evs: group}
			if len(group) == 1 {
				msg = outMsg{sub: idJSON, ev: group[0]}
			}
			group, size = nil, 0
			return ctx.Err() == nil && s.sendEvent(ctx, msg)
		}
		for _, ev := range evs {
			if !m.Match(ev) {
				continue
			}
			if batch {
				group = append(group, ev)
				if size += len(ev.JSON()); size >= 1<<20 && !flush() {
					return
				}
				continue
			}
			if ctx.Err() != nil || !s.sendEvent(ctx, outMsg{sub: idJSON, ev: ev}) {
				return
			}
		}
		if !flush() {
			return
		}
		if len(evs) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		}
	}
}
