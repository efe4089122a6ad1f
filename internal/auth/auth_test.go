package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store/sqlite"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q does not carry the documented parameters", h)
	}
	h2, _ := HashPassword("correct horse")
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct hors": false, "Correct horse": false, "": false} {
		if ok, err := VerifyPassword(h, pw); ok != want || err != nil {
			t.Errorf("verify %q: %v %v", pw, ok, err)
		}
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=99999999,t=2,p=1$AA$AA", "$argon2id$v=19$m=1,t=1,p=1$!!$AA"} {
		if ok, err := VerifyPassword(bad, "x"); ok || err == nil {
			t.Errorf("verify against %q: %v %v", bad, ok, err)
		}
	}
}

// clock is a settable time for the tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newService(t *testing.T, c *clock) (*Service, *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng, err := engine.New(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Apply(ctx, &schema.Schema{Name: "t", Collections: []*schema.Collection{schema.BuiltinUsers()}}, engine.SafeOnly); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ctx, eng, keys, Config{Now: c.now, AccessTTL: time.Minute, RefreshTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s, eng
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, _ := newService(t, c)
	if _, err := s.CreateUser(ctx, "ada@example.com", "correct horse", nil); err != nil {
		t.Fatal(err)
	}
	tok, err := s.Login(ctx, "ada@example.com", "correct horse", "")
	if err != nil {
		t.Fatal(err)
	}
	admin := mantle.Identity{ID: "root", Roles: []string{"admin"}}
	exp := c.t.Add(2 * time.Minute)
	key, err := s.CreateKey(ctx, admin, KeyInput{Name: "short", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	check := func(what, header, reason string) {
		t.Helper()
		_, _, err := s.Authenticate(ctx, header)
		got := ""
		if me := mantle.AsError(err); me != nil {
			got = me.Reason
		}
		if got != reason {
			t.Errorf("%s: %q (%v), want %q", what, got, err, reason)
		}
	}
	check("fresh token", "Bearer "+tok.AccessToken, "")
	check("fresh key", "Bearer "+key.Key, "")
	c.t = c.t.Add(time.Minute + 6*time.Second) // past exp and the leeway
	check("expired token (cached verification)", "Bearer "+tok.AccessToken, "auth.token_expired")
	c.t = c.t.Add(time.Minute)
	check("expired key", "Bearer "+key.Key, "auth.key_expired")
	if _, err := s.Refresh(ctx, tok.RefreshToken); err != nil {
		t.Errorf("refresh within the session's life: %v", err)
	}
	c.t = c.t.Add(2 * time.Hour)
	if _, err := s.Login(ctx, "ada@example.com", "correct horse", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(ctx, tok.RefreshToken); mantle.AsError(err) == nil {
		t.Error("a refresh token outlived its session")
	}
}

// A revocation survives a restart: the server reloads the sessions
// revoked while their access tokens could still be alive.
func TestRevocationSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Now().UTC()}
	s, eng := newService(t, c)
	s.CreateUser(ctx, "ada@example.com", "correct horse", nil)
	tok, _ := s.Login(ctx, "ada@example.com", "correct horse", "")
	id, cred, err := s.Authenticate(ctx, "Bearer "+tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Logout(ctx, id, cred.Session); err != nil {
		t.Fatal(err)
	}
	again, err := New(ctx, eng, s.keys, s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := again.Authenticate(ctx, "Bearer "+tok.AccessToken); mantle.ErrorCode(err) != mantle.Unauthenticated {
		t.Errorf("after a restart the signed-out token is %v", err)
	}
}

func BenchmarkVerifyPassword(b *testing.B) {
	h, _ := HashPassword("correct horse")
	for b.Loop() {
		VerifyPassword(h, "correct horse")
	}
}

// Dead sessions are swept: expired ones, and revoked ones once their
// access tokens have expired too; live and recently revoked ones stay.
func TestSweepSessions(t *testing.T) {
	ctx := context.Background()
	c := &clock{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, eng := newService(t, c) // access 1 min, refresh 1 h
	if _, err := s.CreateUser(ctx, "ada@example.com", "correct horse", nil); err != nil {
		t.Fatal(err)
	}
	login := func() *Tokens {
		t.Helper()
		tok, err := s.Login(ctx, "ada@example.com", "correct horse", "")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	logout := func(tok *Tokens) {
		t.Helper()
		id, cred, err := s.Authenticate(ctx, "Bearer "+tok.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Logout(ctx, id, cred.Session); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		all, err := eng.Secrets(ctx, KindSession)
		if err != nil {
			t.Fatal(err)
		}
		return len(all)
	}
	expiring := login() // will expire
	logout(login())     // revoked long ago, by the time of the sweep
	c.t = c.t.Add(59*time.Minute + 30*time.Second)
	logout(login())                 // revoked recently
	live := login()                 // live
	c.t = c.t.Add(31 * time.Second) // the first session has expired
	if count() != 4 {
		t.Fatalf("%d sessions before the sweep", count())
	}
	n, err := s.SweepSessions(ctx)
	if err != nil || n != 2 {
		t.Fatalf("swept %d (%v), want the expired and the long-revoked session", n, err)
	}
	if _, err := s.Refresh(ctx, expiring.RefreshToken); mantle.AsError(err) == nil {
		t.Error("a swept session still refreshes")
	}
	if _, err := s.Refresh(ctx, live.RefreshToken); err != nil {
		t.Errorf("the live session was swept: %v", err)
	}
	if count() != 2 {
		t.Errorf("%d sessions after the sweep, want 2", count())
	}
}
