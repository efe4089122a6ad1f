package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// sealKey derives a key for sealing (AES-256-GCM) from a signing key's
// seed, for one purpose: the seed never encrypts anything itself, and a
// key for one purpose opens nothing sealed for another.
func sealKey(seed []byte, purpose string) ([]byte, error) {
	return hkdf.Key(sha256.New, seed, nil, "mantle seal "+purpose, 32)
}

// seal encrypts and authenticates plain with the current signing key's
// derived key, as URL-safe base64 text: nonce, then ciphertext and tag.
// Every node of a cluster shares the keyset, so any of them can open it.
func (ks *Keyset) seal(purpose string, plain []byte) (string, error) {
	key, err := sealKey(ks.current().Seed, purpose)
	if err != nil {
		return "", err
	}
	aead, err := newGCM(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, []byte(purpose))), nil
}

var errSealed = errors.New("not sealed by this server, or altered")

// open reverses seal with any key of the keyset (a rotation does not break
// what the previous key sealed).
func (ks *Keyset) open(purpose, text string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(text)
	if err != nil {
		return nil, errSealed
	}
	ks.mu.RLock()
	seeds := make([][]byte, len(ks.keys))
	for i, k := range ks.keys {
		seeds[i] = k.Seed
	}
	ks.mu.RUnlock()
	for _, seed := range seeds {
		key, err := sealKey(seed, purpose)
		if err != nil {
			return nil, err
		}
		aead, err := newGCM(key)
		if err != nil {
			return nil, err
		}
		if len(raw) < aead.NonceSize() {
			return nil, errSealed
		}
		if plain, err := aead.Open(nil, raw[:aead.NonceSize()], raw[aead.NonceSize():], []byte(purpose)); err == nil {
			return plain, nil
		}
	}
	return nil, errSealed
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
