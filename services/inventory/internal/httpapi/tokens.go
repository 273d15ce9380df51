package httpapi

import (
	"context"
	"net/http"

	"github.com/go-kit/kit/endpoint"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/wire"
)

// TokenCatalog makes, lists and revokes API tokens: the catalog.
type TokenCatalog interface {
	CreateToken(ctx context.Context, r catalog.TokenRequest) (catalog.Token, string, error)
	Tokens(ctx context.Context) ([]catalog.Token, error)
	RevokeToken(ctx context.Context, id string) (catalog.Token, error)
}

func decodeTokenCreate(_ context.Context, r *http.Request) (any, error) {
	var in inventoryapi.TokenCreate
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	return catalog.TokenRequest{Role: catalog.Role(in.Role), Site: in.Site, Name: in.Name}, nil
}

func listTokens(c TokenCatalog) endpoint.Endpoint {
	return typed(func(ctx context.Context, _ noRequest) ([]inventoryapi.Token, error) {
		ts, err := c.Tokens(ctx)
		return wire.List(ts, wire.Token), err
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
