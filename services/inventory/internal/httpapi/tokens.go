package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-kit/kit/endpoint"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/wire"
)

// TokenCatalog makes, lists and revokes API tokens: the catalog.
type TokenCatalog interface {
	CreateToken(ctx context.Context, r catalog.TokenRequest) (catalog.Token, string, error)
	Tokens(ctx context.Context, f catalog.TokenFilter) ([]catalog.Token, error)
	RevokeToken(ctx context.Context, id string) (catalog.Token, error)
}

func decodeTokenCreate(_ context.Context, r *http.Request) (any, error) {
	var in inventoryapi.TokenCreate
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	return catalog.TokenRequest{Role: catalog.Role(in.Role), Site: in.Site, Name: in.Name}, nil
}

// decodeTokenFilter reads ?role=, ?site= and ?revoked= (true or false).
func decodeTokenFilter(r *http.Request) (catalog.TokenFilter, error) {
	q := r.URL.Query()
	f := catalog.TokenFilter{Role: catalog.Role(q.Get("role")), Site: q.Get("site")}
	if s := q.Get("revoked"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return f, fmt.Errorf("%w: revoked %q: want true or false", errMalformed, s)
		}
		f.Revoked = &b
	}
	return f, nil
}

// sortTokens is the order of the token list: oldest first.
const sortTokens = "created_at,id"

// tokenListKey writes the creation time with every digit, so that keys
// compare as the times do.
func tokenListKey(t catalog.Token) []string {
	return []string{t.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000000Z"), t.ID}
}

func listTokens(c TokenCatalog) endpoint.Endpoint {
	return typed(func(ctx context.Context, r listRequest[catalog.TokenFilter]) (page, error) {
		ts, err := c.Tokens(ctx, r.filter)
		return paginate(ctx, ts, sortTokens, tokenListKey, wire.Token, r.page), err
	})
}

func createToken(c TokenCatalog) endpoint.Endpoint {
	return typed(func(ctx context.Context, r catalog.TokenRequest) (inventoryapi.TokenCreated, error) {
		t, secret, err := c.CreateToken(ctx, r)
		return inventoryapi.TokenCreated{Token: wire.Token(t), Secret: secret}, err
	})
}

func revokeToken(c TokenCatalog) endpoint.Endpoint {
	return typed(func(ctx context.Context, id string) (inventoryapi.Token, error) {
		t, err := c.RevokeToken(ctx, id)
		return wire.Token(t), err
	})
}
