package inventoryapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
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

// limitQuery is "?limit=N", or "" for the server's default (limit 0).
func limitQuery(q url.Values, limit int) string {
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// AuditLog lists the newest audit entries (limit 0: the server's default).
func (c *Client) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	return out, c.do(ctx, http.MethodGet, "/api/v1/audit"+limitQuery(url.Values{}, limit), nil, &out)
}

// Deltas lists the deltas the inventory knows, newest first, optionally
// of one tree.
func (c *Client) Deltas(ctx context.Context, tree string, limit int) ([]Delta, error) {
	q := url.Values{}
	if tree != "" {
		q.Set("tree", tree)
	}
	var out []Delta
	return out, c.do(ctx, http.MethodGet, "/api/v1/deltas"+limitQuery(q, limit), nil, &out)
}

// Problems lists the events kept as problems, newest first.
func (c *Client) Problems(ctx context.Context, limit int) ([]EventProblem, error) {
	var out []EventProblem
	return out, c.do(ctx, http.MethodGet, "/api/v1/problems"+limitQuery(url.Values{}, limit), nil, &out)
}
