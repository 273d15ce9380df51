package inventoryapi

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Token roles.
const (
	RoleViewer   = "viewer"
	RoleOperator = "operator"
	RoleAdmin    = "admin"
	RoleAgent    = "agent"
)

// Token is an API token as listed: its secret is shown only once, in
// TokenCreated.
type Token struct {
	// ID is the token's public part (12 hex digits), also found inside
	// the token itself.
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Role is viewer, operator, admin or agent.
	Role string `json:"role"`
	// Site is the site of an agent token.
	Site      string     `json:"site,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// TokenCreate is the body of POST /api/v1/tokens.
type TokenCreate struct {
	Role string `json:"role"`
	// Site is required for the agent role and refused for the others.
	Site string `json:"site,omitempty"`
	Name string `json:"name,omitempty"`
}

// TokenCreated answers POST /api/v1/tokens: the token and, once, its secret.
type TokenCreated struct {
	Token
	// Secret is the bearer token itself; the inventory keeps only its hash.
	Secret string `json:"token"`
}

// WithToken returns a copy of c that sends token as its bearer token
// ("Authorization: Bearer <token>"); an empty token sends none.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// Tokens lists every API token, revoked ones included, oldest first.
func (c *Client) Tokens(ctx context.Context) ([]Token, error) { return c.TokensOf(ctx, TokenQuery{}) }

// TokenQuery selects tokens; empty fields match all.
type TokenQuery struct {
	Role, Site string
	// Live keeps only the tokens not revoked.
	Live bool
}

// TokensOf lists the tokens q selects, oldest first.
func (c *Client) TokensOf(ctx context.Context, q TokenQuery) ([]Token, error) {
	v := setGiven(url.Values{}, [2]string{"role", q.Role}, [2]string{"site", q.Site})
	if q.Live {
		v.Set("revoked", "false")
	}
	path := "/api/v1/tokens"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []Token
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// CreateToken makes a token; the answer holds its secret, shown only once.
func (c *Client) CreateToken(ctx context.Context, t TokenCreate) (TokenCreated, error) {
	var out TokenCreated
	return out, c.do(ctx, http.MethodPost, "/api/v1/tokens", t, &out)
}

// RevokeToken revokes a token by id; the inventory refuses it from then on.
func (c *Client) RevokeToken(ctx context.Context, id string) (Token, error) {
	var out Token
	return out, c.do(ctx, http.MethodPost, "/api/v1/tokens/"+url.PathEscape(id)+"/revoke", nil, &out)
}
