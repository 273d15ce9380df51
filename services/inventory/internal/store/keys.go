package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

const signingKeyColumns = `id, name, public_key, created_at, revoked_at`

func scanSigningKey(sc interface{ Scan(...any) error }) (catalog.SigningKey, error) {
	var k catalog.SigningKey
	var created, revoked dbTime
	err := sc.Scan(&k.ID, &k.Name, &k.PublicKey, &created, &revoked)
	k.CreatedAt = created.t
	k.RevokedAt = revoked.ptr()
	return k, err
}

// signingKey reads one key; found is false when there is none.
func signingKey(ctx context.Context, q queryer, id string) (k catalog.SigningKey, found bool, err error) {
	k, err = scanSigningKey(q.QueryRowContext(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.SigningKey{}, false, nil
	}
	if err != nil {
		return catalog.SigningKey{}, false, fmt.Errorf("select signing key %s: %w", id, err)
	}
	return k, true, nil
}

// AddSigningKey implements catalog.Repository.
func (s *Store) AddSigningKey(ctx context.Context, k catalog.SigningKey) (catalog.SigningKey, bool, error) {
	var out catalog.SigningKey
	var added bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, found, err := signingKey(ctx, tx, k.ID)
		switch {
		case err != nil:
			return err
		case found && old.RevokedAt != nil:
			return fmt.Errorf("%w: key %s was revoked at %s; a revoked key cannot be added again (make a new pair with pulpdist keygen)",
				catalog.ErrAlreadyExists, k.ID, old.RevokedAt.Format(time.RFC3339))
		case found && old.Name != k.Name:
			return fmt.Errorf("%w: key %s is registered as %q", catalog.ErrAlreadyExists, k.ID, old.Name)
		case found:
			out = old
			return nil
		}
		var other string
		err = tx.QueryRowContext(ctx, `SELECT id FROM signing_keys WHERE name = $1 AND revoked_at IS NULL`, k.Name).Scan(&other)
		switch {
		case err == nil:
			return fmt.Errorf("%w: the name %q belongs to key %s (revoke it first, or choose another name)", catalog.ErrAlreadyExists, k.Name, other)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("look up signing key name %s: %w", k.Name, err)
		}
		_, err = tx.ExecContext(ctx,
			`INSERT INTO signing_keys (id, name, public_key, created_at) VALUES ($1, $2, $3, $4)`,
			k.ID, k.Name, k.PublicKey, ts(k.CreatedAt))
		switch {
		case isUnique(err): // a concurrent add of the same key or name
			return fmt.Errorf("%w: key %s or name %q was added meanwhile", catalog.ErrAlreadyExists, k.ID, k.Name)
		case err != nil:
			return fmt.Errorf("insert signing key %s: %w", k.ID, err)
		}
		out, added = k, true
		out.CreatedAt = ts(k.CreatedAt)
		out.RevokedAt = nil
		return s.record(ctx, tx, catalog.AuditKeyAdded(ctx, out), catalog.KeyEvent(bus.ActionAdded, out))
	})
	if err != nil {
		return catalog.SigningKey{}, false, err
	}
	return out, added, nil
}

// RevokeSigningKey implements catalog.Repository.
func (s *Store) RevokeSigningKey(ctx context.Context, id string, at time.Time) (catalog.SigningKey, bool, error) {
	var out catalog.SigningKey
	var revoked bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		revoked, err = setRevoked(ctx, tx, "signing_keys", id, at)
		if err != nil {
			return fmt.Errorf("revoke signing key %s: %w", id, err)
		}
		k, found, err := signingKey(ctx, tx, id)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("%w: %q", catalog.ErrSigningKeyNotFound, id)
		}
		out = k
		if revoked {
			return s.record(ctx, tx, catalog.AuditKeyRevoked(ctx, k, at), catalog.KeyEvent(bus.ActionRevoked, k))
		}
		return nil
	})
	if err != nil {
		return catalog.SigningKey{}, false, err
	}
	return out, revoked, nil
}

// SigningKeys implements catalog.Repository.
func (s *Store) SigningKeys(ctx context.Context) ([]catalog.SigningKey, error) {
	return list(ctx, s.db, "signing keys", `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, id`, nil, scanSigningKey)
}
