package inventoryapi

import (
	"context"
	"encoding/json"
	"time"
)

// AuditEntry is one change in GET /api/v1/audit: who did what to which
// entity, and when.
type AuditEntry struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
	// Actor is the name of the API token that made the change, or
	// "anonymous".
	Actor string `json:"actor"`
	// Action is create, update, delete, trigger, pause, resume or revoke.
	Action string `json:"action"`
	// Entity is site, tree, subscription or key; Name names it.
	Entity string `json:"entity"`
	Name   string `json:"name"`
	// Summary describes the change: the fields set, in this API's names.
	Summary json.RawMessage `json:"summary"`
}

// Delta is one entry of GET /api/v1/deltas: a pack turning version From
// of a tree into To, as the delta-cache announced it.
type Delta struct {
	Tree string `json:"tree"`
	// From is absent for the pack from an empty tree.
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	Pack string `json:"pack,omitempty"`
	Size int64  `json:"size"`
	// ComputedAt and ComputedBy (the delta-cache instance) are absent for
	// a pack only seen as ready.
	ComputedAt  *time.Time `json:"computed_at,omitempty"`
	ComputedBy  string     `json:"computed_by,omitempty"`
	ComputeMS   int64      `json:"compute_ms"`
	FirstSeenAt time.Time  `json:"first_seen_at"`
	// TimesServed counts the completed runs that applied the pack.
	TimesServed int64 `json:"times_served"`
}

// EventProblem is one entry of GET /api/v1/problems: a bus event the
// inventory kept but could not apply, such as one about an unknown tree.
type EventProblem struct {
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	Subject    string    `json:"subject,omitempty"`
	Reason     string    `json:"reason"`
	ReceivedAt time.Time `json:"received_at"`
}

// AuditLog lists the newest audit entries (limit 0: the server's
// default): the first page of AuditPage.
func (c *Client) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	out, _, err := c.AuditPage(ctx, AuditQuery{TimeQuery: TimeQuery{Limit: limit}})
	return out, err
}

// Deltas lists the deltas the inventory knows, newest first, optionally
// of one tree: the first page of DeltaPage.
func (c *Client) Deltas(ctx context.Context, tree string, limit int) ([]Delta, error) {
	out, _, err := c.DeltaPage(ctx, DeltaQuery{Tree: tree, TimeQuery: TimeQuery{Limit: limit}})
	return out, err
}

// Problems lists the events kept as problems, newest first: the first
// page of ProblemPage.
func (c *Client) Problems(ctx context.Context, limit int) ([]EventProblem, error) {
	out, _, err := c.ProblemPage(ctx, ProblemQuery{TimeQuery: TimeQuery{Limit: limit}})
	return out, err
}
