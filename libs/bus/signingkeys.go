package bus

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"

	"github.com/nats-io/nats.go/jetstream"
)

// The signing-keys bucket holds the pack-signing public keys that
// site-agents trust: key SigningKeyID(pub), value the key in PEM (a PKIX
// "PUBLIC KEY" block, as EncodeSigningKey writes it). The inventory is its
// only writer (MirrorSigningKeys); site-agents watch it.

// ErrInvalidSigningKey marks a public key, or a key id, that is refused.
var ErrInvalidSigningKey = errors.New("invalid signing key")

// signingKeyIDLen is the number of hash bytes in a key id.
const signingKeyIDLen = 16

var signingKeyIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// SigningKeyID is the stable id (fingerprint) of a pack-signing public key:
// the lower-case hex of the first 16 bytes of the SHA-256 of the raw 32-byte
// ed25519 key. The same key always has the same id, wherever it was written
// down.
func SigningKeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:signingKeyIDLen])
}

// ValidateSigningKeyID checks the form of a key id: 32 lower-case hex digits.
func ValidateSigningKeyID(id string) error {
	if !signingKeyIDRE.MatchString(id) {
		return fmt.Errorf("%w: id %q must be 32 lower-case hex digits", ErrInvalidSigningKey, id)
	}
	return nil
}

// MaxSigningKeyPEM bounds the PEM text of one public key; an ed25519 key
// takes 113 bytes.
const MaxSigningKeyPEM = 4096

// ParseSigningKey reads exactly one ed25519 public key in PEM: one PKIX
// "PUBLIC KEY" block without headers, with nothing but white space around
// it. Anything else is refused with ErrInvalidSigningKey and a reason; the
// text itself is never quoted, in case it is a private key sent by mistake.
func ParseSigningKey(text []byte) (ed25519.PublicKey, error) {
	trimmed := bytes.TrimSpace(text)
	switch {
	case len(trimmed) == 0:
		return nil, fmt.Errorf("%w: empty, want a PEM \"PUBLIC KEY\" block", ErrInvalidSigningKey)
	case len(text) > MaxSigningKeyPEM:
		return nil, fmt.Errorf("%w: %d bytes, at most %d for one PEM public key", ErrInvalidSigningKey, len(text), MaxSigningKeyPEM)
	case !bytes.HasPrefix(trimmed, []byte("-----BEGIN ")):
		return nil, fmt.Errorf("%w: not PEM: want text starting with -----BEGIN PUBLIC KEY-----", ErrInvalidSigningKey)
	}
	b, rest := pem.Decode(trimmed)
	switch {
	case b == nil:
		return nil, fmt.Errorf("%w: the PEM block does not decode (bad base64 or END line)", ErrInvalidSigningKey)
	case bytes.Contains(bytes.ToUpper([]byte(b.Type)), []byte("PRIVATE")):
		return nil, fmt.Errorf("%w: the PEM block is a %q: send the public key only, and keep this one secret", ErrInvalidSigningKey, b.Type)
	case b.Type != "PUBLIC KEY":
		return nil, fmt.Errorf("%w: the PEM block is a %q, want \"PUBLIC KEY\"", ErrInvalidSigningKey, b.Type)
	case len(b.Headers) > 0:
		return nil, fmt.Errorf("%w: PEM headers are not allowed", ErrInvalidSigningKey)
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, fmt.Errorf("%w: text after the PEM block: want exactly one public key", ErrInvalidSigningKey)
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: not a PKIX public key: %w", ErrInvalidSigningKey, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: a %T, want an ed25519 key (pulpdist keygen makes one)", ErrInvalidSigningKey, k)
	}
	return pub, nil
}

// EncodeSigningKey renders a public key as the PEM the bucket holds.
func EncodeSigningKey(pub ed25519.PublicKey) ([]byte, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidSigningKey, len(pub), ed25519.PublicKeySize)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode signing key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// SigningKeyFromEntry checks one entry of the signing-keys bucket: its value
// must parse (ParseSigningKey) and its key must be the value's id.
func SigningKeyFromEntry(key string, value []byte) (ed25519.PublicKey, error) {
	pub, err := ParseSigningKey(value)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", key, err)
	}
	if id := SigningKeyID(pub); id != key {
		return nil, fmt.Errorf("%w: entry %s holds the key %s", ErrInvalidSigningKey, key, id)
	}
	return pub, nil
}

// MirrorSigningKeys makes the signing-keys bucket hold exactly keys (PEM
// public keys), each under its id. It first puts the keys that are missing
// or differ, then deletes the others, so a key that stays is never absent
// meanwhile. Running it again with the same keys writes nothing.
func MirrorSigningKeys(ctx context.Context, kv jetstream.KeyValue, keys [][]byte) error {
	want := make(map[string][]byte, len(keys))
	for _, k := range keys {
		pub, err := ParseSigningKey(k)
		if err != nil {
			return fmt.Errorf("mirror signing keys: %w", err)
		}
		if want[SigningKeyID(pub)], err = EncodeSigningKey(pub); err != nil {
			return fmt.Errorf("mirror signing keys: %w", err)
		}
	}
	have, err := readSigningKeys(ctx, kv)
	if err != nil {
		return err
	}
	for id, v := range want {
		if old, ok := have[id]; ok && bytes.Equal(old, v) {
			continue
		}
		if _, err := kv.Put(ctx, id, v); err != nil {
			return fmt.Errorf("mirror signing keys: put %s: %w", id, err)
		}
	}
	for id := range have {
		if _, ok := want[id]; ok {
			continue
		}
		if err := kv.Delete(ctx, id); err != nil {
			return fmt.Errorf("mirror signing keys: delete %s: %w", id, err)
		}
	}
	return nil
}

// readSigningKeys returns the current entries of the bucket, by key.
func readSigningKeys(ctx context.Context, kv jetstream.KeyValue) (map[string][]byte, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	defer func() {
		_ = w.Stop() // a read-only watch: nothing is lost if unsubscribing fails
	}()
	out := map[string][]byte{}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("read signing keys: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("read signing keys: watch closed")
			}
			if e == nil { // every current entry was delivered
				return out, nil
			}
			out[e.Key()] = e.Value()
		}
	}
}
