package auth

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
)

// apiKeyPrefix starts every API key: mk_<key id>_<secret>.
const apiKeyPrefix = "mk_"

// apiKey is a stored API key. Only the hash of its secret is kept.
type apiKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Roles     []string   `json:"roles"`
	Hash      string     `json:"hash,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	CreatedBy string     `json:"createdBy,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt"`
	revoked   bool
}

// KeyInput is a new API key.
type KeyInput struct {
	Name      string
	Roles     []string
	ExpiresAt *time.Time
}

// NewKey is a created key: the only time its secret is shown.
type NewKey struct {
	ID        string     `json:"id"`
	Key       string     `json:"key"`
	Name      string     `json:"name"`
	Roles     []string   `json:"roles"`
	ExpiresAt *time.Time `json:"expiresAt"`
}

func requireAdmin(id mantle.Identity) error {
	if id.IsAdmin() {
		return nil
	}
	if id.Anonymous() {
		return mantle.Errorf(mantle.Unauthenticated, "auth.required", "API keys are managed by administrators; sign in")
	}
	return mantle.Errorf(mantle.PermissionDenied, "policy.denied", "API keys are managed by administrators")
}

// CreateKey creates an API key (administrators only).
func (s *Service) CreateKey(ctx context.Context, by mantle.Identity, in KeyInput) (*NewKey, error) {
	if err := requireAdmin(by); err != nil {
		return nil, err
	}
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "" || len(in.Name) > 200:
		return nil, mantle.FieldError("auth.invalid_key", "a key needs a name of 1 to 200 characters", map[string]string{"name": "1 to 200 characters"})
	case in.ExpiresAt != nil && !in.ExpiresAt.After(s.cfg.Now()):
		return nil, mantle.FieldError("auth.invalid_key", "expiresAt is in the past", map[string]string{"expiresAt": "must be in the future"})
	}
	roles := []string{}
	for _, r := range in.Roles {
		if r = strings.TrimSpace(r); r == "" || len(r) > 100 {
			return nil, mantle.FieldError("auth.invalid_key", "roles must be non-empty names", map[string]string{"roles": "non-empty names"})
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	k := &apiKey{ID: mantle.NewID(), Name: in.Name, Roles: roles, CreatedAt: s.cfg.Now(), CreatedBy: by.ID, ExpiresAt: in.ExpiresAt}
	secret := randomSecret()
	k.Hash = hashSecret(secret)
	raw, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	err = s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		if err := tx.PutSecret(KindAPIKey, k.ID, raw); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]any{"key": k.ID, "name": k.Name, "roles": k.Roles, "expiresAt": k.ExpiresAt})
		return tx.Append(&eventlog.Event{Type: eventlog.AuthKeyCreated, Subject: k.ID, Actor: by.ID, Time: k.CreatedAt, Data: data})
	})
	if err != nil {
		return nil, err
	}
	s.apiKeys.Delete(k.ID)
	return &NewKey{ID: k.ID, Key: apiKeyPrefix + k.ID + "_" + secret, Name: k.Name, Roles: k.Roles, ExpiresAt: k.ExpiresAt}, nil
}

// KeyInfo describes a key without its secret.
type KeyInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Roles     []string   `json:"roles"`
	CreatedAt time.Time  `json:"createdAt"`
	CreatedBy string     `json:"createdBy,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt"`
}

// ListKeys lists the API keys, oldest first (administrators only).
func (s *Service) ListKeys(ctx context.Context, by mantle.Identity) ([]KeyInfo, error) {
	if err := requireAdmin(by); err != nil {
		return nil, err
	}
	all, err := s.eng.Secrets(ctx, KindAPIKey)
	if err != nil {
		return nil, err
	}
	out := []KeyInfo{}
	for _, raw := range all {
		var k apiKey
		if json.Unmarshal(raw, &k) == nil {
			out = append(out, KeyInfo{ID: k.ID, Name: k.Name, Roles: k.Roles, CreatedAt: k.CreatedAt, CreatedBy: k.CreatedBy, ExpiresAt: k.ExpiresAt})
		}
	}
	slices.SortFunc(out, func(a, b KeyInfo) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// DeleteKey revokes an API key at once (administrators only).
func (s *Service) DeleteKey(ctx context.Context, by mantle.Identity, id string) error {
	if err := requireAdmin(by); err != nil {
		return err
	}
	var found bool
	err := s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		var err error
		if found, err = tx.DeleteSecret(KindAPIKey, id); err != nil || !found {
			return err
		}
		data, _ := json.Marshal(map[string]string{"key": id})
		return tx.Append(&eventlog.Event{Type: eventlog.AuthKeyRevoked, Subject: id, Actor: by.ID, Time: s.cfg.Now(), Data: data})
	})
	if err != nil {
		return err
	}
	s.apiKeys.Store(id, &apiKey{ID: id, revoked: true})
	if !found {
		return mantle.Errorf(mantle.NotFound, "auth.key_not_found", "no API key %q", id)
	}
	return nil
}

var errKey = mantle.Errorf(mantle.Unauthenticated, "auth.invalid_credentials", "the API key is not valid")

// verifyAPIKey checks an API key and returns its identity: the key's id
// as auth.id and its roles.
func (s *Service) verifyAPIKey(ctx context.Context, token string) (mantle.Identity, time.Time, error) {
	var never time.Time
	rest := strings.TrimPrefix(token, apiKeyPrefix)
	if len(rest) < 28 || rest[26] != '_' || !mantle.ValidID(rest[:26]) {
		return mantle.Identity{}, never, errKey
	}
	id, secret := rest[:26], rest[27:]
	var k *apiKey
	if v, ok := s.apiKeys.Load(id); ok {
		k = v.(*apiKey)
	} else {
		raw, err := s.eng.Secret(ctx, KindAPIKey, id)
		switch {
		case mantle.ErrorCode(err) == mantle.NotFound:
			return mantle.Identity{}, never, errKey // not cached: made-up ids must not grow memory
		case err != nil:
			return mantle.Identity{}, never, err
		}
		k = new(apiKey)
		if err := json.Unmarshal(raw, k); err != nil {
			return mantle.Identity{}, never, err
		}
		s.apiKeys.Store(id, k)
	}
	switch {
	case k.revoked, !sameHash(hashSecret(secret), k.Hash):
		return mantle.Identity{}, never, errKey
	case k.ExpiresAt != nil && s.cfg.Now().After(*k.ExpiresAt):
		return mantle.Identity{}, never, mantle.Errorf(mantle.Unauthenticated, "auth.key_expired", "the API key has expired")
	case k.ExpiresAt != nil:
		return mantle.Identity{ID: k.ID, Roles: k.Roles}, *k.ExpiresAt, nil
	}
	return mantle.Identity{ID: k.ID, Roles: k.Roles}, never, nil
}
