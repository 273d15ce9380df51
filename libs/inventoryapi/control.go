package inventoryapi

import "time"

// TreePatch is the body of PATCH /api/v1/trees/{name}: the fields to
// change; absent ones stay as they are. The request needs If-Match.
type TreePatch struct {
	Schedule *string   `json:"schedule,omitempty"`
	Filters  *[]string `json:"filters,omitempty"`
	Keep     *int      `json:"keep,omitempty"`
	Enabled  *bool     `json:"enabled,omitempty"`
	// AllowedLag is a duration such as "6h" or "90m".
	AllowedLag *string `json:"allowed_lag,omitempty"`
	// Source is the directory on the origin site; the origin site itself
	// cannot change (make a new tree).
	Source         *string   `json:"source,omitempty"`
	Type           *string   `json:"type,omitempty"`
	MaxDeletions   *int64    `json:"max_deletions,omitempty"`
	ProtectedPaths *[]string `json:"protected_paths,omitempty"`
	SyncLatest     *int      `json:"sync_latest,omitempty"`
	CanarySites    *[]string `json:"canary_sites,omitempty"`
	Priority       *string   `json:"priority,omitempty"`
}

// SitePatch is the body of PATCH /api/v1/sites/{name}, like TreePatch.
type SitePatch struct {
	Description      *string   `json:"description,omitempty"`
	Location         *string   `json:"location,omitempty"`
	WANLink          *string   `json:"wan_link,omitempty"`
	BandwidthLimit   *int64    `json:"bandwidth_limit,omitempty"`
	BandwidthWindows *[]string `json:"bandwidth_windows,omitempty"`
	AgentIdentity    *string   `json:"agent_identity,omitempty"`
}

// Deletion answers a DELETE: what was deleted, and how many dependent
// records went with it (subscriptions, versions, deltas, site_versions,
// agent_tokens_revoked).
type Deletion struct {
	// Entity is "tree", "site" or "subscription"; Name names it ("docs",
	// "paris", "paris/docs").
	Entity  string           `json:"entity"`
	Name    string           `json:"name"`
	Removed map[string]int64 `json:"removed"`
}

// Arrival is when a site first served a version.
type Arrival struct {
	Site      string    `json:"site"`
	ArrivedAt time.Time `json:"arrived_at"`
}

// VersionHistory is one entry of GET /api/v1/trees/{name}/history: a
// version and when each site got it, first arrival first.
type VersionHistory struct {
	Version
	Arrivals []Arrival `json:"arrivals"`
}

// Alarm is one entry of GET /api/v1/alarms: a subscription behind the
// latest version of its tree for longer than the tree allows.
type Alarm struct {
	OverviewRow
	AllowedLagSeconds int64 `json:"allowed_lag_seconds"`
}

// DryRun answers GET /api/v1/subscriptions/{site}/{tree}/dry-run: what a
// sync to the latest version would change at the site, from the
// manifests of the version it serves and the latest one.
type DryRun struct {
	Site string `json:"site"`
	Tree string `json:"tree"`
	// From is the version the site serves (absent: none), To the latest
	// (absent: nothing published yet).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Set counts the entries written (new or changed); Files and Bytes
	// are the regular files among them and their total size; Remove
	// counts the paths deleted.
	Set    int   `json:"set"`
	Files  int   `json:"files"`
	Bytes  int64 `json:"bytes"`
	Remove int   `json:"remove"`
}
