package rest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/apptest"
)

// sseLines follows a stream and sends its event names ("event: x" lines)
// until it ends; the channel is closed then.
func sseLines(t *testing.T, url, query, token string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/events/stream?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", resp, err)
	}
	out := make(chan string, 100)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				out <- ev
			}
		}
	}()
	return out
}

// received takes the next events of a stream and checks their names.
func received(t *testing.T, ch <-chan string, want ...string) {
	t.Helper()
	for _, w := range want {
		if got, ok := <-ch; !ok || got != w {
			t.Fatalf("the stream sent %q (open %v), want %q", got, ok, w)
		}
	}
}

// ended waits for the stream to end and returns the events it got.
func ended(t *testing.T, ch <-chan string) []string {
	t.Helper()
	var got []string
	for ev := range ch {
		got = append(got, ev)
	}
	return got
}

func comment(t *testing.T, s *apptest.Server, post string) {
	t.Helper()
	if r := s.Do("POST", "/api/collections/comments/records", map[string]any{"post": post}, "admin"); r.Status != 201 {
		t.Fatalf("comment: %d %s", r.Status, r.Body)
	}
}

// A stream ends when its credential is revoked, before it delivers any
// event that comes after the revocation: logout, a revoked API key, a
// change of the user's roles, an expired key.
func TestStreamsEndWithTheirCredential(t *testing.T) {
	s := apptest.Start(t, ruled)
	post := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "p", "published": true}, "admin").JSON()["id"].(string)
	since := "collections=comments&after=" + itoa(s.LastSeq())

	_, adaAuth := s.User("ada@example.com")
	ada := strings.TrimPrefix(adaAuth, "Authorization: Bearer ")
	stream := sseLines(t, s.URL, since, ada)
	comment(t, s, post)
	received(t, stream, "record.created") // delivered while the session lives
	if r := s.Do("POST", "/api/auth/logout", nil, adaAuth); r.Status != 204 {
		t.Fatal(r.Status)
	}
	comment(t, s, post) // after the logout: never delivered
	if got := ended(t, stream); strings.Join(got, ",") != "auth.revoked" {
		t.Errorf("after logout the stream got %v", got)
	}
	if r := s.Do("GET", "/api/auth/me", nil, adaAuth); r.Status != 401 {
		t.Errorf("the logged-out token: %d", r.Status)
	}

	// A revoked API key.
	kr := s.Do("POST", "/api/keys", map[string]any{"name": "reader", "roles": []string{"reader"}}, "admin").JSON()
	stream = sseLines(t, s.URL, since, kr["key"].(string))
	received(t, stream, "record.created", "record.created") // the history, while the key is valid
	if r := s.Do("DELETE", "/api/keys/"+kr["id"].(string), nil, "admin"); r.Status != 204 {
		t.Fatal(r.Status)
	}
	comment(t, s, post)
	if got := ended(t, stream); strings.Join(got, ",") != "auth.revoked" {
		t.Errorf("after the key's revocation the stream got %v", got)
	}

	// A change of the user's roles: tokens issued before are void; a
	// refresh brings the new roles.
	bob, _ := s.User("bob@example.com")
	bobAccess, bobRefresh := s.Login("bob@example.com", "password-bob@example.com")
	stream = sseLines(t, s.URL, "collections=posts&after="+itoa(s.LastSeq()), bobAccess)
	if r := s.Do("PATCH", "/api/collections/users/records/"+bob, map[string]any{"roles": []string{"editor"}}, "admin"); r.Status != 200 {
		t.Fatal(r.Status, string(r.Body))
	}
	if got := ended(t, stream); strings.Join(got, ",") != "auth.revoked" {
		t.Errorf("after the role change the stream got %v", got)
	}
	r := s.Do("GET", "/api/auth/me", nil, bearer(bobAccess))
	apptest.CheckProblem(t, r, "unauthenticated", "auth.token_stale", nil)
	rr := s.Do("POST", "/api/auth/refresh", map[string]string{"refreshToken": bobRefresh})
	var pair struct{ AccessToken string }
	json.Unmarshal(rr.Body, &pair)
	if me := s.Do("GET", "/api/auth/me", nil, bearer(pair.AccessToken)); me.Status != 200 || !strings.Contains(string(me.Body), `"editor"`) {
		t.Errorf("after a refresh: %d %s", me.Status, me.Body)
	}

	// An API key that expires ends its stream when it does.
	exp := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	kr = s.Do("POST", "/api/keys", map[string]any{"name": "brief", "roles": []string{"reader"}, "expiresAt": exp}, "admin").JSON()
	if got := ended(t, sseLines(t, s.URL, "collections=comments&after="+itoa(s.LastSeq()), kr["key"].(string))); strings.Join(got, ",") != "auth.revoked" {
		t.Errorf("the expiring key's stream got %v", got)
	}
}
