package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/go-kit/kit/endpoint"
	httptransport "github.com/go-kit/kit/transport/http"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
	"github.com/pulpdist/pulpdist/services/inventory/internal/wire"
)

// EntityCatalog is what the audit, delta and problem routes use.
type EntityCatalog interface {
	AuditLog(ctx context.Context, f catalog.AuditFilter) ([]catalog.AuditEntry, error)
	Deltas(ctx context.Context, f catalog.DeltaFilter) ([]catalog.Delta, error)
	Problems(ctx context.Context, f catalog.ProblemFilter) ([]catalog.EventProblem, error)
}

// EntityEndpoints are the audit log, delta and problem lists.
type EntityEndpoints struct {
	AuditLog endpoint.Endpoint
	Deltas   endpoint.Endpoint
	Problems endpoint.Endpoint
}

func makeEntityEndpoints(c EntityCatalog) EntityEndpoints {
	return EntityEndpoints{
		AuditLog: typed(func(ctx context.Context, f catalog.AuditFilter) ([]inventoryapi.AuditEntry, error) {
			es, err := c.AuditLog(ctx, f)
			return wire.List(es, wire.AuditEntry), err
		}),
		Deltas: typed(func(ctx context.Context, f catalog.DeltaFilter) ([]inventoryapi.Delta, error) {
			ds, err := c.Deltas(ctx, f)
			return wire.List(ds, wire.Delta), err
		}),
		Problems: typed(func(ctx context.Context, f catalog.ProblemFilter) ([]inventoryapi.EventProblem, error) {
			ps, err := c.Problems(ctx, f)
			return wire.List(ps, wire.EventProblem), err
		}),
	}
}

// registerEntities adds the routes of e with handle (see Register).
func registerEntities(handle func(string, endpoint.Endpoint, httptransport.DecodeRequestFunc, int), e EntityEndpoints) {
	handle("GET /api/v1/audit", e.AuditLog, decodeAuditFilter, http.StatusOK)
	handle("GET /api/v1/deltas", e.Deltas, decodeDeltaFilter, http.StatusOK)
	handle("GET /api/v1/problems", e.Problems, decodeProblemFilter, http.StatusOK)
}

// queryLimit reads ?limit=; 0 when absent (the catalog's default).
func queryLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%w: limit %q is not a positive integer", errMalformed, s)
	}
	return n, nil
}

func decodeAuditFilter(_ context.Context, r *http.Request) (any, error) {
	n, err := queryLimit(r)
	return catalog.AuditFilter{Limit: n}, err
}

func decodeDeltaFilter(_ context.Context, r *http.Request) (any, error) {
	n, err := queryLimit(r)
	return catalog.DeltaFilter{Tree: r.URL.Query().Get("tree"), Limit: n}, err
}

func decodeProblemFilter(_ context.Context, r *http.Request) (any, error) {
	n, err := queryLimit(r)
	return catalog.ProblemFilter{Limit: n}, err
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
