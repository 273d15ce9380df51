package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// Anonymous is the actor of a change whose context names none.
const Anonymous = "anonymous"

// Audited actions.
const (
	AuditCreate  = "create"
	AuditUpdate  = "update"
	AuditDelete  = "delete"
	AuditTrigger = "trigger"
	AuditPause   = "pause"
	AuditResume  = "resume"
	AuditRevoke  = "revoke"
)

// Audit log limits.
const (
	DefaultAuditLimit = 100
	MaxAuditLimit     = 1000
)

// AuditEntry is one change in the audit log: who did what to which
// entity, when, with a JSON summary of the change.
type AuditEntry struct {
	// ID is a UUIDv7: entries of one instant sort in the order made.
	ID     string
	At     time.Time
	Actor  string
	Action string
	// Entity is "site", "tree", "subscription", "key"…; Name names it
	// ("paris", "docs", "paris/docs", a key id).
	Entity string
	Name   string
	// Summary is a JSON object describing the change.
	Summary string
}

type actorKey struct{}

// WithActor returns ctx carrying the actor of the changes made with it:
// the authentication layer calls it with the token's name or id.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom is the actor WithActor put in ctx, or Anonymous.
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return Anonymous
}

// NewAuditEntry describes a change made at at by the actor of ctx. The
// repository writes it in the transaction of the change. summary is
// encoded as JSON; a summary that does not encode is recorded as an
// error message, so that the change is still audited.
func NewAuditEntry(ctx context.Context, at time.Time, action, entity, name string, summary any) AuditEntry {
	b, err := json.Marshal(summary)
	if err != nil || string(b) == "null" {
		b, _ = json.Marshal(map[string]string{"error": fmt.Sprintf("summary not encoded: %v", err)}) // a map of strings always encodes
	}
	id, err := uuid.NewV7()
	if err != nil { // the random source failed; a v4 id still identifies the entry
		id = uuid.New()
	}
	return AuditEntry{
		ID: id.String(), At: at.UTC().Truncate(time.Microsecond), Actor: ActorFrom(ctx),
		Action: action, Entity: entity, Name: name, Summary: string(b),
	}
}

// The summaries below are what the audit log records of each change:
// the fields a reader needs to know what was set, in the API's names.

// AuditSiteCreated is the audit entry of a site's creation.
func AuditSiteCreated(ctx context.Context, s Site) AuditEntry {
	return NewAuditEntry(ctx, s.CreatedAt, AuditCreate, "site", s.Name, siteSummary(s))
}

// AuditSiteUpdated is the audit entry of a site's update at at: its
// settings after the change.
func AuditSiteUpdated(ctx context.Context, at time.Time, s Site) AuditEntry {
	return NewAuditEntry(ctx, at, AuditUpdate, "site", s.Name, siteSummary(s))
}

func siteSummary(s Site) map[string]any {
	return map[string]any{
		"description": s.Description, "location": s.Location, "wan_link": s.WANLink,
		"bandwidth_limit": s.BandwidthLimit, "bandwidth_windows": s.BandwidthWindows, "agent_identity": s.AgentIdentity,
	}
}

// AuditTreeCreated is the audit entry of a tree's creation.
func AuditTreeCreated(ctx context.Context, t Tree) AuditEntry {
	return NewAuditEntry(ctx, t.CreatedAt, AuditCreate, "tree", t.Name, treeSummary(t))
}

// AuditTreeUpdated is the audit entry of a tree's update at at: its
// settings after the change.
func AuditTreeUpdated(ctx context.Context, at time.Time, t Tree) AuditEntry {
	return NewAuditEntry(ctx, at, AuditUpdate, "tree", t.Name, treeSummary(t))
}

func treeSummary(t Tree) map[string]any {
	return map[string]any{
		"origin_site": t.OriginSite, "source": t.Source, "schedule": t.Schedule, "filters": t.Filters,
		"keep": t.Keep, "type": t.Type, "max_deletions": t.MaxDeletions, "protected_paths": t.ProtectedPaths,
		"sync_latest": t.SyncLatest, "canary_sites": t.CanarySites, "priority": t.Priority,
		"enabled": !t.Disabled, "allowed_lag": FormatLag(t.AllowedLag),
	}
}

// AuditDeleted is the audit entry of a deletion at at, with the counts
// of the dependent records that went with it.
func AuditDeleted(ctx context.Context, at time.Time, entity, name string, removed map[string]int64) AuditEntry {
	return NewAuditEntry(ctx, at, AuditDelete, entity, name, map[string]any{"removed": removed})
}

// AuditSubscribed is the audit entry of a subscription's creation.
func AuditSubscribed(ctx context.Context, s Subscription) AuditEntry {
	return NewAuditEntry(ctx, s.CreatedAt, AuditCreate, "subscription", s.Site+"/"+s.Tree,
		map[string]any{"site": s.Site, "tree": s.Tree, "paused": s.Paused})
}

// AuditKeyAdded is the audit entry of a signing key's registration.
func AuditKeyAdded(ctx context.Context, k SigningKey) AuditEntry {
	return NewAuditEntry(ctx, k.CreatedAt, AuditCreate, "key", k.ID, map[string]any{"name": k.Name})
}

// AuditKeyRevoked is the audit entry of a signing key's revocation.
func AuditKeyRevoked(ctx context.Context, k SigningKey, at time.Time) AuditEntry {
	return NewAuditEntry(ctx, at, AuditRevoke, "key", k.ID, map[string]any{"name": k.Name})
}

// AuditSyncRequested is the audit entry of a manual sync request.
func AuditSyncRequested(ctx context.Context, t bus.Trigger) AuditEntry {
	detail := map[string]any{"trigger_id": t.TriggerID, "reason": t.Reason}
	if t.ConfirmDeletions {
		detail["confirm_deletions"] = true
	}
	return NewAuditEntry(ctx, t.RequestedAt, AuditTrigger, "tree", t.Tree, detail)
}

// AuditFilter selects audit entries, newest first; empty fields match
// all.
type AuditFilter struct {
	// Entity is "site", "tree", "subscription", "key" or "token"; Name
	// the one entity ("paris", "paris/docs").
	Entity, Name string
	Action       string
	Actor        string
	Range
	Limit int
}

// AuditLog lists one page of the audit log. Limit 0 means
// DefaultAuditLimit.
func (s *Service) AuditLog(ctx context.Context, f AuditFilter) (Page[AuditEntry], error) {
	for _, v := range [][2]string{{"entity", f.Entity}, {"name", f.Name}, {"action", f.Action}, {"actor", f.Actor}} {
		if err := checkText(v[0], v[1]); err != nil {
			return Page[AuditEntry]{}, err
		}
	}
	p, err := pageOf(ctx, f.Range, f.Limit, DefaultAuditLimit, MaxAuditLimit,
		func(ctx context.Context, n int) ([]AuditEntry, error) { f.Limit = n; return s.repo.AuditLog(ctx, f) },
		func(e AuditEntry) TimeKey { return TimeKey{At: e.At, ID: e.ID} })
	return p, wrapList("audit log", err)
}
