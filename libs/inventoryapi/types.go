// Package inventoryapi holds the wire types of the inventory REST API
// (/api/v1, described by api/openapi.yaml) and a client for it. The
// inventory's HTTP transport encodes these; the scheduler and the pulpdist
// command decode them.
package inventoryapi

import "time"

// Tree is a named directory to mirror.
type Tree struct {
	Name       string `json:"name"`
	OriginSite string `json:"origin_site"`
	// Source is the directory on the origin site that holds the tree.
	Source string `json:"source"`
	// Schedule is a five-field cron expression; empty means manual only.
	Schedule string `json:"schedule,omitempty"`
	// Filters are rsync-style include/exclude rules applied when the origin
	// scans the source (docs/filters.md), such as "- *.tmp".
	Filters []string `json:"filters,omitempty"`
	// Keep is the retention: how many versions each site keeps (those
	// before the served one serve as delta bases). 0 on create: 2.
	Keep int `json:"keep"`
	// Type is "simple" (the default), "versioned" or "snapshot".
	Type string `json:"type,omitempty"`
	// MaxDeletions refuses a sync that would delete more entries than this
	// at a site; 0 is no guard.
	MaxDeletions int64 `json:"max_deletions"`
	// ProtectedPaths are rsync-style patterns of paths no sync deletes.
	ProtectedPaths []string `json:"protected_paths,omitempty"`
	// SyncLatest is, for a versioned tree, how many of the newest version
	// directories the origin publishes; 0 is all of them.
	SyncLatest int `json:"sync_latest,omitempty"`
	// CanarySites get a new version first; the other sites get it once
	// every subscribed canary has reported it (COMPLETED or UP_TO_DATE).
	CanarySites []string `json:"canary_sites,omitempty"`
	// Priority is "normal" (the default) or "urgent": an urgent tree's
	// transfers overtake normal ones on a site's link.
	Priority string `json:"priority,omitempty"`
	// Enabled is false for a tree the scheduler does not fire; absent on
	// create means true.
	Enabled *bool `json:"enabled,omitempty"`
	// AllowedLag is how far behind a site may be before the freshness
	// alarm fires, a duration such as "6h"; absent on create: "24h".
	AllowedLag string `json:"allowed_lag,omitempty"`
	// Paused is set by POST /api/v1/trees/{name}/pause (read-only): the
	// scheduler drops the tree's triggers and dispatches nothing for it.
	Paused    bool      `json:"paused"`
	CreatedAt time.Time `json:"created_at"`
}

// Site is a place that holds trees, run by one site-agent.
type Site struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Location and WANLink are free text ("Lyon, bldg 3", "10 Mbit/s MPLS").
	Location string `json:"location,omitempty"`
	WANLink  string `json:"wan_link,omitempty"`
	// BandwidthLimit caps transfers to the site in bytes/s; 0 is unlimited.
	BandwidthLimit int64 `json:"bandwidth_limit"`
	// BandwidthWindows are the periods in which transfers to the site may
	// run, each "DAYS HH:MM-HH:MM" ("Mon-Fri 22:00-06:00"); none: any time.
	BandwidthWindows []string `json:"bandwidth_windows,omitempty"`
	// AgentIdentity names the site's agent: its NATS user or public key.
	AgentIdentity string `json:"agent_identity,omitempty"`
	// LastHeartbeat is when NATS stored the newest event from the site's
	// agent, on the NATS server's clock (read-only; absent when none was).
	LastHeartbeat *time.Time `json:"last_heartbeat,omitempty"`
	// Paused is set by POST /api/v1/sites/{name}/pause (read-only): the
	// scheduler sends the site no commands, for subscriptions made before
	// or after the pause.
	Paused    bool      `json:"paused"`
	CreatedAt time.Time `json:"created_at"`
}

// Subscription says that a site holds a replica of a tree.
type Subscription struct {
	Site      string    `json:"site"`
	Tree      string    `json:"tree"`
	Paused    bool      `json:"paused"`
	CreatedAt time.Time `json:"created_at"`
}

// Run states.
const (
	RunRunning = "RUNNING"
	RunDone    = "DONE"
)

// Run is one site moving one tree to a version (or, at the origin, one scan).
type Run struct {
	ID         string     `json:"id"`
	TriggerID  string     `json:"trigger_id"`
	Site       string     `json:"site"`
	Tree       string     `json:"tree"`
	Kind       string     `json:"kind"`
	From       string     `json:"from,omitempty"`
	To         string     `json:"to,omitempty"`
	State      string     `json:"state"`
	Result     string     `json:"result,omitempty"`
	Error      string     `json:"error,omitempty"`
	Files      int64      `json:"files"`
	Bytes      int64      `json:"bytes"`
	DurationMS int64      `json:"duration_ms"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Version is a published snapshot of a tree.
type Version struct {
	Tree        string    `json:"tree"`
	Root        string    `json:"root"`
	Site        string    `json:"site"`
	Files       int64     `json:"files"`
	Bytes       int64     `json:"bytes"`
	PublishedAt time.Time `json:"published_at"`
}

// OverviewRow is one site × tree in GET /api/v1/overview.
type OverviewRow struct {
	Site string `json:"site"`
	Tree string `json:"tree"`
	// Role is "origin" or "replica".
	Role          string `json:"role"`
	Paused        bool   `json:"paused"`
	Version       string `json:"version,omitempty"`
	LatestVersion string `json:"latest_version,omitempty"`
	// State is RUNNING while a run is under way, otherwise the last result
	// (UP_TO_DATE, COMPLETED, PARTIAL, FAILED, DISABLED), or NEVER_SYNCED.
	State     string     `json:"state"`
	LastRunAt *time.Time `json:"last_run_at,omitempty"`
	// LagSeconds is 0 when the site serves the latest version, otherwise
	// the time since the oldest version it is missing was published.
	LagSeconds int64 `json:"lag_seconds"`
	// VersionsBehind counts the versions the site lacks up to the latest;
	// BehindSince is when the oldest of them was published (absent when
	// the site is in sync).
	VersionsBehind int        `json:"versions_behind"`
	BehindSince    *time.Time `json:"behind_since,omitempty"`
	// LastResult is the result of the newest finished run.
	LastResult string `json:"last_result,omitempty"`
	// NextRunAt is when the tree's schedule fires next (UTC); absent for a
	// tree without schedule or a paused subscription.
	NextRunAt *time.Time `json:"next_run_at,omitempty"`
}

// SyncRequest is the optional body of POST /api/v1/trees/{name}/sync.
type SyncRequest struct {
	// ConfirmDeletions lets the origin publish a version that deletes more
	// entries than the tree's max_deletions: the operator's go-ahead after
	// a guard.tripped event (the run ended PARTIAL).
	ConfirmDeletions bool `json:"confirm_deletions,omitempty"`
}

// SyncAccepted answers POST /api/v1/trees/{name}/sync and POST
// /api/v1/subscriptions/{site}/{tree}/sync (which also names the site).
type SyncAccepted struct {
	TriggerID string `json:"trigger_id"`
	Tree      string `json:"tree"`
	Site      string `json:"site,omitempty"`
}

// SigningKey is a public key whose signatures on packs site-agents accept,
// as long as it is not revoked.
type SigningKey struct {
	// ID is the key's fingerprint: the lower-case hex of the first 16 bytes
	// of the SHA-256 of the raw 32-byte ed25519 key (bus.SigningKeyID).
	ID   string `json:"id"`
	Name string `json:"name"`
	// PublicKey is the key as one PEM "PUBLIC KEY" block (PKIX).
	PublicKey string    `json:"public_key"`
	CreatedAt time.Time `json:"created_at"`
	// RevokedAt is set once the key is revoked; agents no longer trust it.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// SigningKeyCreate is the body of POST /api/v1/keys.
type SigningKeyCreate struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
}

// Problem is an RFC 9457 problem detail (application/problem+json).
type Problem struct {
	Type   string `json:"type,omitempty"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Title + ": " + p.Detail
	}
	return p.Title
}
