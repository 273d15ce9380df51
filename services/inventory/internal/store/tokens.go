package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

const tokenColumns = `id, name, role, site, created_at, revoked_at`

func scanToken(sc interface{ Scan(...any) error }) (catalog.Token, error) {
	var t catalog.Token
	var role string
	var created, revoked dbTime
	err := sc.Scan(&t.ID, &t.Name, &role, &t.Site, &created, &revoked)
	t.Role = catalog.Role(role)
	t.CreatedAt = created.t
	t.RevokedAt = revoked.ptr()
	return t, err
}

// CreateToken implements catalog.Repository.
func (s *Store) CreateToken(ctx context.Context, t catalog.Token, hash string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO api_tokens (id, hash, name, role, site, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			t.ID, hash, t.Name, string(t.Role), t.Site, ts(t.CreatedAt))
		switch {
		case isUnique(err):
			return fmt.Errorf("%w: token %s", catalog.ErrAlreadyExists, t.ID)
		case err != nil:
			return fmt.Errorf("insert token %s: %w", t.ID, err)
		}
		return audit(ctx, tx, catalog.AuditTokenCreated(ctx, t))
	})
}

// TokenByHash implements catalog.Repository.
func (s *Store) TokenByHash(ctx context.Context, hash string) (catalog.Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = $1`, hash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return catalog.Token{}, catalog.ErrTokenNotFound
	case err != nil:
		return catalog.Token{}, unavailable(fmt.Errorf("select token: %w", err))
	}
	return t, nil
}

// TokenByID implements catalog.Repository.
func (s *Store) TokenByID(ctx context.Context, id string) (catalog.Token, string, error) {
	var hash string
	t, err := scanToken(rowWith(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+`, hash FROM api_tokens WHERE id = $1`, id), &hash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return catalog.Token{}, "", catalog.ErrTokenNotFound
	case err != nil:
		return catalog.Token{}, "", unavailable(fmt.Errorf("select token %s: %w", id, err))
	}
	return t, hash, nil
}

// rowWith scans a row whose last columns go to extra, after those the
// scanner it is given reads.
func rowWith(r *sql.Row, extra ...any) interface{ Scan(...any) error } {
	return scanFunc(func(dest ...any) error { return r.Scan(append(dest, extra...)...) })
}

type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// Tokens implements catalog.Repository.
func (s *Store) Tokens(ctx context.Context) ([]catalog.Token, error) {
	return list(ctx, s.db, "tokens", `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at, id`, nil, scanToken)
}

// RevokeToken implements catalog.Repository.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) (catalog.Token, error) {
	var out catalog.Token
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		revoked, err := setRevoked(ctx, tx, "api_tokens", id, at)
		if err != nil {
			return fmt.Errorf("revoke token %s: %w", id, err)
		}
		t, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = $1`, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("%w: %q", catalog.ErrTokenNotFound, id)
		case err != nil:
			return fmt.Errorf("select token %s: %w", id, err)
		}
		out = t
		if revoked {
			return audit(ctx, tx, catalog.AuditTokenRevoked(ctx, t, at))
		}
		return nil
	})
	if err != nil {
		return catalog.Token{}, err
	}
	return out, nil
}

// setRevoked marks row id of table revoked at at, unless it already is,
// and reports whether it changed the row.
func setRevoked(ctx context.Context, tx *sql.Tx, table, id string, at time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL`, id, ts(at))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n > 0, nil
}
