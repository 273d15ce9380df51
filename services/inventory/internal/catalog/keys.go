package catalog

import (
	"context"
	"fmt"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// The pack-signing keys. The inventory holds them, and publishes the ones
// not revoked on the bus (Notifier.TrustSigningKeys), where every
// site-agent follows them. Every change is stored first, then published:
// when publishing fails the call fails too, and calling it again (which
// changes nothing more) publishes again.

// ParseSigningKey checks a public key as sent by a client (one PEM "PUBLIC
// KEY" block holding an ed25519 key) and returns its id and canonical PEM.
func ParseSigningKey(text string) (id, canonical string, err error) {
	pub, err := bus.ParseSigningKey([]byte(text))
	if err != nil {
		return "", "", fmt.Errorf("%w: public_key: %w", ErrInvalid, err)
	}
	pem, err := bus.EncodeSigningKey(pub)
	if err != nil {
		return "", "", fmt.Errorf("%w: public_key: %w", ErrInvalid, err)
	}
	return bus.SigningKeyID(pub), string(pem), nil
}

// AddSigningKey registers a public key (PEM) under a name and makes
// site-agents trust it. It returns the key as stored and whether it was
// added now: adding a key again under the same name changes nothing.
func (s *Service) AddSigningKey(ctx context.Context, name, publicKey string) (SigningKey, bool, error) {
	if err := checkName("key", name); err != nil {
		return SigningKey{}, false, err
	}
	id, pem, err := ParseSigningKey(publicKey)
	if err != nil {
		return SigningKey{}, false, err
	}
	k, added, err := s.repo.AddSigningKey(ctx, SigningKey{ID: id, Name: name, PublicKey: pem, CreatedAt: s.timestamp()})
	if err != nil {
		return SigningKey{}, false, fmt.Errorf("add signing key %s: %w", id, err)
	}
	// Published even when nothing changed: a retry after a failed
	// publication publishes it.
	if err := s.PublishSigningKeys(ctx); err != nil {
		return SigningKey{}, false, fmt.Errorf("signing key %s is stored but site-agents may not trust it yet (add it again to retry): %w", id, err)
	}
	return k, added, nil
}

// RevokeSigningKey revokes a key: site-agents stop trusting it. Revoking a
// revoked key changes nothing.
func (s *Service) RevokeSigningKey(ctx context.Context, id string) (SigningKey, error) {
	if err := bus.ValidateSigningKeyID(id); err != nil {
		return SigningKey{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	k, _, err := s.repo.RevokeSigningKey(ctx, id, s.timestamp())
	if err != nil {
		return SigningKey{}, fmt.Errorf("revoke signing key %s: %w", id, err)
	}
	if err := s.PublishSigningKeys(ctx); err != nil {
		return SigningKey{}, fmt.Errorf("signing key %s is revoked but site-agents may still trust it (revoke it again to retry): %w", id, err)
	}
	return k, nil
}

// SigningKeys lists every key, revoked ones included, oldest first.
func (s *Service) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	return s.repo.SigningKeys(ctx)
}

// PublishSigningKeys publishes the keys that are not revoked as the set
// site-agents trust. The inventory calls it at start, after every change
// and now and then, so that a failed publication or a set changed behind
// its back is repaired.
func (s *Service) PublishSigningKeys(ctx context.Context) error {
	s.trustMu.Lock()
	defer s.trustMu.Unlock()
	all, err := s.repo.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("publish signing keys: %w", err)
	}
	trusted := make([]SigningKey, 0, len(all))
	for _, k := range all {
		if k.RevokedAt == nil {
			trusted = append(trusted, k)
		}
	}
	if err := s.notify.TrustSigningKeys(ctx, trusted); err != nil {
		return fmt.Errorf("publish signing keys: %w", err)
	}
	return nil
}
