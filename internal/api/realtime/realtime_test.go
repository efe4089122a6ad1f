package realtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/mantlehq/mantle/internal/api/realtime"
	"github.com/mantlehq/mantle/internal/apptest"
)

const project = `
name: rt
collections:
  posts:
    fields:
      title:     { type: text, required: true }
      body:      { type: text }
      views:     { type: number }
      published: { type: bool }
      author:    { type: relation, collection: users }
    rules:
      list:   "published || record.author == auth.id"
      view:   "published || record.author == auth.id"
      create: "auth.id != '' && data.author == auth.id"
      update: "record.author == auth.id"
  notes:
    fields:
      text: { type: text }
    rules:
      view: "true"
      create: "true"
`

// msg is any server message.
type msg struct {
	Type    string
	ID      string
	Seq     int64
	After   int64
	Reason  string
	Message string
	Event   struct {
		Seq  int64
		Type string
		Data struct{ Record struct{ Title string } }
	}
	Events []struct{ Seq int64 } // type "events"
}

type client struct {
	t *testing.T
	c *websocket.Conn
}

func dial(t *testing.T, url, token string) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{}
	if token != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + token}}
	}
	c, _, err := websocket.Dial(ctx, strings.Replace(url, "http://", "ws://", 1)+"/api/realtime/ws", opts)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &client{t, c}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) next() msg {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m msg
	json.Unmarshal(b, &m)
	return m
}

// closed reads until the server closes and returns its close status.
func (c *client) closed() websocket.CloseError {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		_, _, err := c.c.Read(ctx)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("the connection ended without a close frame: %v", err)
		}
		return ce
	}
}

func post(t *testing.T, s *apptest.Server, auth, author, title string, published bool) {
	t.Helper()
	r := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": title, "published": published, "author": author}, auth)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
}

func TestSubscribeFilterUnsubscribe(t *testing.T) {
	s := apptest.Start(t, project)
	ada, adaAuth := s.User("ada@example.com")
	token := strings.TrimPrefix(adaAuth, "Authorization: Bearer ")
	c := dial(t, s.URL, token)
	c.send(map[string]any{"type": "subscribe", "id": "hot", "collections": []string{"posts"}, "filter": `title.startsWith("hot")`})
	if m := c.next(); m.Type != "subscribed" || m.ID != "hot" {
		t.Fatalf("got %+v", m)
	}
	post(t, s, adaAuth, ada, "cold 1", true)
	post(t, s, adaAuth, ada, "hot 1", false) // her own draft: she may view it
	post(t, s, adaAuth, ada, "hot 2", true)
	for _, want := range []string{"hot 1", "hot 2"} {
		m := c.next()
		if m.Type != "event" || m.ID != "hot" || m.Event.Data.Record.Title != want || m.Seq != m.Event.Seq {
			t.Fatalf("got %+v, want the event of %q", m, want)
		}
	}
	c.send(map[string]any{"type": "unsubscribe", "id": "hot"})
	if m := c.next(); m.Type != "unsubscribed" {
		t.Fatalf("got %+v", m)
	}
	post(t, s, adaAuth, ada, "hot 3", true)
	c.send(map[string]any{"type": "ping"})
	if m := c.next(); m.Type != "pong" {
		t.Errorf("after unsubscribing, got %+v before the pong", m)
	}
}

// Each subscriber sees the events its view rule admits.
func TestViewRule(t *testing.T) {
	s := apptest.Start(t, project)
	ada, adaAuth := s.User("ada@example.com")
	_, bobAuth := s.User("bob@example.com")
	bob := dial(t, s.URL, strings.TrimPrefix(bobAuth, "Authorization: Bearer "))
	anon := dial(t, s.URL, "")
	for _, c := range []*client{bob, anon} {
		c.send(map[string]any{"type": "subscribe", "id": "p", "collections": []string{"posts"}})
		c.next()
	}
	post(t, s, adaAuth, ada, "draft", false)
	post(t, s, adaAuth, ada, "public", true)
	for name, c := range map[string]*client{"bob": bob, "anonymous": anon} {
		if m := c.next(); m.Event.Data.Record.Title != "public" {
			t.Errorf("%s got %q first, want only the public post", name, m.Event.Data.Record.Title)
		}
	}
}

// A subscriber that reconnects with after = the last seq it received gets
// the rest, with no gap and no duplicate.
func TestResume(t *testing.T) {
	s := apptest.Start(t, project)
	start := s.LastSeq()
	for i := 0; i < 30; i++ {
		s.Do("POST", "/api/collections/notes/records", map[string]any{"text": fmt.Sprint(i)})
	}
	c := dial(t, s.URL, "")
	c.send(map[string]any{"type": "subscribe", "id": "n", "collections": []string{"notes"}, "after": start})
	c.next()
	var last int64
	for i := 0; i < 12; i++ {
		m := c.next()
		if m.Seq != start+int64(i)+1 {
			t.Fatalf("event %d has seq %d", i, m.Seq)
		}
		last = m.Seq
	}
	c.c.CloseNow()
	for i := 30; i < 40; i++ {
		s.Do("POST", "/api/collections/notes/records", map[string]any{"text": fmt.Sprint(i)})
	}
	c = dial(t, s.URL, "")
	c.send(map[string]any{"type": "subscribe", "id": "n", "collections": []string{"notes"}, "after": last})
	if m := c.next(); m.Type != "subscribed" || m.After != last {
		t.Fatalf("got %+v", m)
	}
	for want := last + 1; want <= start+40; want++ {
		if m := c.next(); m.Seq != want {
			t.Fatalf("got seq %d, want %d", m.Seq, want)
		}
	}
}

func TestBadInput(t *testing.T) {
	s := apptest.Start(t, project)
	c := dial(t, s.URL, "")
	for _, tc := range []struct {
		send   any
		reason string
	}{
		{map[string]any{"type": "subscribe", "id": "f", "collections": []string{"notes"}, "filter": "text ==="}, "query.invalid_filter"},
		{map[string]any{"type": "subscribe", "id": "f", "collections": []string{"notes"}, "filter": strings.Repeat("(", 5000)}, "query.invalid_filter"},
		{map[string]any{"type": "subscribe", "id": "c", "collections": []string{"nope"}}, "collection.not_found"},
		{map[string]any{"type": "subscribe", "id": ""}, "realtime.invalid_id"},
		{map[string]any{"type": "subscribe", "id": "a", "after": -1}, "query.invalid_after"},
		{map[string]any{"type": "unsubscribe", "id": "never"}, "realtime.unknown_subscription"},
		{map[string]any{"type": "shout"}, "realtime.unknown_type"},
	} {
		c.send(tc.send)
		if m := c.next(); m.Type != "error" || m.Reason != tc.reason {
			t.Errorf("%v: got %+v, want error %s", tc.send, m, tc.reason)
		}
	}
	c.send(map[string]any{"type": "subscribe", "id": "dup", "collections": []string{"notes"}})
	c.next()
	c.send(map[string]any{"type": "subscribe", "id": "dup", "collections": []string{"notes"}})
	if m := c.next(); m.Reason != "realtime.duplicate_id" {
		t.Errorf("duplicate id: %+v", m)
	}
	// Garbage ends the connection with a protocol close code.
	for _, tc := range []struct {
		name  string
		typ   websocket.MessageType
		data  []byte
		code  websocket.StatusCode
		after func(*client)
	}{
		{"not JSON", websocket.MessageText, []byte("hello?"), websocket.StatusInvalidFramePayloadData, nil},
		{"binary", websocket.MessageBinary, []byte{0, 1, 2}, websocket.StatusUnsupportedData, nil},
		{"too big", websocket.MessageText, []byte(`{"type":"ping","x":"` + strings.Repeat("x", 70<<10) + `"}`), websocket.StatusMessageTooBig, nil},
	} {
		c := dial(t, s.URL, "")
		c.c.Write(context.Background(), tc.typ, tc.data)
		if ce := c.closed(); ce.Code != tc.code {
			t.Errorf("%s: closed with %v, want %v", tc.name, ce, tc.code)
		}
	}
	// The server is fine afterwards.
	c = dial(t, s.URL, "")
	c.send(map[string]any{"type": "ping"})
	if m := c.next(); m.Type != "pong" {
		t.Errorf("after the garbage: %+v", m)
	}
}

func TestAuth(t *testing.T) {
	s := apptest.Start(t, project)
	_, adaAuth := s.User("ada@example.com")
	token := strings.TrimPrefix(adaAuth, "Authorization: Bearer ")
	ws := strings.Replace(s.URL, "http://", "ws://", 1) + "/api/realtime/ws"
	_, resp, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer forged"}}})
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("a forged token: %v %v", resp, err)
	}
	c, _, err := websocket.Dial(context.Background(), ws+"?token="+token, nil)
	if err != nil {
		t.Fatalf("?token=: %v", err)
	}
	c.CloseNow()

	// A logged-out session is cut off.
	h := realtime.New(realtime.Options{Engine: s.App.Engine, Hub: s.App.Hub, Auth: s.App.Auth})
	hs := httptest.NewServer(h)
	defer hs.Close()
	cl := dial(t, hs.URL, token)
	cl.send(map[string]any{"type": "ping"})
	cl.next()
	if r := s.Do("POST", "/api/auth/logout", nil, adaAuth); r.Status != 204 {
		t.Fatal(r.Status)
	}
	if ce := cl.closed(); ce.Code != realtime.CloseAuth {
		t.Errorf("after logout: %v", ce)
	}
}

// A client that stops reading is disconnected once its buffer is full;
// another subscriber meanwhile receives everything.
func TestSlowConsumer(t *testing.T) {
	s := apptest.Start(t, project)
	closes := make(chan websocket.StatusCode, 10)
	h := realtime.New(realtime.Options{Engine: s.App.Engine, Hub: s.App.Hub, Auth: s.App.Auth, SendBuffer: 8, SlowTimeout: 300 * time.Millisecond,
		OnClose: func(code websocket.StatusCode, _ string) { closes <- code }})
	hs := httptest.NewServer(h)
	defer hs.Close()
	// The slow client's socket takes little before it pushes back.
	dialer := &net.Dialer{Control: nil}
	slowHTTP := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(64 << 10)
		}
		return c, err
	}}}
	ws := strings.Replace(hs.URL, "http://", "ws://", 1) + "/api/realtime/ws"
	slow, _, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{HTTPClient: slowHTTP})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	fast := dial(t, hs.URL, "")
	sub := func(c *websocket.Conn) {
		b, _ := json.Marshal(map[string]any{"type": "subscribe", "id": "n", "collections": []string{"notes"}})
		c.Write(context.Background(), websocket.MessageText, b)
	}
	sub(slow)
	sub(fast.c)
	fast.next()
	big := strings.Repeat("x", 20_000)
	const n = 800 // 16 MB: more than the sockets between the two hold
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i += 40 {
			var ops []map[string]any
			for j := 0; j < 40; j++ {
				ops = append(ops, map[string]any{"op": "create", "collection": "notes", "data": map[string]any{"text": big}})
			}
			s.Do("POST", "/api/batch", map[string]any{"ops": ops})
		}
	}()
	// The fast subscriber is not held up: it gets every event.
	fastDone := make(chan string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for i := 0; i < n; i++ {
			if _, _, err := fast.c.Read(ctx); err != nil {
				fastDone <- fmt.Sprintf("event %d: %v", i, err)
				return
			}
		}
		fastDone <- ""
	}()
	// The slow client reads nothing until the server gives up on it.
	select {
	case code := <-closes:
		if code != realtime.CloseSlow {
			t.Fatalf("the server closed a connection with %v", code)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the slow client was never disconnected")
	}
	// It reads now: what was sent before its buffer filled, then the
	// close frame with the reason.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := 0
	for {
		_, _, err := slow.Read(ctx)
		if err == nil {
			got++
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != realtime.CloseSlow || !strings.Contains(ce.Reason, "slow consumer") {
			t.Fatalf("slow client: %v after %d messages", err, got)
		}
		break
	}
	if msg := <-fastDone; msg != "" {
		t.Fatalf("the fast subscriber: %s", msg)
	}
	<-done
	if got >= n {
		t.Errorf("the slow client received all %d events; the buffer did not bound it", got)
	}
}

// With batch, several ready events travel in one "events" message; the
// order and the no-gap guarantee are the same. The events are big enough
// that a batch is a frame over 64 KiB (the server writes frames itself:
// this covers the 8-byte length).
func TestBatch(t *testing.T) {
	s := apptest.Start(t, project)
	start := s.LastSeq()
	var ops []map[string]any
	big := strings.Repeat("b", 5000)
	for i := 0; i < 30; i++ {
		ops = append(ops, map[string]any{"op": "create", "collection": "notes", "data": map[string]any{"text": fmt.Sprint(i, big)}})
	}
	if r := s.Do("POST", "/api/batch", map[string]any{"ops": ops}); r.Status != 200 {
		t.Fatal(r.Status)
	}
	c := dial(t, s.URL, "")
	c.send(map[string]any{"type": "subscribe", "id": "n", "collections": []string{"notes"}, "after": start, "batch": true})
	c.next()
	var seqs []int64
	messages, largest := 0, 0
	for len(seqs) < 30 {
		_, b, err := c.c.Read(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, len(b))
		var m msg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%v in %.200s", err, b)
		}
		messages++
		switch m.Type {
		case "events":
			for _, e := range m.Events {
				seqs = append(seqs, e.Seq)
			}
		case "event":
			seqs = append(seqs, m.Seq)
		default:
			t.Fatalf("got %+v", m)
		}
	}
	for i, seq := range seqs {
		if seq != start+int64(i)+1 {
			t.Fatalf("seqs %v", seqs)
		}
	}
	if messages >= 30 {
		t.Errorf("30 events took %d messages: nothing was batched", messages)
	}
	if largest <= 0xffff {
		t.Errorf("the largest message was %d bytes; the test wants one over 64 KiB", largest)
	}
}

// The server writes its data frames itself, beside coder/websocket's
// answers to pings: the frames must never interleave. The client pings
// while a stream of events arrives; every ping is answered and every event
// arrives whole, in order.
func TestPingsDuringStream(t *testing.T) {
	s := apptest.Start(t, project)
	start := s.LastSeq()
	c := dial(t, s.URL, "")
	c.send(map[string]any{"type": "subscribe", "id": "n", "collections": []string{"notes"}, "after": start, "batch": true})
	c.next()
	const n = 400
	got := make(chan []int64, 1)
	go func() {
		var seqs []int64
		for len(seqs) < n {
			_, b, err := c.c.Read(context.Background())
			if err != nil {
				t.Errorf("read after %d events: %v", len(seqs), err)
				break
			}
			var m msg
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("a broken message after %d events: %v", len(seqs), err)
				break
			}
			for _, e := range m.Events {
				seqs = append(seqs, e.Seq)
			}
			if m.Type == "event" {
				seqs = append(seqs, m.Seq)
			}
		}
		got <- seqs
		// Go on reading: pongs are read by Read, and pings may remain.
		for {
			if _, _, err := c.c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	pings := make(chan error, 1)
	go func() {
		for i := 0; i < 50; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := c.c.Ping(ctx)
			cancel()
			if err != nil {
				pings <- fmt.Errorf("ping %d: %w", i, err)
				return
			}
		}
		pings <- nil
	}()
	text := strings.Repeat("p", 2000)
	for i := 0; i < n; i += 20 {
		var ops []map[string]any
		for j := 0; j < 20; j++ {
			ops = append(ops, map[string]any{"op": "create", "collection": "notes", "data": map[string]any{"text": text}})
		}
		if r := s.Do("POST", "/api/batch", map[string]any{"ops": ops}); r.Status != 200 {
			t.Fatal(r.Status)
		}
	}
	seqs := <-got
	if err := <-pings; err != nil {
		t.Fatal(err)
	}
	if len(seqs) != n {
		t.Fatalf("got %d events, want %d", len(seqs), n)
	}
	for i, seq := range seqs {
		if seq != start+int64(i)+1 {
			t.Fatalf("event %d has seq %d, want %d", i, seq, start+int64(i)+1)
		}
	}
}

// A subscriber who could not view a post as a draft gets its publishing
// without the draft (no previous state); its author gets the whole event.
func TestPreviousFollowsViewRule(t *testing.T) {
	s := apptest.Start(t, project)
	ada, adaAuth := s.User("ada@example.com")
	anon := dial(t, s.URL, "")
	author := dial(t, s.URL, strings.TrimPrefix(adaAuth, "Authorization: Bearer "))
	for _, c := range []*client{anon, author} {
		c.send(map[string]any{"type": "subscribe", "id": "p", "collections": []string{"posts"}, "types": []string{"record.updated"}})
		c.next()
	}
	r := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "t", "body": "SECRET draft", "author": ada}, adaAuth)
	if r.Status != 201 {
		t.Fatal(r.Status)
	}
	id := r.JSON()["id"].(string)
	if r := s.Do("PATCH", "/api/collections/posts/records/"+id, map[string]any{"body": "public", "published": true}, adaAuth); r.Status != 200 {
		t.Fatal(r.Status)
	}
	raw := func(c *client) string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, b, err := c.c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if m := raw(anon); strings.Contains(m, "SECRET") || strings.Contains(m, `"previous"`) || !strings.Contains(m, `"changed":["body","published"]`) {
		t.Errorf("anonymous got %s", m)
	}
	if m := raw(author); !strings.Contains(m, `"previous"`) || !strings.Contains(m, "SECRET draft") {
		t.Errorf("the author got %s", m)
	}
}

// A subscription that resumes past the end of the log is refused with a
// reason, instead of waiting for sequences that will carry other events.
func TestAfterPastTheHead(t *testing.T) {
	s := apptest.Start(t, project)
	c := dial(t, s.URL, "")
	c.send(map[string]any{"type": "subscribe", "id": "x", "collections": []string{"notes"}, "after": s.LastSeq() + 10})
	if m := c.next(); m.Type != "error" || m.ID != "x" || m.Reason != "query.after_past_head" {
		t.Errorf("got %+v", m)
	}
}
