// Package httpapi is the inventory's REST transport: go-kit endpoints that
// adapt the catalog to request and response values, and the HTTP routes
// under /api/v1 that decode requests, encode the libs/inventoryapi wire
// types and map domain errors to status codes and problem+json.
package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-kit/kit/endpoint"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/wire"
)

// Catalog is what the API offers: the catalog service.
type Catalog interface {
	CreateSite(ctx context.Context, s catalog.Site) (catalog.Site, error)
	Site(ctx context.Context, name string) (catalog.Site, error)
	Sites(ctx context.Context) ([]catalog.Site, error)
	CreateTree(ctx context.Context, t catalog.Tree) (catalog.Tree, error)
	Tree(ctx context.Context, name string) (catalog.Tree, error)
	Trees(ctx context.Context) ([]catalog.Tree, error)
	Subscribe(ctx context.Context, s catalog.Subscription) (catalog.Subscription, error)
	Subscriptions(ctx context.Context, f catalog.SubscriptionFilter) ([]catalog.Subscription, error)
	TreeSubscriptions(ctx context.Context, tree string) ([]catalog.Subscription, error)
	RequestSync(ctx context.Context, r catalog.SyncRequest) (string, error)
	Versions(ctx context.Context, f catalog.VersionFilter) (catalog.Page[catalog.Version], error)
	Run(ctx context.Context, id string) (catalog.Run, error)
	Runs(ctx context.Context, f catalog.RunFilter) ([]catalog.Run, error)
	Overview(ctx context.Context, f catalog.SubscriptionFilter) ([]catalog.OverviewRow, error)
	SigningKeys(ctx context.Context) ([]catalog.SigningKey, error)
	AddSigningKey(ctx context.Context, name, publicKey string) (catalog.SigningKey, bool, error)
	RevokeSigningKey(ctx context.Context, id string) (catalog.SigningKey, error)
	TokenCatalog
	ControlCatalog
	EntityCatalog
	RemovalCatalog
}

// Endpoints are the API's operations. Requests are domain values (a name,
// a filter, a site to create); responses are inventoryapi wire values.
type Endpoints struct {
	CreateSite         endpoint.Endpoint
	ListSites          endpoint.Endpoint
	GetSite            endpoint.Endpoint
	CreateTree         endpoint.Endpoint
	ListTrees          endpoint.Endpoint
	GetTree            endpoint.Endpoint
	CreateSubscription endpoint.Endpoint
	ListSubscriptions  endpoint.Endpoint
	TreeSubscriptions  endpoint.Endpoint
	RequestSync        endpoint.Endpoint
	TreeVersions       endpoint.Endpoint
	ListRuns           endpoint.Endpoint
	GetRun             endpoint.Endpoint
	Overview           endpoint.Endpoint
	ListSigningKeys    endpoint.Endpoint
	AddSigningKey      endpoint.Endpoint
	RevokeSigningKey   endpoint.Endpoint
	ListTokens         endpoint.Endpoint
	CreateToken        endpoint.Endpoint
	RevokeToken        endpoint.Endpoint
	ControlEndpoints
	EntityEndpoints
	RemovalEndpoints
}

// noRequest is the request of operations that take none.
type noRequest struct{}

// addedKey answers POST /api/v1/keys: the key, with 201 when it was added
// and 200 when it was there already (httptransport.StatusCoder).
type addedKey struct {
	inventoryapi.SigningKey
	added bool
}

// StatusCode is the HTTP status of the answer.
func (a addedKey) StatusCode() int {
	if a.added {
		return http.StatusCreated
	}
	return http.StatusOK
}

// MakeEndpoints adapts c.
func MakeEndpoints(c Catalog) Endpoints {
	return Endpoints{
		CreateSite: typed(func(ctx context.Context, s catalog.Site) (inventoryapi.Site, error) {
			s, err := c.CreateSite(ctx, s)
			return wire.Site(s), err
		}),
		ListSites: typed(func(ctx context.Context, r listRequest[noRequest]) (page, error) {
			ss, err := c.Sites(ctx)
			return paginate(ctx, ss, sortName, siteKey, wire.Site, r.page), err
		}),
		GetSite: typed(func(ctx context.Context, name string) (tagged, error) {
			s, err := c.Site(ctx, name)
			return siteTagged(s), err
		}),
		CreateTree: typed(func(ctx context.Context, t catalog.Tree) (inventoryapi.Tree, error) {
			t, err := c.CreateTree(ctx, t)
			return wire.Tree(t), err
		}),
		ListTrees: typed(func(ctx context.Context, r listRequest[noRequest]) (page, error) {
			ts, err := c.Trees(ctx)
			return paginate(ctx, ts, sortName, treeKey, wire.Tree, r.page), err
		}),
		GetTree: typed(func(ctx context.Context, name string) (inventoryapi.Tree, error) {
			t, err := c.Tree(ctx, name)
			return wire.Tree(t), err
		}),
		CreateSubscription: typed(func(ctx context.Context, s catalog.Subscription) (inventoryapi.Subscription, error) {
			s, err := c.Subscribe(ctx, s)
			return wire.Subscription(s), err
		}),
		ListSubscriptions: typed(func(ctx context.Context, r listRequest[catalog.SubscriptionFilter]) (page, error) {
			ss, err := c.Subscriptions(ctx, r.filter)
			return paginate(ctx, ss, sortTreeSit, subscriptionKey, wire.Subscription, r.page), err
		}),
		TreeSubscriptions: typed(func(ctx context.Context, r listRequest[string]) (page, error) {
			ss, err := c.TreeSubscriptions(ctx, r.filter)
			return paginate(ctx, ss, sortTreeSit, subscriptionKey, wire.Subscription, r.page), err
		}),
		RequestSync: typed(func(ctx context.Context, r catalog.SyncRequest) (inventoryapi.SyncAccepted, error) {
			id, err := c.RequestSync(ctx, r)
			return inventoryapi.SyncAccepted{TriggerID: id, Tree: r.Tree}, err
		}),
		TreeVersions: typed(func(ctx context.Context, r timeListRequest[catalog.VersionFilter]) (page, error) {
			p, err := c.Versions(ctx, r.filter)
			return timePage(ctx, p, r.sort, wire.Version), err
		}),
		ListRuns: typed(func(ctx context.Context, r runListRequest) (page, error) {
			p, err := c.RunPage(ctx, r.filter)
			return timePage(ctx, p, r.sort, wire.Run), err
		}),
		GetRun: typed(func(ctx context.Context, id string) (inventoryapi.Run, error) {
			r, err := c.Run(ctx, id)
			return wire.Run(r), err
		}),
		Overview: typed(func(ctx context.Context, r listRequest[catalog.SubscriptionFilter]) (page, error) {
			rows, err := c.Overview(ctx, r.filter)
			return sortedPage(ctx, rows, overviewSorts, r.sort, wire.OverviewRow, r.page), err
		}),
		ListSigningKeys: typed(func(ctx context.Context, _ noRequest) ([]inventoryapi.SigningKey, error) {
			ks, err := c.SigningKeys(ctx)
			return wire.List(ks, wire.SigningKey), err
		}),
		AddSigningKey: typed(func(ctx context.Context, in inventoryapi.SigningKeyCreate) (addedKey, error) {
			k, added, err := c.AddSigningKey(ctx, in.Name, in.PublicKey)
			return addedKey{SigningKey: wire.SigningKey(k), added: added}, err
		}),
		RevokeSigningKey: typed(func(ctx context.Context, id string) (inventoryapi.SigningKey, error) {
			k, err := c.RevokeSigningKey(ctx, id)
			return wire.SigningKey(k), err
		}),
		ListTokens:  listTokens(c),
		CreateToken: createToken(c),
		RevokeToken: revokeToken(c),

		ControlEndpoints: makeControlEndpoints(c),
		EntityEndpoints:  makeEntityEndpoints(c),
		RemovalEndpoints: makeRemovalEndpoints(c),
	}
}

// typed turns a typed operation into a go-kit endpoint. A failed
// operation has no response: errors travel alone.
func typed[Req, Resp any](f func(context.Context, Req) (Resp, error)) endpoint.Endpoint {
	return func(ctx context.Context, request any) (any, error) {
		req, ok := request.(Req)
		if !ok {
			return nil, fmt.Errorf("endpoint: request is %T, want %T", request, *new(Req))
		}
		resp, err := f(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp, nil
	}
}
