// Package catalog is the inventory's domain: sites, trees, subscriptions,
// the versions the origins publish and the runs that move sites between
// them. Its Service holds the rules (names, paths, schedules, who may
// subscribe to what) and knows nothing of HTTP, SQL or NATS: it reaches
// storage through a Repository and the bus through a Notifier, both
// declared here where they are used.
package catalog

import (
	"errors"
	"fmt"
	"time"
)

// Domain errors. Transports map them to their own status codes in one place.
var (
	// ErrInvalid marks input that breaks a rule; the message says which.
	ErrInvalid = errors.New("invalid")
	// ErrAlreadyExists is returned when creating something that exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrNotFound is wrapped by every "X not found" error below.
	ErrNotFound = errors.New("not found")

	ErrSiteNotFound         = fmt.Errorf("site %w", ErrNotFound)
	ErrTreeNotFound         = fmt.Errorf("tree %w", ErrNotFound)
	ErrRunNotFound          = fmt.Errorf("run %w", ErrNotFound)
	ErrSubscriptionNotFound = fmt.Errorf("subscription %w", ErrNotFound)
	ErrSigningKeyNotFound   = fmt.Errorf("signing key %w", ErrNotFound)
)

// Run states.
const (
	RunRunning = "RUNNING"
	RunDone    = "DONE"
)

// Overview roles and the states that are not run results.
const (
	RoleOrigin  = "origin"
	RoleReplica = "replica"

	StateNeverSynced = "NEVER_SYNCED"
	StateDisabled    = "DISABLED"
)

// Tree keep limits: how many previous versions a site keeps as delta bases.
const (
	DefaultKeep = 2
	MinKeep     = 1
	MaxKeep     = 100
)

// Run list limits.
const (
	DefaultRunLimit = 100
	MaxRunLimit     = 1000
)

// Site is a place that holds trees, run by one site-agent.
type Site struct {
	Name        string
	Description string
	// Location and WANLink are free text ("Lyon, bldg 3", "10 Mbit/s MPLS").
	Location string
	WANLink  string
	// BandwidthLimit caps transfers to the site in bytes/s; 0 is unlimited.
	BandwidthLimit int64
	// BandwidthWindows are the periods in which transfers to the site may
	// run ("Mon-Fri 22:00-06:00", see ParseWindow); none means any time.
	BandwidthWindows []string
	// AgentIdentity names the site-agent: its NATS user or public key.
	AgentIdentity string
	// LastHeartbeat is when the bus stored the newest event from the
	// site's agent (its JetStream timestamp: the NATS server's clock, not
	// the agent's); nil when none was. Set by the bus, never by a request.
	LastHeartbeat *time.Time
	// Paused sites get no commands, whatever their subscriptions say.
	// Set by pause and resume only.
	Paused    bool
	CreatedAt time.Time
}

// Tree is a named directory that its origin site publishes.
type Tree struct {
	Name       string
	OriginSite string
	// Source is the absolute directory on the origin site.
	Source string
	// Schedule is a five-field cron expression; empty means manual only.
	Schedule string
	// Filters are rsync-style include/exclude rules ("- *.tmp").
	Filters []string
	// Keep is the retention: how many versions each site keeps (the
	// served one's predecessors, used as delta bases).
	Keep int
	// Type is TreeSimple, TreeVersioned or TreeSnapshot.
	Type string
	// MaxDeletions refuses a sync that would delete more entries than this
	// at a site; 0 is no guard.
	MaxDeletions int64
	// ProtectedPaths are rsync-style patterns of paths no sync deletes.
	ProtectedPaths []string
	// SyncLatest is, for a versioned tree, how many of the newest
	// versions the origin publishes; 0 is all.
	SyncLatest int
	// CanarySites get a new version first: the others get it once every
	// canary that subscribes reports it.
	CanarySites []string
	// Priority is PriorityNormal or PriorityUrgent: an urgent tree's
	// transfers overtake normal ones on a site's link.
	Priority string
	// Disabled trees are not scheduled (the API shows enabled).
	Disabled bool
	// AllowedLag is how far behind its origin a site may be before the
	// freshness alarm fires.
	AllowedLag time.Duration
	// Paused trees are neither scanned nor synced. Set by pause and
	// resume only.
	Paused    bool
	CreatedAt time.Time
}

// Subscription says that a site holds a replica of a tree.
type Subscription struct {
	Site      string
	Tree      string
	Paused    bool
	CreatedAt time.Time
}

// SubscriptionFilter selects subscriptions; empty fields match all.
type SubscriptionFilter struct {
	Site string
	Tree string
}

// Version is a snapshot of a tree published by its origin.
type Version struct {
	Tree        string
	Root        string
	Site        string
	Files       int64
	Bytes       int64
	PublishedAt time.Time
}

// SigningKey is a public key whose signatures on packs site-agents accept
// while it is not revoked.
type SigningKey struct {
	// ID is the fingerprint of the key (bus.SigningKeyID).
	ID   string
	Name string
	// PublicKey is the key in canonical PEM (bus.EncodeSigningKey).
	PublicKey string
	CreatedAt time.Time
	// RevokedAt is nil while the key is trusted.
	RevokedAt *time.Time
}

// SiteVersion is the version of a tree that a site serves.
type SiteVersion struct {
	Site      string
	Tree      string
	Root      string
	UpdatedAt time.Time
}

// Run is one site moving one tree to a version (or, at the origin, a scan).
type Run struct {
	ID         string
	TriggerID  string
	Site       string
	Tree       string
	Kind       string
	From       string
	To         string
	State      string
	Result     string
	Error      string
	Files      int64
	Bytes      int64
	DurationMS int64
	StartedAt  time.Time
	FinishedAt *time.Time
}

// RunFilter selects runs, newest first; empty fields match all.
type RunFilter struct {
	Site  string
	Tree  string
	Limit int
	// Result selects finished runs with that result.
	Result string
	// Range bounds the start time (Since <= started_at < Until), orders
	// the list (oldest first when Ascending) and continues it after the
	// run at After (Page.Next: start time and id).
	Range
}

// OverviewRow is one site × tree: what it serves, how far behind it is.
type OverviewRow struct {
	Site          string
	Tree          string
	Role          string
	Paused        bool
	Version       string
	LatestVersion string
	State         string
	LastRunAt     *time.Time
	LagSeconds    int64
	// VersionsBehind counts the versions the site lacks up to the latest;
	// BehindSince is when the oldest of them was published (nil in sync).
	VersionsBehind int
	BehindSince    *time.Time
	// LastResult is the result of the newest run, "" while it runs.
	LastResult string
	// NextRunAt is the next time the tree's schedule fires, nil for a
	// tree without schedule or a paused subscription.
	NextRunAt *time.Time
}

// OverviewData is what the overview is computed from, read at once.
type OverviewData struct {
	// Sites are read for their paused flag: a paused site's rows, like a
	// paused tree's, show as paused whatever the subscription says.
	Sites         []Site
	Trees         []Tree
	Subscriptions []Subscription
	// Versions of every tree, in any order.
	Versions     []Version
	SiteVersions []SiteVersion
	// LatestRuns holds the newest run of each site × tree that has one.
	LatestRuns []Run
}
