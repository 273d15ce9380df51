package httpapi

import (
	"context"
	"net/http"
	"net/url"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/wire"
)

// EntityCatalog is what the audit, delta and problem routes use.
type EntityCatalog interface {
	AuditLog(ctx context.Context, f catalog.AuditFilter) (catalog.Page[catalog.AuditEntry], error)
	Deltas(ctx context.Context, f catalog.DeltaFilter) (catalog.Page[catalog.Delta], error)
	Problems(ctx context.Context, f catalog.ProblemFilter) (catalog.Page[catalog.EventProblem], error)
}

// EntityEndpoints are the audit log, delta and problem lists.
type EntityEndpoints struct {
	AuditLog endpoint.Endpoint
	Deltas   endpoint.Endpoint
	Problems endpoint.Endpoint
}

func makeEntityEndpoints(c EntityCatalog) EntityEndpoints {
	return EntityEndpoints{
		AuditLog: typed(func(ctx context.Context, r timeListRequest[catalog.AuditFilter]) (page, error) {
			p, err := c.AuditLog(ctx, r.filter)
			return timePage(ctx, p, r.sort, wire.AuditEntry), err
		}),
		Deltas: typed(func(ctx context.Context, r timeListRequest[catalog.DeltaFilter]) (page, error) {
			p, err := c.Deltas(ctx, r.filter)
			return timePage(ctx, p, r.sort, wire.Delta), err
		}),
		Problems: typed(func(ctx context.Context, r timeListRequest[catalog.ProblemFilter]) (page, error) {
			p, err := c.Problems(ctx, r.filter)
			return timePage(ctx, p, r.sort, wire.EventProblem), err
		}),
	}
}

// registerEntities adds the routes of e with handle (see Register).
func registerEntities(handle func(string, endpoint.Endpoint, httptransport.DecodeRequestFunc, int), e EntityEndpoints) {
	handle("GET /api/v1/audit", e.AuditLog, decodeAuditFilter, http.StatusOK)
	handle("GET /api/v1/deltas", e.Deltas, decodeDeltaFilter, http.StatusOK)
	handle("GET /api/v1/problems", e.Problems, decodeProblemFilter, http.StatusOK)
}

func decodeAuditFilter(_ context.Context, r *http.Request) (any, error) {
	return decodeTimeList(r, "at", func(q url.Values, rg catalog.Range, limit int) catalog.AuditFilter {
		return catalog.AuditFilter{Entity: q.Get("entity"), Name: q.Get("name"), Action: q.Get("action"), Actor: q.Get("actor"), Range: rg, Limit: limit}
	})
}

func decodeDeltaFilter(_ context.Context, r *http.Request) (any, error) {
	return decodeTimeList(r, "first_seen_at", func(q url.Values, rg catalog.Range, limit int) catalog.DeltaFilter {
		return catalog.DeltaFilter{Tree: q.Get("tree"), Range: rg, Limit: limit}
	})
}

func decodeProblemFilter(_ context.Context, r *http.Request) (any, error) {
	return decodeTimeList(r, "received_at", func(q url.Values, rg catalog.Range, limit int) catalog.ProblemFilter {
		return catalog.ProblemFilter{Type: q.Get("type"), Range: rg, Limit: limit}
	})
}

// siteFromWire is the site a create request asks for; read-only fields
// (last_heartbeat, created_at) are ignored.
func siteFromWire(in inventoryapi.Site) catalog.Site {
	return catalog.Site{
		Name: in.Name, Description: in.Description, Location: in.Location, WANLink: in.WANLink,
		BandwidthLimit: in.BandwidthLimit, BandwidthWindows: in.BandwidthWindows, AgentIdentity: in.AgentIdentity,
	}
}

// treeFromWire is the tree a create request asks for: keep 0 and an
// absent type or allowed_lag mean the defaults, absent enabled means true;
// created_at is ignored.
func treeFromWire(in inventoryapi.Tree) (catalog.Tree, error) {
	t := catalog.Tree{
		Name: in.Name, OriginSite: in.OriginSite, Source: in.Source, Schedule: in.Schedule, Filters: in.Filters, Keep: in.Keep,
		Type: in.Type, MaxDeletions: in.MaxDeletions, ProtectedPaths: in.ProtectedPaths,
		SyncLatest: in.SyncLatest, CanarySites: in.CanarySites, Priority: in.Priority,
		Disabled: in.Enabled != nil && !*in.Enabled,
	}
	if in.AllowedLag != "" {
		d, err := catalog.ParseLag(in.AllowedLag)
		if err != nil {
			return catalog.Tree{}, err
		}
		t.AllowedLag = d
	}
	return t, nil
}
