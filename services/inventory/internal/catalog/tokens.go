package catalog

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// The bearer tokens of the REST API. A token is shown once, when it is
// made; the inventory keeps only its SHA-256 and a short id (part of the
// token, not a secret) that listings and revocation use.

// Role is what a token may do. Each role includes the ones before it,
// except agent, which only reads what concerns its own site.
type Role string

// Token roles.
const (
	// RoleViewer reads everything.
	RoleViewer Role = "viewer"
	// RoleOperator reads everything, triggers syncs, pauses and resumes.
	RoleOperator Role = "operator"
	// RoleAdmin does everything, tokens included.
	RoleAdmin Role = "admin"
	// RoleAgent is a site-agent's token: it reads what its site concerns.
	RoleAgent Role = "agent"
)

// Roles lists every role, least powerful first.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin, RoleAgent}

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", invalidf("role %q: want viewer, operator, admin or agent", s)
}

// Token errors.
var (
	ErrTokenNotFound = fmt.Errorf("token %w", ErrNotFound)
	// ErrUnauthenticated is returned for a token that is malformed,
	// unknown or revoked; it never says which.
	ErrUnauthenticated = errors.New("unauthenticated")
)

// Token is an API token as listed: everything but the secret.
type Token struct {
	// ID is the token's public part: tokenIDLen lower-case hex digits.
	ID   string
	Name string
	Role Role
	// Site is the site of an agent token, empty for the other roles.
	Site      string
	CreatedAt time.Time
	// RevokedAt is nil while the token is accepted.
	RevokedAt *time.Time
}

// TokenRepository stores tokens by the hash of their secret.
type TokenRepository interface {
	// CreateToken stores t under hash; it fails with ErrAlreadyExists
	// when the id or hash is taken.
	CreateToken(ctx context.Context, t Token, hash string) error
	// TokenByHash returns the token whose secret hashes to hash, revoked
	// or not; ErrTokenNotFound when there is none.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// TokenByID returns a token, revoked or not, and the hash it is
	// stored under; ErrTokenNotFound when there is none.
	TokenByID(ctx context.Context, id string) (Token, string, error)
	// Tokens lists every token, revoked ones included, oldest first.
	Tokens(ctx context.Context) ([]Token, error)
	// RevokeToken sets the revocation time of a token not revoked yet
	// and returns the token; revoking it again changes nothing. It fails
	// with ErrTokenNotFound for an unknown id.
	RevokeToken(ctx context.Context, id string, at time.Time) (Token, error)
}

// Token layout: "pdt_" + id + "_" + secret, where id is tokenIDLen hex
// digits and secret is 32 random bytes in unpadded base64url.
const (
	tokenPrefix    = "pdt_"
	tokenIDLen     = 12
	tokenSecretLen = 43
	// TokenLen is the length of every token the inventory makes.
	TokenLen = len(tokenPrefix) + tokenIDLen + 1 + tokenSecretLen
	// maxTokenName bounds a token's free-text name.
	maxTokenName = 200
)

// HashToken is what the store keeps of a token: the lower-case hex of its
// SHA-256. Tokens are 256-bit random values, so a fast hash is enough. It
// is bus.ReportKey in hex, so the stored hash is the key the token's
// holder signs reports with (ReportKey).
func HashToken(token string) string {
	return hex.EncodeToString(bus.ReportKey(token))
}

// newToken makes a token and returns its id and the token itself.
func newToken() (id, token string, err error) {
	var b [6 + 32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("token: random: %w", err)
	}
	id = hex.EncodeToString(b[:6])
	return id, tokenPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[6:]), nil
}

// ValidTokenForm reports whether token has the layout of the tokens the
// inventory makes. Checked before any lookup, so that junk costs nothing.
func ValidTokenForm(token string) bool {
	if len(token) != TokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return false
	}
	id, secret, ok := strings.Cut(token[len(tokenPrefix):], "_")
	if !ok || validTokenID(id) != nil || len(secret) != tokenSecretLen {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(secret)
	return err == nil
}

func validTokenID(id string) error {
	if len(id) != tokenIDLen {
		return invalidf("token id %q: want %d hex digits", id, tokenIDLen)
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return invalidf("token id %q: want %d lower-case hex digits", id, tokenIDLen)
		}
	}
	return nil
}

// TokenRequest is what a new token is made for.
type TokenRequest struct {
	Role Role
	// Site is required for RoleAgent and refused for the other roles.
	Site string
	// Name says who or what holds the token; optional.
	Name string
}

// Validate checks r.
func (r TokenRequest) Validate() error {
	if _, err := ParseRole(string(r.Role)); err != nil {
		return err
	}
	switch {
	case r.Role == RoleAgent && r.Site == "":
		return invalidf("an agent token needs a site")
	case r.Role == RoleAgent:
		if err := checkName("site", r.Site); err != nil {
			return err
		}
	case r.Site != "":
		return invalidf("only agent tokens are bound to a site, not %s tokens", r.Role)
	}
	if len(r.Name) > maxTokenName || !utf8.ValidString(r.Name) || strings.ContainsFunc(r.Name, isControl) {
		return invalidf("token name must be UTF-8 text of at most %d bytes without control characters", maxTokenName)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// CreateToken makes a token for r and returns it with its secret, which
// is not stored and cannot be shown again.
func (s *Service) CreateToken(ctx context.Context, r TokenRequest) (Token, string, error) {
	if err := r.Validate(); err != nil {
		return Token{}, "", err
	}
	id, secret, err := newToken()
	if err != nil {
		return Token{}, "", err
	}
	t := Token{ID: id, Name: r.Name, Role: r.Role, Site: r.Site, CreatedAt: s.timestamp()}
	if err := s.repo.CreateToken(ctx, t, HashToken(secret)); err != nil {
		return Token{}, "", fmt.Errorf("create token: %w", err)
	}
	return t, secret, nil
}

// TokenFilter selects tokens; empty fields match all.
type TokenFilter struct {
	Role Role
	Site string
	// Revoked, when set, keeps the revoked tokens (true) or the live
	// ones (false).
	Revoked *bool
}

// Tokens lists the tokens f selects, revoked ones included unless f says
// otherwise, oldest first.
func (s *Service) Tokens(ctx context.Context, f TokenFilter) ([]Token, error) {
	if f.Role != "" {
		if _, err := ParseRole(string(f.Role)); err != nil {
			return nil, err
		}
	}
	if err := checkGivenNames(f.Site, ""); err != nil {
		return nil, err
	}
	ts, err := s.repo.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(ts, func(t Token) bool {
		return (f.Role != "" && t.Role != f.Role) || (f.Site != "" && t.Site != f.Site) ||
			(f.Revoked != nil && *f.Revoked != (t.RevokedAt != nil))
	}), nil
}

// RevokeToken revokes a token by id; it is refused from then on. Revoking
// a revoked token changes nothing.
func (s *Service) RevokeToken(ctx context.Context, id string) (Token, error) {
	if err := validTokenID(id); err != nil {
		return Token{}, err
	}
	t, err := s.repo.RevokeToken(ctx, id, s.timestamp())
	if err != nil {
		return Token{}, fmt.Errorf("revoke token %s: %w", id, err)
	}
	return t, nil
}

// AuditTokenCreated is the audit entry of a token's creation (never its
// secret).
func AuditTokenCreated(ctx context.Context, t Token) AuditEntry {
	return NewAuditEntry(ctx, t.CreatedAt, AuditCreate, "token", t.ID, map[string]any{"role": t.Role, "site": t.Site, "name": t.Name})
}

// AuditTokenRevoked is the audit entry of a token's revocation.
func AuditTokenRevoked(ctx context.Context, t Token, at time.Time) AuditEntry {
	return NewAuditEntry(ctx, at, AuditRevoke, "token", t.ID, map[string]any{"role": t.Role, "site": t.Site, "name": t.Name})
}

// Authenticate returns the token that secret is, if it is well formed,
// known and not revoked; otherwise an error wrapping ErrUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, secret string) (Token, error) {
	if !ValidTokenForm(secret) {
		return Token{}, fmt.Errorf("%w: malformed token", ErrUnauthenticated)
	}
	t, err := s.repo.TokenByHash(ctx, HashToken(secret))
	switch {
	case errors.Is(err, ErrTokenNotFound):
		return Token{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	case err != nil:
		return Token{}, fmt.Errorf("authenticate: %w", err)
	case t.RevokedAt != nil:
		return Token{}, fmt.Errorf("%w: token %s is revoked", ErrUnauthenticated, t.ID)
	}
	return t, nil
}

// ReportKey returns the site an agent token reports for and the key its
// reports are signed with (bus.ReportKey: the token's stored hash). It
// fails with ErrUnauthenticated for a token that is unknown, revoked or
// not an agent's.
func (s *Service) ReportKey(ctx context.Context, tokenID string) (string, []byte, error) {
	if len(tokenID) != tokenIDLen || strings.Trim(tokenID, "0123456789abcdef") != "" {
		return "", nil, fmt.Errorf("%w: report token id %.20q is malformed", ErrUnauthenticated, tokenID)
	}
	t, hash, err := s.repo.TokenByID(ctx, tokenID)
	switch {
	case errors.Is(err, ErrTokenNotFound):
		return "", nil, fmt.Errorf("%w: report signed with unknown token %s", ErrUnauthenticated, tokenID)
	case err != nil:
		return "", nil, fmt.Errorf("report token %s: %w", tokenID, err)
	case t.RevokedAt != nil:
		return "", nil, fmt.Errorf("%w: report signed with revoked token %s", ErrUnauthenticated, tokenID)
	case t.Role != RoleAgent:
		return "", nil, fmt.Errorf("%w: report signed with token %s of role %s, not an agent token", ErrUnauthenticated, tokenID, t.Role)
	}
	key, err := hex.DecodeString(hash)
	if err != nil {
		return "", nil, fmt.Errorf("report token %s: stored hash: %w", tokenID, err)
	}
	return t.Site, key, nil
}
