package wire

import (
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// Token is t on the wire, without any secret.
func Token(t catalog.Token) inventoryapi.Token {
	return inventoryapi.Token{ID: t.ID, Name: t.Name, Role: string(t.Role), Site: t.Site, CreatedAt: t.CreatedAt, RevokedAt: t.RevokedAt}
}
