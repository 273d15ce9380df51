// Package wire converts the catalog's domain values to the inventory's
// wire types (libs/inventoryapi), which both the REST API and the
// catalog's bus events carry.
package wire

import (
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// Site is s on the wire.
func Site(s catalog.Site) inventoryapi.Site {
	return inventoryapi.Site{
		Name: s.Name, Description: s.Description, Location: s.Location, WANLink: s.WANLink,
		BandwidthLimit: s.BandwidthLimit, BandwidthWindows: s.BandwidthWindows, AgentIdentity: s.AgentIdentity,
		LastHeartbeat: s.LastHeartbeat, Paused: s.Paused, CreatedAt: s.CreatedAt,
	}
}

// Tree is t on the wire.
func Tree(t catalog.Tree) inventoryapi.Tree {
	enabled := !t.Disabled
	return inventoryapi.Tree{
		Name: t.Name, OriginSite: t.OriginSite, Source: t.Source, Schedule: t.Schedule, Filters: t.Filters, Keep: t.Keep,
		Type: t.Type, MaxDeletions: t.MaxDeletions, ProtectedPaths: t.ProtectedPaths, Enabled: &enabled,
		SyncLatest: t.SyncLatest, CanarySites: t.CanarySites, Priority: t.Priority,
		AllowedLag: catalog.FormatLag(t.AllowedLag), Paused: t.Paused, CreatedAt: t.CreatedAt,
	}
}

// Subscription is s on the wire.
func Subscription(s catalog.Subscription) inventoryapi.Subscription {
	return inventoryapi.Subscription{Site: s.Site, Tree: s.Tree, Paused: s.Paused, CreatedAt: s.CreatedAt}
}

// Run is r on the wire.
func Run(r catalog.Run) inventoryapi.Run {
	return inventoryapi.Run{
		ID: r.ID, TriggerID: r.TriggerID, Site: r.Site, Tree: r.Tree, Kind: r.Kind, From: r.From, To: r.To,
		State: r.State, Result: r.Result, Error: r.Error, Files: r.Files, Bytes: r.Bytes, DurationMS: r.DurationMS,
		StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
	}
}

// Version is v on the wire.
func Version(v catalog.Version) inventoryapi.Version {
	return inventoryapi.Version{Tree: v.Tree, Root: v.Root, Site: v.Site, Files: v.Files, Bytes: v.Bytes, PublishedAt: v.PublishedAt}
}

// OverviewRow is o on the wire.
func OverviewRow(o catalog.OverviewRow) inventoryapi.OverviewRow {
	return inventoryapi.OverviewRow{
		Site: o.Site, Tree: o.Tree, Role: o.Role, Paused: o.Paused, Version: o.Version, LatestVersion: o.LatestVersion,
		State: o.State, LastRunAt: o.LastRunAt, LagSeconds: o.LagSeconds,
		VersionsBehind: o.VersionsBehind, BehindSince: o.BehindSince, LastResult: o.LastResult, NextRunAt: o.NextRunAt,
	}
}

// SigningKey is k on the wire.
func SigningKey(k catalog.SigningKey) inventoryapi.SigningKey {
	return inventoryapi.SigningKey{ID: k.ID, Name: k.Name, PublicKey: k.PublicKey, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

// List converts every element of in with f; never nil, so that JSON
// encodes an empty list as [].
func List[D, W any](in []D, f func(D) W) []W {
	out := make([]W, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}
