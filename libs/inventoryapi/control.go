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
}

// SitePatch is the body of PATCH /api/v1/sites/{name}, like TreePatch.
type SitePatch struct {
	Description *string `json:"description,omitempty"`
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
