package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
)

// refreshPrefix starts every refresh token: mr_<session id>_<secret>.
const refreshPrefix = "mr_"

// keepSpent is how many spent refresh tokens a session remembers, to tell
// a replayed token (reuse: revoke the session) from a made-up one.
const keepSpent = 32

// session is a refresh-token family: every refresh replaces its token,
// and presenting a replaced one revokes the whole family.
type session struct {
	User      string    `json:"user"`
	Hash      string    `json:"hash"` // SHA-256 of the current token's secret
	Spent     []string  `json:"spent,omitempty"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	RevokedAt time.Time `json:"revokedAt,omitzero"`
}

func randomSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// parseRefresh splits a refresh token into session id and secret.
func parseRefresh(token string) (sid, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, refreshPrefix)
	if !ok || len(rest) < 28 || rest[26] != '_' || !mantle.ValidID(rest[:26]) {
		return "", "", false
	}
	return rest[:26], rest[27:], true
}

// newSession starts a session for a user inside tx and returns its id and
// first refresh token.
func (s *Service) newSession(tx engine.SystemTx, userID string) (sid, token string, err error) {
	sid, secret := mantle.NewID(), randomSecret()
	now := s.cfg.Now()
	raw, err := json.Marshal(session{User: userID, Hash: hashSecret(secret), Created: now, Expires: now.Add(s.cfg.RefreshTTL)})
	if err != nil {
		return "", "", err
	}
	return sid, refreshPrefix + sid + "_" + secret, tx.PutSecret(KindSession, sid, raw)
}

var errRefresh = mantle.Errorf(mantle.Unauthenticated, "auth.invalid_refresh_token", "the refresh token is not valid; sign in again")

// Refresh trades a refresh token for a new pair. The old token stops
// working; presenting it again is reuse, which revokes the session.
func (s *Service) Refresh(ctx context.Context, token string) (*Tokens, error) {
	sid, secret, ok := parseRefresh(token)
	if !ok {
		return nil, errRefresh
	}
	var (
		userID, next string
		reused       bool
	)
	err := s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		reused, next = false, ""
		raw, err := tx.Secret(KindSession, sid)
		if err != nil {
			return errRefresh
		}
		var ss session
		if err := json.Unmarshal(raw, &ss); err != nil {
			return err
		}
		now, h := s.cfg.Now(), hashSecret(secret)
		switch {
		case !ss.RevokedAt.IsZero() || now.After(ss.Expires):
			return errRefresh
		case sameHash(h, ss.Hash):
			next = randomSecret()
			ss.Spent = append(ss.Spent, ss.Hash)
			if len(ss.Spent) > keepSpent {
				ss.Spent = ss.Spent[len(ss.Spent)-keepSpent:]
			}
			ss.Hash = hashSecret(next)
		case containsHash(ss.Spent, h):
			reused = true
			ss.RevokedAt = now
			data, _ := json.Marshal(map[string]string{"user": ss.User, "session": sid})
			if err := tx.Append(&eventlog.Event{Type: eventlog.AuthRefreshReuse, Subject: ss.User, Time: now, Data: data}); err != nil {
				return err
			}
		default:
			return errRefresh
		}
		userID = ss.User
		raw, err = json.Marshal(ss)
		if err != nil {
			return err
		}
		return tx.PutSecret(KindSession, sid, raw)
	})
	if err != nil {
		return nil, err
	}
	if reused {
		s.revoke(sid, s.cfg.Now())
		return nil, mantle.Errorf(mantle.Unauthenticated, "auth.refresh_token_reused",
			"this refresh token was already used; the session is revoked, sign in again")
	}
	u, err := s.loadUser(ctx, userID)
	if err != nil {
		return nil, errRefresh
	}
	return s.tokens(u, sid, refreshPrefix+sid+"_"+next)
}

func containsHash(list []string, h string) bool {
	found := false
	for _, x := range list {
		if sameHash(x, h) {
			found = true
		}
	}
	return found
}

// Logout ends a session: its refresh token stops working at once, and so
// do access tokens issued for it.
func (s *Service) Logout(ctx context.Context, id mantle.Identity, sid string) error {
	if sid == "" {
		return nil
	}
	err := s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		raw, err := tx.Secret(KindSession, sid)
		if err != nil {
			return nil // already gone
		}
		var ss session
		if err := json.Unmarshal(raw, &ss); err != nil {
			return err
		}
		if ss.User != id.ID || !ss.RevokedAt.IsZero() {
			return nil
		}
		ss.RevokedAt = s.cfg.Now()
		if raw, err = json.Marshal(ss); err != nil {
			return err
		}
		if err := tx.PutSecret(KindSession, sid, raw); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]string{"user": id.ID, "session": sid})
		return tx.Append(&eventlog.Event{Type: eventlog.AuthLogout, Subject: id.ID, Actor: id.ID, Time: ss.RevokedAt, Data: data})
	})
	if err != nil {
		return err
	}
	s.revoke(sid, s.cfg.Now())
	return nil
}

// revoke refuses the session's access tokens from now on. Entries older
// than an access token's life are dropped meanwhile: their tokens have
// expired anyway, so the set stays as small as the recent revocations.
func (s *Service) revoke(sid string, at time.Time) {
	s.revoked.Store(sid, at)
	horizon := s.cfg.Now().Add(-s.cfg.AccessTTL - leeway)
	s.revoked.Range(func(k, v any) bool {
		if v.(time.Time).Before(horizon) {
			s.revoked.Delete(k)
		}
		return true
	})
}

// loadRevoked reads the sessions revoked recently enough that access
// tokens issued for them could still be alive.
func (s *Service) loadRevoked(ctx context.Context) error {
	all, err := s.eng.Secrets(ctx, KindSession)
	if err != nil {
		return err
	}
	horizon := s.cfg.Now().Add(-s.cfg.AccessTTL - leeway)
	for sid, raw := range all {
		var ss session
		if json.Unmarshal(raw, &ss) == nil && ss.RevokedAt.After(horizon) {
			s.revoked.Store(sid, ss.RevokedAt)
		}
	}
	return nil
}

// sweepEvery is how many sign-ins pass between two session sweeps: the
// sessions only grow with sign-ins, so sweeping in step with them bounds
// them without a timer.
const sweepEvery = 100

// signedIn counts a new session and sweeps now and then.
func (s *Service) signedIn(ctx context.Context) {
	if s.signins.Add(1)%sweepEvery == 0 {
		s.SweepSessions(ctx)
	}
}

// SweepSessions deletes the sessions nobody can use any more and returns
// how many: expired ones, and revoked ones whose access tokens have
// expired too (until then a restart must still know they are revoked).
func (s *Service) SweepSessions(ctx context.Context) (int, error) {
	all, err := s.eng.Secrets(ctx, KindSession)
	if err != nil {
		return 0, err
	}
	now := s.cfg.Now()
	horizon := now.Add(-s.cfg.AccessTTL - leeway)
	var dead []string
	for sid, raw := range all {
		var ss session
		if json.Unmarshal(raw, &ss) != nil {
			continue // not ours to judge
		}
		revokedLongAgo := !ss.RevokedAt.IsZero() && ss.RevokedAt.Before(horizon)
		if revokedLongAgo || (ss.RevokedAt.IsZero() && now.After(ss.Expires)) {
			dead = append(dead, sid)
		}
	}
	if len(dead) == 0 {
		return 0, nil
	}
	n := 0
	err = s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		n = 0
		for _, sid := range dead {
			ok, err := tx.DeleteSecret(KindSession, sid)
			if err != nil {
				return err
			}
			if ok {
				n++
			}
		}
		return nil
	})
	return n, err
}

// endSessions revokes, in tx, the live sessions of a user among sessions
// (all sessions, read before the transaction) and returns their ids.
func endSessions(tx engine.SystemTx, sessions map[string][]byte, userID string, now time.Time) ([]string, error) {
	var ended []string
	for sid, raw := range sessions {
		var ss session
		if json.Unmarshal(raw, &ss) != nil || ss.User != userID || !ss.RevokedAt.IsZero() {
			continue
		}
		ss.RevokedAt = now
		raw, _ := json.Marshal(ss)
		if err := tx.PutSecret(KindSession, sid, raw); err != nil {
			return nil, err
		}
		ended = append(ended, sid)
	}
	return ended, nil
}
