package httpapi

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/wire"
)

// ControlCatalog is what the update, history and control routes use.
type ControlCatalog interface {
	RunPage(ctx context.Context, f catalog.RunFilter) (catalog.Page[catalog.Run], error)
	UpdateTree(ctx context.Context, name string, p catalog.TreePatch, check func(catalog.Tree) error) (catalog.Tree, error)
	UpdateSite(ctx context.Context, name string, p catalog.SitePatch, check func(catalog.Site) error) (catalog.Site, error)
	SetPaused(ctx context.Context, f catalog.SubscriptionFilter, paused bool) ([]catalog.Subscription, error)
	TreeHistory(ctx context.Context, f catalog.VersionFilter) (catalog.Page[catalog.VersionHistory], error)
	SiteHistory(ctx context.Context, site string, f catalog.RunFilter) (catalog.Page[catalog.Run], error)
	Failing(ctx context.Context, f catalog.SubscriptionFilter) ([]catalog.Run, error)
	Alarms(ctx context.Context, f catalog.SubscriptionFilter) ([]catalog.Alarm, error)
	DryRun(ctx context.Context, site, tree string) (catalog.DryRun, error)
	Subscriptions(ctx context.Context, f catalog.SubscriptionFilter) ([]catalog.Subscription, error)
	RequestSubscriptionSync(ctx context.Context, site, tree string) (string, error)
}

// ControlEndpoints are the update, history and control operations.
type ControlEndpoints struct {
	UpdateTree  endpoint.Endpoint
	UpdateSite  endpoint.Endpoint
	TreeHistory endpoint.Endpoint
	SiteHistory endpoint.Endpoint
	Failing     endpoint.Endpoint
	Alarms      endpoint.Endpoint
	PauseSite   endpoint.Endpoint
	ResumeSite  endpoint.Endpoint
	PauseTree   endpoint.Endpoint
	ResumeTree  endpoint.Endpoint
	DryRun      endpoint.Endpoint
	// GetSubscription answers one subscription (with an ETag, as every GET).
	GetSubscription endpoint.Endpoint
	// SyncSubscription triggers a sync of one subscription.
	SyncSubscription endpoint.Endpoint
}

// update is a decoded PATCH: the name, the If-Match tags and the patch.
type update[P any] struct {
	name    string
	ifMatch string
	patch   P
}

// named is a request carrying a path name and a run list request.
type named[R any] struct {
	name string
	req  R
}

func makeControlEndpoints(c ControlCatalog) ControlEndpoints {
	pause := func(site bool, paused bool) endpoint.Endpoint {
		return typed(func(ctx context.Context, name string) ([]inventoryapi.Subscription, error) {
			f := catalog.SubscriptionFilter{Tree: name}
			if site {
				f = catalog.SubscriptionFilter{Site: name}
			}
			ss, err := c.SetPaused(ctx, f, paused)
			return wire.List(ss, wire.Subscription), err
		})
	}
	return ControlEndpoints{
		UpdateTree: typed(func(ctx context.Context, u update[catalog.TreePatch]) (tagged, error) {
			t, err := c.UpdateTree(ctx, u.name, u.patch, checkTag(u.ifMatch, wire.Tree))
			return withTag(wire.Tree(t)), err
		}),
		UpdateSite: typed(func(ctx context.Context, u update[catalog.SitePatch]) (tagged, error) {
			s, err := c.UpdateSite(ctx, u.name, u.patch, checkTag(u.ifMatch, siteSettings))
			return siteTagged(s), err
		}),
		TreeHistory: typed(func(ctx context.Context, r timeListRequest[catalog.VersionFilter]) (page, error) {
			p, err := c.TreeHistory(ctx, r.filter)
			return timePage(ctx, p, r.sort, wire.VersionHistory), err
		}),
		SiteHistory: typed(func(ctx context.Context, r named[runListRequest]) (page, error) {
			p, err := c.SiteHistory(ctx, r.name, r.req.filter)
			return timePage(ctx, p, r.req.sort, wire.Run), err
		}),
		Failing: typed(func(ctx context.Context, r listRequest[catalog.SubscriptionFilter]) (page, error) {
			rs, err := c.Failing(ctx, r.filter)
			return paginate(ctx, rs, sortTreeSit, runPlaceKey, wire.Run, r.page), err
		}),
		Alarms: typed(func(ctx context.Context, r listRequest[catalog.SubscriptionFilter]) (page, error) {
			as, err := c.Alarms(ctx, r.filter)
			return sortedPage(ctx, as, alarmSorts, r.sort, wire.Alarm, r.page), err
		}),
		PauseSite:  pause(true, true),
		ResumeSite: pause(true, false),
		PauseTree:  pause(false, true),
		ResumeTree: pause(false, false),
		GetSubscription: typed(func(ctx context.Context, s catalog.Subscription) (inventoryapi.Subscription, error) {
			ss, err := c.Subscriptions(ctx, catalog.SubscriptionFilter{Site: s.Site, Tree: s.Tree})
			if err == nil && len(ss) != 1 {
				err = fmt.Errorf("%w: %q to %q", catalog.ErrSubscriptionNotFound, s.Site, s.Tree)
			}
			if err != nil {
				return inventoryapi.Subscription{}, err
			}
			return wire.Subscription(ss[0]), nil
		}),
		SyncSubscription: typed(func(ctx context.Context, s catalog.Subscription) (inventoryapi.SyncAccepted, error) {
			id, err := c.RequestSubscriptionSync(ctx, s.Site, s.Tree)
			return inventoryapi.SyncAccepted{TriggerID: id, Tree: s.Tree, Site: s.Site}, err
		}),
		DryRun: typed(func(ctx context.Context, s catalog.Subscription) (inventoryapi.DryRun, error) {
			d, err := c.DryRun(ctx, s.Site, s.Tree)
			return wire.DryRun(d), err
		}),
	}
}

// registerControl adds the routes of e with handle (see Register).
func registerControl(handle func(string, endpoint.Endpoint, httptransport.DecodeRequestFunc, int), e ControlEndpoints) {
	handle("PATCH /api/v1/trees/{name}", e.UpdateTree, decodeTreePatch, http.StatusOK)
	handle("PATCH /api/v1/sites/{name}", e.UpdateSite, decodeSitePatch, http.StatusOK)
	handle("GET /api/v1/trees/{name}/history", e.TreeHistory, decodeVersionList, http.StatusOK)
	handle("GET /api/v1/sites/{name}/history", e.SiteHistory, decodeSiteHistory, http.StatusOK)
	handle("GET /api/v1/failing", e.Failing, decodeList(sortTreeSit, subscriptionFilter), http.StatusOK)
	handle("GET /api/v1/alarms", e.Alarms, decodeSortedList(alarmSorts, subscriptionFilter), http.StatusOK)
	handle("POST /api/v1/sites/{name}/pause", e.PauseSite, decodePathValue("name"), http.StatusOK)
	handle("POST /api/v1/sites/{name}/resume", e.ResumeSite, decodePathValue("name"), http.StatusOK)
	handle("POST /api/v1/trees/{name}/pause", e.PauseTree, decodePathValue("name"), http.StatusOK)
	handle("POST /api/v1/trees/{name}/resume", e.ResumeTree, decodePathValue("name"), http.StatusOK)
	handle("GET /api/v1/subscriptions/{site}/{tree}", e.GetSubscription, decodeSubscriptionPath, http.StatusOK)
	handle("GET /api/v1/subscriptions/{site}/{tree}/dry-run", e.DryRun, decodeSubscriptionPath, http.StatusOK)
	handle("POST /api/v1/subscriptions/{site}/{tree}/sync", e.SyncSubscription, decodeSubscriptionPath, http.StatusAccepted)
}

func decodeSubscriptionPath(_ context.Context, r *http.Request) (any, error) {
	return catalog.Subscription{Site: r.PathValue("site"), Tree: r.PathValue("tree")}, nil
}

func decodeTreePatch(_ context.Context, r *http.Request) (any, error) {
	tags, err := ifMatch(r)
	if err != nil {
		return nil, err
	}
	var in inventoryapi.TreePatch
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	p := catalog.TreePatch{
		Schedule: in.Schedule, Filters: in.Filters, Keep: in.Keep, Enabled: in.Enabled,
		Source: in.Source, Type: in.Type, MaxDeletions: in.MaxDeletions, ProtectedPaths: in.ProtectedPaths,
		SyncLatest: in.SyncLatest, CanarySites: in.CanarySites, Priority: in.Priority,
	}
	if in.AllowedLag != nil {
		d, err := catalog.ParseLag(*in.AllowedLag)
		if err != nil {
			return nil, err
		}
		p.AllowedLag = &d
	}
	return update[catalog.TreePatch]{name: r.PathValue("name"), ifMatch: tags, patch: p}, nil
}

func decodeSitePatch(_ context.Context, r *http.Request) (any, error) {
	tags, err := ifMatch(r)
	if err != nil {
		return nil, err
	}
	var in inventoryapi.SitePatch
	if err := decodeJSON(r, &in); err != nil {
		return nil, err
	}
	p := catalog.SitePatch{
		Description: in.Description, Location: in.Location, WANLink: in.WANLink,
		BandwidthLimit: in.BandwidthLimit, BandwidthWindows: in.BandwidthWindows, AgentIdentity: in.AgentIdentity,
	}
	return update[catalog.SitePatch]{name: r.PathValue("name"), ifMatch: tags, patch: p}, nil
}

func decodeSiteHistory(ctx context.Context, r *http.Request) (any, error) {
	req, err := decodeRunList(ctx, r)
	if err != nil {
		return nil, err
	}
	return named[runListRequest]{name: r.PathValue("name"), req: req.(runListRequest)}, nil
}
