package rest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	sse "github.com/tmaxmax/go-sse"

	"github.com/mantlehq/mantle/internal/apptest"
)

// draftThenPublish makes a draft post with a secret body and publishes it
// with a new body. It returns the header of its author and the update's
// sequence.
func draftThenPublish(t *testing.T, s *apptest.Server) (adaAuth string, seq int64) {
	t.Helper()
	ada, adaAuth := s.User("ada@example.com")
	r := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "SECRET draft", "author": ada}, adaAuth)
	if r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	id := r.JSON()["id"].(string)
	r = s.Do("PATCH", "/api/collections/posts/records/"+id, map[string]any{"title": "Public post", "published": true}, adaAuth)
	if r.Status != 200 {
		t.Fatalf("publish: %d %s", r.Status, r.Body)
	}
	return adaAuth, s.LastSeq()
}

// updateData is the data of a record.updated event as a channel sent it.
type updateData struct {
	Record   map[string]any  `json:"record"`
	Previous json.RawMessage `json:"previous"`
	Changed  []string        `json:"changed"`
}

func checkRedacted(t *testing.T, who string, raw []byte, d updateData) {
	t.Helper()
	if strings.Contains(string(raw), "SECRET") || d.Previous != nil {
		t.Errorf("%s saw the draft: %s", who, raw)
	}
	if d.Record["title"] != "Public post" || strings.Join(d.Changed, ",") != "title,published" {
		t.Errorf("%s: record %v, changed %v; want the public state and the changed names", who, d.Record, d.Changed)
	}
}

// A reader who could not view a record before an update gets the update
// without its previous state, on the events API and the SSE stream; its
// author, who could, gets it whole.
func TestPreviousFollowsViewRule(t *testing.T) {
	s := apptest.Start(t, ruled)
	_, bobAuth := s.User("bob@example.com")
	start := s.LastSeq()
	adaAuth, seq := draftThenPublish(t, s)

	page := func(auth ...string) (raw []byte, d updateData) {
		t.Helper()
		r := s.Do("GET", "/api/events?collections=posts&types=record.updated&after="+itoa(start), nil, auth...)
		var p struct{ Events []json.RawMessage }
		if err := json.Unmarshal(r.Body, &p); err != nil || len(p.Events) != 1 {
			t.Fatalf("events: %d %s", r.Status, r.Body)
		}
		var ev struct{ Data updateData }
		json.Unmarshal(p.Events[0], &ev)
		return p.Events[0], ev.Data
	}
	raw, d := page()
	checkRedacted(t, "anonymous on /api/events", raw, d)
	raw, d = page(bobAuth)
	checkRedacted(t, "bob on /api/events", raw, d)
	if raw, d = page(adaAuth); !strings.Contains(string(d.Previous), "SECRET draft") {
		t.Errorf("the author lost the previous state: %s", raw)
	}
	if raw, d = page("admin"); !strings.Contains(string(d.Previous), "SECRET draft") {
		t.Errorf("an administrator lost the previous state: %s", raw)
	}

	// The SSE stream, with a real SSE client, anonymous and as the author.
	for _, c := range []struct {
		who     string
		headers []string
		whole   bool
	}{{"anonymous", nil, false}, {"bob", []string{"Authorization", strings.TrimPrefix(bobAuth, "Authorization: ")}, false},
		{"ada", []string{"Authorization", strings.TrimPrefix(adaAuth, "Authorization: ")}, true}} {
		raw := sseData(t, s, "types=record.updated&after="+itoa(seq-1), c.headers...)
		var ev struct{ Data updateData }
		json.Unmarshal(raw, &ev)
		if c.whole {
			if !strings.Contains(string(ev.Data.Previous), "SECRET draft") {
				t.Errorf("%s on SSE lost the previous state: %s", c.who, raw)
			}
			continue
		}
		checkRedacted(t, c.who+" on SSE", raw, ev.Data)
	}
}

// sseData returns the data of the first event of a stream.
func sseData(t *testing.T, s *apptest.Server, query string, headers ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/events/stream?"+query, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for ev, err := range sse.Read(resp.Body, nil) {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		return []byte(ev.Data)
	}
	t.Fatal("the stream ended without an event")
	return nil
}
