package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/wire"
)

// RemovalCatalog is what the DELETE routes use.
type RemovalCatalog interface {
	DeleteTree(ctx context.Context, name string, check func(catalog.Tree) error) (catalog.Removed[catalog.Tree], error)
	DeleteSite(ctx context.Context, name string, check func(catalog.Site) error) (catalog.Removed[catalog.Site], error)
	DeleteSubscription(ctx context.Context, site, tree string, check func(catalog.Subscription) error) (catalog.Removed[catalog.Subscription], error)
}

// RemovalEndpoints delete trees, sites and subscriptions.
type RemovalEndpoints struct {
	DeleteTree         endpoint.Endpoint
	DeleteSite         endpoint.Endpoint
	DeleteSubscription endpoint.Endpoint
}

// deletion is a decoded DELETE: what to delete and the If-Match tags,
// "" when the request has none (a DELETE may be unconditional).
type deletion struct {
	site, tree string
	ifMatch    string
}

// optionalTag is checkTag when the request gave If-Match, no check when
// it did not.
func optionalTag[T, W any](ifMatch string, conv func(T) W) func(T) error {
	if ifMatch == "" {
		return nil
	}
	return checkTag(ifMatch, conv)
}

func makeRemovalEndpoints(c RemovalCatalog) RemovalEndpoints {
	return RemovalEndpoints{
		DeleteTree: typed(func(ctx context.Context, d deletion) (inventoryapi.Deletion, error) {
			r, err := c.DeleteTree(ctx, d.tree, optionalTag(d.ifMatch, wire.Tree))
			return inventoryapi.Deletion{Entity: "tree", Name: r.Entity.Name, Removed: r.Also}, err
		}),
		DeleteSite: typed(func(ctx context.Context, d deletion) (inventoryapi.Deletion, error) {
			r, err := c.DeleteSite(ctx, d.site, optionalTag(d.ifMatch, siteSettings))
			return inventoryapi.Deletion{Entity: "site", Name: r.Entity.Name, Removed: r.Also}, err
		}),
		DeleteSubscription: typed(func(ctx context.Context, d deletion) (inventoryapi.Deletion, error) {
			r, err := c.DeleteSubscription(ctx, d.site, d.tree, optionalTag(d.ifMatch, wire.Subscription))
			return inventoryapi.Deletion{Entity: "subscription", Name: r.Entity.Site + "/" + r.Entity.Tree, Removed: r.Also}, err
		}),
	}
}

// registerRemovals adds the routes of e with handle (see Register).
func registerRemovals(handle func(string, endpoint.Endpoint, httptransport.DecodeRequestFunc, int), e RemovalEndpoints) {
	handle("DELETE /api/v1/trees/{name}", e.DeleteTree, decodeDeletion("", "name"), http.StatusOK)
	handle("DELETE /api/v1/sites/{name}", e.DeleteSite, decodeDeletion("name", ""), http.StatusOK)
	handle("DELETE /api/v1/subscriptions/{site}/{tree}", e.DeleteSubscription, decodeDeletion("site", "tree"), http.StatusOK)
}

// decodeDeletion reads the names from the path values site and tree
// (each unless "") and the If-Match header, if any.
func decodeDeletion(site, tree string) httptransport.DecodeRequestFunc {
	return func(_ context.Context, r *http.Request) (any, error) {
		var d deletion
		if site != "" {
			d.site = r.PathValue(site)
		}
		if tree != "" {
			d.tree = r.PathValue(tree)
		}
		d.ifMatch = strings.Join(r.Header.Values("If-Match"), ",")
		if strings.TrimSpace(d.ifMatch) == "" {
			d.ifMatch = ""
		}
		return d, nil
	}
}
