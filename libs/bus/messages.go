package bus

import (
	"encoding/json"
	"fmt"
	"github.com/google/uuid"
	"time"

	"github.com/pulpdist/pulpdist/libs/bandwidth"
)

// MessageVersion is the version of every message type below. A consumer
// refuses (terminates) a message of a version it does not know.
const MessageVersion = 1

// Result is the outcome of a sync run.
type Result string

// The result codes of a sync run.
const (
	ResultUpToDate  Result = "UP_TO_DATE"
	ResultCompleted Result = "COMPLETED"
	ResultPartial   Result = "PARTIAL"
	ResultFailed    Result = "FAILED"
	ResultDisabled  Result = "DISABLED"
)

// Valid reports whether r is one of the defined result codes.
func (r Result) Valid() bool {
	switch r {
	case ResultUpToDate, ResultCompleted, ResultPartial, ResultFailed, ResultDisabled:
		return true
	}
	return false
}

// Trigger asks the scheduler to sync a tree now.
type Trigger struct {
	V           int       `json:"v"`
	TriggerID   string    `json:"trigger_id"`
	Tree        string    `json:"tree"`
	Reason      string    `json:"reason"` // "manual", "schedule", "chain" (a replica a tree is made from moved) or "coalesced" (the follow-up of triggers that came during a scan)
	RequestedAt time.Time `json:"requested_at"`
	// ConfirmDeletions lets the origin publish a version that deletes more
	// than the tree's max_deletions (an operator's confirmation).
	ConfirmDeletions bool `json:"confirm_deletions,omitempty"`
	// Sites, when not empty, limits the trigger to these subscribed sites:
	// the origin still scans, but only they get deltas and apply commands.
	// Empty means every subscription of the tree.
	Sites []string `json:"sites,omitempty"`
}

// ReasonManual is the reason of a trigger a person or a tool asked for
// (REST API, the scheduler's micro trigger endpoint).
const ReasonManual = "manual"

// ManualTrigger is a trigger asked for now, of tree (sites: only those of
// its subscribers; none: all), with a fresh id.
func ManualTrigger(tree string, sites []string, confirmDeletions bool, now time.Time) Trigger {
	return Trigger{
		V: MessageVersion, TriggerID: uuid.NewString(), Tree: tree, Reason: ReasonManual,
		RequestedAt: now.UTC(), ConfirmDeletions: confirmDeletions, Sites: sites,
	}
}

// MaxTriggerSites bounds Trigger.Sites.
const MaxTriggerSites = 32

// Validate checks a decoded trigger.
func (m Trigger) Validate() error {
	if err := checkV(m.V); err != nil {
		return err
	}
	if m.TriggerID == "" {
		return fmt.Errorf("trigger: missing trigger_id")
	}
	if err := validateTriggerSites(m.Sites); err != nil {
		return err
	}
	return ValidateName("tree", m.Tree)
}

// The tree types (inventory: trees.type), which say how an origin makes
// a version of a tree from its source.
const (
	// TreeSimple: the source is the tree.
	TreeSimple = "simple"
	// TreeVersioned: each directory at the root of the source is a
	// version; the origin publishes the newest SyncLatest of them (all
	// when 0) and a "latest" link to the newest.
	TreeVersioned = "versioned"
	// TreeSnapshot: a version is published only when the STATUS file at
	// the root of the source says FINISHED.
	TreeSnapshot = "snapshot"
)

// CommandKind says what a site-agent must do.
type CommandKind string

// The kinds of sync commands.
const (
	// CommandSnapshot: the origin scans its source and publishes a version.
	CommandSnapshot CommandKind = "snapshot"
	// CommandApply: a replica moves to version To using the pack From→To.
	CommandApply CommandKind = "apply"
)

// SyncCommand is sent by the scheduler to one site-agent.
type SyncCommand struct {
	V         int         `json:"v"`
	RunID     string      `json:"run_id"`
	TriggerID string      `json:"trigger_id"`
	Kind      CommandKind `json:"kind"`
	Site      string      `json:"site"`
	Tree      string      `json:"tree"`
	// Source is the directory to scan (snapshot only).
	Source string `json:"source,omitempty"`
	// Filters are the tree's include/exclude rules (snapshot only).
	Filters []string `json:"filters,omitempty"`
	// From is the version the pack applies to ("" = empty base); To the target.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Pack is the object name of the delta pack (apply only, "" when the
	// scheduler knows the site is already at To).
	Pack string `json:"pack,omitempty"`
	// PackHash is the hex BLAKE3 of the whole pack object.
	PackHash string `json:"pack_hash,omitempty"`
	// Keep is how many previous versions the site keeps as delta bases.
	Keep int `json:"keep,omitempty"`
	// Origin is the tree's origin site (apply only), whose version in the
	// sites bucket is the newest one.
	Origin string `json:"origin,omitempty"`

	// The tree's publication rules (snapshot only). Type is TreeSimple
	// ("" too), TreeVersioned or TreeSnapshot; SyncLatest, for a
	// versioned tree, the number of newest versions published (0: all).
	Type       string `json:"type,omitempty"`
	SyncLatest int    `json:"sync_latest,omitempty"`
	// MaxDeletions stops, as PARTIAL, a snapshot that would delete more
	// entries of the previous version than this (0: no limit), unless
	// ConfirmDeletions is set.
	MaxDeletions     int64 `json:"max_deletions,omitempty"`
	ConfirmDeletions bool  `json:"confirm_deletions,omitempty"`
	// ProtectedPaths are the tree's protected path patterns (as filter
	// patterns, docs/filters.md): entries of the previous version they
	// match are kept in the new one when the source lost them.
	ProtectedPaths []string `json:"protected_paths,omitempty"`

	// BandwidthLimit (bytes/s, 0: unlimited) and BandwidthWindows are the
	// site's link schedule when the command was planned (apply only; see
	// libs/bandwidth): the agent fetches the pack at that pace.
	BandwidthLimit   int64    `json:"bandwidth_limit,omitempty"`
	BandwidthWindows []string `json:"bandwidth_windows,omitempty"`
	// Urgent is set for a tree of priority urgent: the command is sent on
	// UrgentSyncSubject and its transfer holds the site's normal ones.
	Urgent bool `json:"urgent,omitempty"`
}

// Validate checks a decoded sync command.
func (m SyncCommand) Validate() error {
	if err := checkV(m.V); err != nil {
		return err
	}
	if m.RunID == "" {
		return fmt.Errorf("sync command: missing run_id")
	}
	if err := ValidateName("site", m.Site); err != nil {
		return err
	}
	if err := ValidateName("tree", m.Tree); err != nil {
		return err
	}
	switch m.Kind {
	case CommandSnapshot:
		if m.Source == "" {
			return fmt.Errorf("sync command: snapshot without source")
		}
		switch m.Type {
		case "", TreeSimple, TreeVersioned, TreeSnapshot:
		default:
			return fmt.Errorf("sync command: tree type %q, want %s, %s or %s", m.Type, TreeSimple, TreeVersioned, TreeSnapshot)
		}
		if m.SyncLatest < 0 || (m.SyncLatest > 0 && m.Type != TreeVersioned) {
			return fmt.Errorf("sync command: sync_latest %d, want a count of versions of a versioned tree", m.SyncLatest)
		}
		if m.MaxDeletions < 0 {
			return fmt.Errorf("sync command: max_deletions %d is negative", m.MaxDeletions)
		}
	case CommandApply:
		if m.Origin != "" {
			if err := ValidateName("origin", m.Origin); err != nil {
				return err
			}
		}
		if err := ValidateVersion(m.From, true); err != nil {
			return fmt.Errorf("sync command from: %w", err)
		}
		if err := ValidateVersion(m.To, false); err != nil {
			return fmt.Errorf("sync command to: %w", err)
		}
		if _, err := bandwidth.NewSchedule(m.BandwidthLimit, m.BandwidthWindows); err != nil {
			return fmt.Errorf("sync command: %w", err)
		}
	default:
		return fmt.Errorf("sync command: unknown kind %q", m.Kind)
	}
	return nil
}

// Snapshot announces that an origin published a version of a tree. The
// manifest is in the manifests object store under ManifestObject(Tree, Root).
type Snapshot struct {
	V           int       `json:"v"`
	TriggerID   string    `json:"trigger_id"`
	Tree        string    `json:"tree"`
	Site        string    `json:"site"`
	Root        string    `json:"root"`
	Files       int64     `json:"files"`
	Bytes       int64     `json:"bytes"`
	PublishedAt time.Time `json:"published_at"`
}

// Validate checks a decoded snapshot.
func (m Snapshot) Validate() error {
	if err := checkV(m.V); err != nil {
		return err
	}
	if err := ValidateName("tree", m.Tree); err != nil {
		return err
	}
	return ValidateVersion(m.Root, false)
}

// DeltaRequest asks the delta-cache for the pack turning From into To.
type DeltaRequest struct {
	V         int    `json:"v"`
	TriggerID string `json:"trigger_id"`
	Tree      string `json:"tree"`
	From      string `json:"from"`
	To        string `json:"to"`
	// Sites is how many sites the scheduler will send the pack to now
	// (the fan-out; 0 is taken as 1): the delta-cache spends more effort
	// on a pack many sites fetch.
	Sites int `json:"sites,omitempty"`
	// Stage names a later round of one trigger's planning ("rollout":
	// the sites a staged rollout held back): its request and announcement
	// are not taken for repeats of the first round's. "" for the first.
	Stage string `json:"stage,omitempty"`
}

// StageSuffix is what a stage adds to the message ids of a trigger's
// delta requests and announcements.
func StageSuffix(stage string) string {
	if stage == "" {
		return ""
	}
	return "/" + stage
}

// Validate checks a decoded delta request.
func (m DeltaRequest) Validate() error {
	if err := checkV(m.V); err != nil {
		return err
	}
	if err := ValidateName("tree", m.Tree); err != nil {
		return err
	}
	if err := ValidateVersion(m.From, true); err != nil {
		return fmt.Errorf("delta request from: %w", err)
	}
	return ValidateVersion(m.To, false)
}

// DeltaReady announces a pack in the deltas object store.
type DeltaReady struct {
	V         int    `json:"v"`
	TriggerID string `json:"trigger_id"`
	Tree      string `json:"tree"`
	From      string `json:"from"`
	To        string `json:"to"`
	Pack      string `json:"pack"`
	PackHash  string `json:"pack_hash"`
	Size      int64  `json:"size"`
	// Computed is false when the pack was already in the store.
	Computed bool `json:"computed"`
	// Stage is the request's (DeltaRequest.Stage).
	Stage string `json:"stage,omitempty"`
	// Target, when set, is the version the request asked for: the pack is
	// the first of a chain of stored packs towards it (To is an older
	// version), and a site that applied it asks for the next.
	Target string `json:"target,omitempty"`
}

// Validate checks a decoded delta announcement.
func (m DeltaReady) Validate() error {
	if err := checkV(m.V); err != nil {
		return err
	}
	if err := ValidateName("tree", m.Tree); err != nil {
		return err
	}
	if err := ValidateVersion(m.From, true); err != nil {
		return fmt.Errorf("delta ready from: %w", err)
	}
	if err := ValidateVersion(m.To, false); err != nil {
		return fmt.Errorf("delta ready to: %w", err)
	}
	if m.Pack == "" {
		return fmt.Errorf("delta ready: missing pack")
	}
	if m.Target != "" {
		if err := ValidateVersion(m.Target, false); err != nil {
			return fmt.Errorf("delta ready target: %w", err)
		}
	}
	return nil
}

// SiteVersion is the value stored under SiteVersionKey in the sites bucket.
type SiteVersion struct {
	Root      string    `json:"root"`
	UpdatedAt time.Time `json:"updated_at"`
}

func checkV(v int) error {
	if v != MessageVersion {
		return fmt.Errorf("unsupported message version %d (want %d)", v, MessageVersion)
	}
	return nil
}

// Decode unmarshals a message body strictly and validates it. Unknown
// fields are accepted (newer producers may add them).
func Decode[T interface{ Validate() error }](data []byte) (T, error) {
	var m T
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("decode %T: %w", m, err)
	}
	if err := m.Validate(); err != nil {
		return m, err
	}
	return m, nil
}
