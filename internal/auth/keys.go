package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
)

// KeysFile is the file in the data folder that holds the token signing
// keys. It is created on first start with mode 0600 and never belongs in a
// repository.
const KeysFile = "auth-keys.json"

// keepKeys is how many signing keys a rotation keeps: the newest signs,
// the older ones still verify tokens issued before the rotation.
const keepKeys = 3

// signingKey is one Ed25519 key with its id.
type signingKey struct {
	ID      string             `json:"kid"`
	Created time.Time          `json:"created"`
	Seed    []byte             `json:"seed"` // the private key's seed
	private ed25519.PrivateKey `json:"-"`
}

// Keyset is the signing keys: in the data folder, or in the store when
// nodes of a cluster share them (LoadStoredKeys).
type Keyset struct {
	path string                 // where they are, for messages
	save func(raw []byte) error // writes the keyset after a rotation
	mu   sync.RWMutex
	keys []*signingKey // newest first
}

// StoredKeysKind and StoredKeysKey name the secret that holds the keyset
// in the store.
const (
	StoredKeysKind = "signing_keys"
	StoredKeysKey  = "keyset"
)

// LoadStoredKeys reads the keyset kept in the store, creating one with a
// fresh key when there is none. Every node of a cluster sharing the store
// signs and verifies with the same keys; when several start at once, the
// first to store a keyset wins and the others take it.
func LoadStoredKeys(ctx context.Context, eng *engine.Engine) (*Keyset, error) {
	ks := &Keyset{path: "the store's " + StoredKeysKind + " secret", save: func(raw []byte) error {
		return eng.Transact(context.WithoutCancel(ctx), func(tx engine.SystemTx) error { return tx.PutSecret(StoredKeysKind, StoredKeysKey, raw) })
	}}
	fresh, err := newKey()
	if err != nil {
		return nil, err
	}
	first, err := encodeKeys([]*signingKey{fresh})
	if err != nil {
		return nil, err
	}
	var raw []byte
	err = eng.Transact(ctx, func(tx engine.SystemTx) error {
		var err error
		raw, err = tx.CreateSecret(StoredKeysKind, StoredKeysKey, first)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	return ks, ks.decode(raw)
}

func newKey() (*signingKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, err
	}
	return &signingKey{ID: mantle.NewID(), Created: time.Now().UTC(), Seed: seed, private: ed25519.NewKeyFromSeed(seed)}, nil
}

func encodeKeys(keys []*signingKey) ([]byte, error) {
	return json.MarshalIndent(map[string]any{"keys": keys}, "", "  ")
}

// decode takes the keys of a stored keyset.
func (ks *Keyset) decode(raw []byte) error {
	var f struct {
		Keys []*signingKey `json:"keys"`
	}
	if err := json.Unmarshal(raw, &f); err != nil || len(f.Keys) == 0 {
		return fmt.Errorf("%s is damaged; move it away to start with new keys (every session then ends)", ks.path)
	}
	for _, k := range f.Keys {
		if len(k.Seed) != ed25519.SeedSize {
			return fmt.Errorf("%s: key %q is damaged", ks.path, k.ID)
		}
		k.private = ed25519.NewKeyFromSeed(k.Seed)
	}
	ks.keys = f.Keys
	return nil
}

// LoadKeys reads the keyset of a data folder, creating one with a fresh
// key when there is none.
func LoadKeys(dataDir string) (*Keyset, error) {
	path := filepath.Join(dataDir, KeysFile)
	ks := &Keyset{path: path, save: func(raw []byte) error {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, raw, 0o600); err != nil {
			return fmt.Errorf("write signing keys: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write signing keys: %w", err)
		}
		return nil
	}}
	raw, err := os.ReadFile(ks.path)
	if errors.Is(err, os.ErrNotExist) {
		return ks, ks.Rotate()
	}
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	if err := ks.decode(raw); err != nil {
		return nil, err
	}
	return ks, nil
}

// Rotate adds a new signing key, which signs from now on, and drops keys
// beyond the newest few. Tokens signed by a dropped key stop verifying.
func (ks *Keyset) Rotate() error {
	k, err := newKey()
	if err != nil {
		return err
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	keys := append([]*signingKey{k}, ks.keys...)
	if len(keys) > keepKeys {
		keys = keys[:keepKeys]
	}
	raw, err := encodeKeys(keys)
	if err != nil {
		return err
	}
	if err := ks.save(raw); err != nil {
		return err
	}
	ks.keys = keys
	return nil
}

// current returns the key that signs.
func (ks *Keyset) current() *signingKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.keys[0]
}

// verifier returns the public key of kid, or nil.
func (ks *Keyset) verifier(kid string) ed25519.PublicKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.ID == kid {
			return k.private.Public().(ed25519.PublicKey)
		}
	}
	return nil
}

// IDs returns the key ids, newest first.
func (ks *Keyset) IDs() []string {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	ids := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		ids[i] = k.ID
	}
	return ids
}
