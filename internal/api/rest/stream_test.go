package rest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/mantlehq/mantle/internal/apptest"
)

type streamEvent struct {
	id, typ string
	seq     int64
	title   string
}

// subscribe opens an SSE stream with a real SSE client and returns a
// channel of its events. The stream ends when the test does.
func subscribe(t *testing.T, s *apptest.Server, query string, headers ...string) <-chan streamEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/events/stream?"+query, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan streamEvent, 1000)
	go func() {
		defer resp.Body.Close()
		defer close(out)
		for ev, err := range sse.Read(resp.Body, nil) {
			if err != nil {
				return
			}
			var ce struct {
				Seq  int64
				Data struct{ Record struct{ Title string } }
			}
			json.Unmarshal([]byte(ev.Data), &ce)
			out <- streamEvent{id: ev.LastEventID, typ: ev.Type, seq: ce.Seq, title: ce.Data.Record.Title}
		}
	}()
	return out
}

func next(t *testing.T, ch <-chan streamEvent) streamEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return streamEvent{}
}

func TestStreamLiveAndResume(t *testing.T) {
	s := apptest.Start(t, blog)
	start := s.LastSeq()
	ch := subscribe(t, s, "collections=posts&after="+strconv.FormatInt(start, 10))
	for i := 0; i < 5; i++ {
		s.Do("POST", "/api/collections/posts/records", fmt.Sprintf(`{"title":"p%d"}`, i))
		s.Do("POST", "/api/collections/people/records", `{"name":"x"}`) // not subscribed
	}
	var lastID string
	for i := 0; i < 5; i++ {
		ev := next(t, ch)
		if ev.typ != "record.created" || ev.title != fmt.Sprintf("p%d", i) || ev.id != strconv.FormatInt(ev.seq, 10) {
			t.Fatalf("event %d: %+v", i, ev)
		}
		if i == 2 {
			lastID = ev.id
		}
	}
	// Reconnect after the third event: the fourth and fifth come again, then the live tail.
	ch2 := subscribe(t, s, "collections=posts", "Last-Event-ID", lastID)
	for i := 3; i < 5; i++ {
		if ev := next(t, ch2); ev.title != fmt.Sprintf("p%d", i) {
			t.Fatalf("resumed event: %+v, want p%d", ev, i)
		}
	}
	s.Do("POST", "/api/collections/posts/records", `{"title":"live"}`)
	if ev := next(t, ch2); ev.title != "live" {
		t.Fatalf("live after resume: %+v", ev)
	}
}

func TestStreamFilterAndRules(t *testing.T) {
	s := apptest.Start(t, blog)
	anon := subscribe(t, s, "filter="+`views%20%3E%2010`)
	admin := subscribe(t, s, "collections=secrets", "Authorization", "Bearer "+apptest.AdminToken)
	s.Do("POST", "/api/collections/secrets/records", `{"value":"s"}`, "admin")
	s.Do("POST", "/api/collections/posts/records", `{"title":"low","views":1}`)
	s.Do("POST", "/api/collections/posts/records", `{"title":"high","views":50}`)
	if ev := next(t, anon); ev.title != "high" {
		t.Fatalf("anonymous filtered stream got %+v, want only 'high'", ev)
	}
	if ev := next(t, admin); ev.typ != "record.created" || ev.seq == 0 {
		t.Fatalf("admin stream: %+v", ev)
	}
	r := s.Do("GET", "/api/events/stream?filter=nope%20%3E%201", nil)
	if r.Status != 400 {
		t.Errorf("bad stream filter: %d", r.Status)
	}
}

func TestStreamHistoryFromStore(t *testing.T) {
	s := apptest.Start(t, blog)
	for i := 0; i < 3; i++ {
		s.Do("POST", "/api/collections/posts/records", fmt.Sprintf(`{"title":"h%d"}`, i))
	}
	s.Close()
	s2 := apptest.StartDir(t, s.Dir, s.Data) // a fresh hub: history must come from the store
	ch := subscribe(t, s2, "collections=posts")
	for i := 0; i < 3; i++ {
		if ev := next(t, ch); ev.title != fmt.Sprintf("h%d", i) {
			t.Fatalf("history event %d: %+v", i, ev)
		}
	}
	s2.Do("POST", "/api/collections/posts/records", `{"title":"after"}`)
	if ev := next(t, ch); ev.title != "after" {
		t.Fatalf("live: %+v", ev)
	}
}

// TestStreamHeartbeat checks that an idle stream sends comment lines.
func TestStreamHeartbeat(t *testing.T) {
	s := apptest.Start(t, blog)
	hs := httptest.NewServer(s.App.HandlerWith(20 * time.Millisecond))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", hs.URL+"/api/events/stream?collections=posts", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	beats := 0
	for beats < 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if line == ": heartbeat\n" {
			beats++
		}
	}
}

// A resume point past the end of the log is an error on the events API
// and the stream, not silence: the consumer's cursor came from another
// log, or this one was restored.
func TestAfterPastTheHead(t *testing.T) {
	s := apptest.Start(t, blog)
	head := s.LastSeq()
	r := s.Do("GET", "/api/events?after="+strconv.FormatInt(head+5, 10), nil, "admin")
	apptest.CheckProblem(t, r, "invalid", "query.after_past_head", nil)
	r = s.Do("GET", "/api/events/stream?after="+strconv.FormatInt(head+1, 10), nil, "admin")
	apptest.CheckProblem(t, r, "invalid", "query.after_past_head", nil)
	r = s.Do("GET", "/api/events/stream", nil, "admin", "Last-Event-ID: "+strconv.FormatInt(head+1, 10))
	apptest.CheckProblem(t, r, "invalid", "query.after_past_head", nil)
	if r := s.Do("GET", "/api/events?after="+strconv.FormatInt(head, 10), nil, "admin"); r.Status != 200 {
		t.Errorf("after = the head: %d %s", r.Status, r.Body)
	}
}
