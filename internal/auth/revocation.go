package auth

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
)

// Revocation follows the log. Logout, a reused refresh token, a revoked
// API key, a change of a user's roles or password, a linked identity and
// a deleted user are events; Observe applies them on every node that
// follows the log, before the hub shows any later event to a subscriber.
// So a credential stops working on every node at the same point of the
// log, and every stream that carries it (SSE, WebSocket, Kafka) ends
// before it delivers an event that comes after its revocation.

// watcher is a stream's hold on a credential.
type watcher struct {
	cred  Credential
	once  sync.Once
	done  chan struct{}
	timer *time.Timer
}

func (w *watcher) fire() { w.once.Do(func() { close(w.done) }) }

type watchers struct {
	mu  sync.Mutex
	set map[*watcher]struct{}
}

// Watch returns a channel that is closed when the credential stops being
// valid: it expires, or is revoked (on any node). Streams end then. stop
// releases the watch. An anonymous credential never ends (nil channel).
func (s *Service) Watch(cred Credential) (done <-chan struct{}, stop func()) {
	if cred.Kind == "" {
		return nil, func() {}
	}
	w := &watcher{cred: cred, done: make(chan struct{})}
	s.watching.mu.Lock()
	if s.watching.set == nil {
		s.watching.set = map[*watcher]struct{}{}
	}
	s.watching.set[w] = struct{}{}
	s.watching.mu.Unlock()
	if !cred.Expires.IsZero() {
		w.timer = time.AfterFunc(time.Until(cred.Expires), w.fire)
	}
	if s.void(cred) { // revoked between authentication and the watch
		w.fire()
	}
	return w.done, func() {
		s.watching.mu.Lock()
		delete(s.watching.set, w)
		s.watching.mu.Unlock()
		if w.timer != nil {
			w.timer.Stop()
		}
	}
}

// void reports whether a credential was revoked since it was checked.
func (s *Service) void(c Credential) bool {
	switch c.Kind {
	case "user":
		if _, gone := s.revoked.Load(c.Session); gone && c.Session != "" {
			return true
		}
		return s.stale(c.Subject, c.Issued)
	case "apikey":
		v, ok := s.apiKeys.Load(c.Subject)
		return ok && v.(*apiKey).revoked
	}
	return false
}

// stale reports whether a user's credential issued at issued predates a
// change to the user's roles, password or account.
func (s *Service) stale(user string, issued time.Time) bool {
	v, ok := s.epochs.Load(user)
	return ok && issued.Before(v.(time.Time))
}

// end fires the watchers that match.
func (s *Service) end(match func(Credential) bool) {
	s.watching.mu.Lock()
	defer s.watching.mu.Unlock()
	for w := range s.watching.set {
		if match(w.cred) {
			w.fire()
		}
	}
}

// setEpoch voids the user's credentials issued before at. Epochs older
// than an access token's life are dropped meanwhile: every token they
// could void has expired.
func (s *Service) setEpoch(user string, at time.Time) {
	if v, ok := s.epochs.Load(user); ok && !at.After(v.(time.Time)) {
		return
	}
	s.epochs.Store(user, at)
	horizon := s.cfg.Now().Add(-s.cfg.AccessTTL - leeway)
	s.epochs.Range(func(k, v any) bool {
		if v.(time.Time).Before(horizon) {
			s.epochs.Delete(k)
		}
		return true
	})
}

// Observe applies the auth events of a batch of committed events; the hub
// calls it (internal/eventlog.Hub.Observe) before it publishes them. It
// runs on the store's writer or the cluster follower, so it is cheap for
// every other event: one comparison of the type.
func (s *Service) Observe(evs []*eventlog.Event) {
	for _, ev := range evs {
		switch ev.Type {
		case eventlog.AuthLogout, eventlog.AuthRefreshReuse:
			var d struct{ Session string }
			if json.Unmarshal(ev.Data, &d) == nil && d.Session != "" {
				s.revoke(d.Session, ev.Time)
				s.end(func(c Credential) bool { return c.Kind == "user" && c.Session == d.Session })
			}
		case eventlog.AuthKeyRevoked:
			var d struct{ Key string }
			if json.Unmarshal(ev.Data, &d) == nil && d.Key != "" {
				s.apiKeys.Store(d.Key, &apiKey{ID: d.Key, revoked: true})
				s.end(func(c Credential) bool { return c.Kind == "apikey" && c.Subject == d.Key })
			}
		case eventlog.AuthRolesChanged, eventlog.AuthPasswordChanged, eventlog.AuthIdentityLinked:
			s.voidUser(ev.Subject, ev.Time)
		case eventlog.RecordDeleted:
			if ev.Collection == schema.UsersCollection {
				s.voidUser(ev.Subject, ev.Time)
			}
		}
	}
}

func (s *Service) voidUser(user string, at time.Time) {
	if user == "" {
		return
	}
	at = at.Truncate(time.Millisecond) // as engine.KindUserEpoch keeps it
	s.setEpoch(user, at)
	s.end(func(c Credential) bool { return c.Kind == "user" && c.Subject == user && c.Issued.Before(at) })
}

// loadEpochs reads the users whose credentials were voided recently
// enough that access tokens issued before could still be alive.
func (s *Service) loadEpochs(ctx context.Context) error {
	all, err := s.eng.Secrets(ctx, engine.KindUserEpoch)
	if err != nil {
		return err
	}
	horizon := s.cfg.Now().Add(-s.cfg.AccessTTL - leeway)
	for user, raw := range all {
		if at, err := time.Parse(time.RFC3339Nano, string(raw)); err == nil && at.After(horizon) {
			s.setEpoch(user, at)
		}
	}
	return nil
}
