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
	// SendBuffer is how many control messages (answers to subscribe,
	// ping and the like) may wait for the connection's event loop;
	// default 1024. A client that fills it without reading is too slow.
	// Events do not queue: the loop reads them from the log as the
	// client takes them.
	SendBuffer int
	// SlowTimeout is how long one message may wait for the client to take
	// it (its socket buffer is full) before the client counts as too slow
	// and is disconnected; default 5s. Other connections never wait for it.
	SlowTimeout time.Duration
	// MaxMessage bounds a client's message; default 64 KiB.
	MaxMessage int64
	// MaxSubscriptions bounds a connection's subscriptions; default 100.
	MaxSubscriptions int
	// OnClose, when set, hears every connection the server closes, with
	// the code and reason (for metrics and tests).
	OnClose func(code websocket.StatusCode, reason string)
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
	hj := &hijacker{ResponseWriter: w}
	c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{OriginPatterns: []string{"*"}})
	if err != nil {
		return // Accept has answered
	}
	c.SetReadLimit(h.MaxMessage)
	revoked, stop := h.Auth.Watch(cred)
	defer stop()
	s := &session{h: h, c: c, fw: &frameWriter{conn: hj.conn}, id: id, cred: cred, header: header, revoked: revoked,
		ctl: make(chan control, h.SendBuffer), ids: map[string]bool{},
		closeDone: make(chan struct{}), loopDone: make(chan struct{})}
	s.run(r.Context())
}

// session is one connection. Its reader goroutine reads the client's
// messages; its event loop (loop.go) owns every subscription's cursor and
// is the only writer of the connection.
type session struct {
	h      *handler
	c      *websocket.Conn
	fw     *frameWriter      // the event loop's data frames
	group  []*eventlog.Event // the event loop's events of the message being built, reused
	id     mantle.Identity
	cred   auth.Credential
	header string
	// revoked is closed when the credential is revoked or expires
	// (auth.Service.Watch); nil for anonymous connections.
	revoked <-chan struct{}

	ctl chan control // from the reader to the event loop

	mu        sync.Mutex
	ids       map[string]bool // the live subscriptions, as the reader sees them
	closed    bool            // fail was called
	closeDone chan struct{}   // the close handshake ended
	closeOnce sync.Once
	cancel    context.CancelFunc
	// loopDone is closed when the event loop has returned: nothing more
	// is written but the close frame.
	loopDone chan struct{}
}

func (s *session) closeFinished() { s.closeOnce.Do(func() { close(s.closeDone) }) }

// run serves the connection until either side closes it. Closing is
// always a close frame with a code and reason (coder/websocket closes the
// connection without one when a context passed to Read or Write ends, so
// those calls get contexts that never end).
func (s *session) run(parent context.Context) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	s.cancel = cancel
	defer cancel()
	go func() { defer close(s.loopDone); s.loop(ctx) }()
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
	failed := s.isClosed()
	<-s.loopDone
	if !failed {
		s.c.Close(websocket.StatusNormalClosure, "")
		s.closeFinished()
	}
	<-s.closeDone
}

// fail ends the connection with a close code and reason: the close frame
// goes out after the message being written, and the reader returns when
// the handshake ends.
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
			<-s.loopDone
			s.c.Close(code, reason)
			s.closeFinished()
		}()
	}
}

// send queues a control message for the event loop; a full queue means
// the client is not reading, and closes the connection.
func (s *session) send(c control) bool {
	select {
	case s.ctl <- c:
		return true
	default:
		s.fail(CloseSlow, "slow consumer: "+strconv.Itoa(cap(s.ctl))+" messages waited; reconnect and resume after the last seq you received")
		return false
	}
}

// watchCredential closes the connection with 4401 when its credential
// expires or is revoked (logout, a revoked key, a change of the user's
// roles or password, on any node: auth.Service.Watch).
func (s *session) watchCredential(ctx context.Context) {
	if s.revoked == nil {
		return // anonymous: nothing to expire
	}
	select {
	case <-ctx.Done():
	case <-s.revoked:
		s.failRevoked()
	}
}

func (s *session) failRevoked() {
	if !s.cred.Expires.IsZero() && !time.Now().Before(s.cred.Expires) {
		s.fail(CloseAuth, "the credential expired; reconnect with a fresh token and resume")
		return
	}
	s.fail(CloseAuth, "the credential was revoked (signed out, key revoked, roles or password changed); reconnect with a valid one and resume")
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
			s.send(control{raw: []byte(`{"type":"pong"}`)})
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
	s.send(control{raw: b})
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
	dup := s.ids[m.ID]
	n := len(s.ids)
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
		if err := s.h.Engine.CheckAfter(ctx, after); err != nil {
			s.sendError(m.ID, err)
			return
		}
	} else if after, err = s.h.Engine.LastSeq(ctx); err != nil {
		s.sendError(m.ID, err)
		return
	}
	s.mu.Lock()
	s.ids[m.ID] = true
	s.mu.Unlock()
	idJSON, _ := json.Marshal(m.ID)
	s.send(control{
		raw: []byte(`{"type":"subscribed","id":` + string(idJSON) + `,"after":` + strconv.FormatInt(after, 10) + `}`),
		add: &subscription{id: m.ID, idJSON: idJSON, m: matcher, cur: feed.NewCursor(s.h.Hub, s.h.Engine, after), batch: m.Batch},
	})
}

func (s *session) unsubscribe(id string) {
	s.mu.Lock()
	live := s.ids[id]
	delete(s.ids, id)
	s.mu.Unlock()
	if !live {
		s.sendError(id, mantle.Errorf(mantle.NotFound, "realtime.unknown_subscription", "no subscription %q", id))
		return
	}
	idJSON, _ := json.Marshal(id)
	// The loop drops the subscription before it writes the answer: no
	// event of it follows.
	s.send(control{remove: id, raw: []byte(`{"type":"unsubscribed","id":` + string(idJSON) + `}`)})
}
