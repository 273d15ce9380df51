package catalog

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pulpdist/pulpdist/libs/bandwidth"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// Tree types: how a tree's history is kept at the sites.
const (
	// TreeSimple: a site serves one version; older ones are kept only as
	// delta bases.
	TreeSimple = "simple"
	// TreeVersioned: a site keeps Keep versions and can serve each.
	TreeVersioned = "versioned"
	// TreeSnapshot: every version is a read-only snapshot of the origin.
	TreeSnapshot = "snapshot"
)

// Allowed lag limits. A tree created without one gets DefaultAllowedLag.
const (
	DefaultAllowedLag = 24 * time.Hour
	MinAllowedLag     = time.Minute
	MaxAllowedLag     = 366 * 24 * time.Hour
)

// Limits on lists given with a tree or site.
const (
	maxProtectedPaths   = 1000
	maxBandwidthWindows = 64
	maxCanarySites      = 64
	maxSyncLatest       = 10000
)

// The priorities of a tree.
const (
	PriorityNormal = "normal"
	PriorityUrgent = "urgent"
)

// checkTreeEntity validates and completes the fields a tree gained with
// the entities migration: type, deletion guard, protected paths and
// allowed lag.
func checkTreeEntity(t *Tree) error {
	switch t.Type {
	case "":
		t.Type = TreeSimple
	case TreeSimple, TreeVersioned, TreeSnapshot:
	default:
		return invalidf("type %q: want %s, %s or %s", t.Type, TreeSimple, TreeVersioned, TreeSnapshot)
	}
	if t.MaxDeletions < 0 {
		return invalidf("max_deletions %d is negative (0 means no guard)", t.MaxDeletions)
	}
	if err := ValidateProtectedPaths(t.ProtectedPaths); err != nil {
		return err
	}
	if t.ProtectedPaths == nil {
		t.ProtectedPaths = []string{}
	}
	switch {
	case t.SyncLatest < 0 || t.SyncLatest > maxSyncLatest:
		return invalidf("sync_latest %d out of range 0..%d (0: every version)", t.SyncLatest, maxSyncLatest)
	case t.SyncLatest > 0 && t.Type != TreeVersioned:
		return invalidf("sync_latest applies to a %s tree, not a %s one", TreeVersioned, t.Type)
	}
	if err := checkCanaries(t.CanarySites); err != nil {
		return err
	}
	if t.CanarySites == nil {
		t.CanarySites = []string{}
	}
	switch t.Priority {
	case "":
		t.Priority = PriorityNormal
	case PriorityNormal, PriorityUrgent:
	default:
		return invalidf("priority %q: want %s or %s", t.Priority, PriorityNormal, PriorityUrgent)
	}
	if t.AllowedLag == 0 {
		t.AllowedLag = DefaultAllowedLag
	}
	switch {
	case t.AllowedLag < MinAllowedLag || t.AllowedLag > MaxAllowedLag:
		return invalidf("allowed_lag %s out of range %s..%s", FormatLag(t.AllowedLag), FormatLag(MinAllowedLag), FormatLag(MaxAllowedLag))
	case t.AllowedLag%time.Second != 0:
		return invalidf("allowed_lag %s is not a whole number of seconds", t.AllowedLag)
	}
	return nil
}

// checkCanaries checks a tree's canary sites: site names, each once.
// They need not exist yet: a canary that does not subscribe to the tree
// holds nothing back.
func checkCanaries(sites []string) error {
	if len(sites) > maxCanarySites {
		return invalidf("%d canary sites, at most %d", len(sites), maxCanarySites)
	}
	seen := make(map[string]bool, len(sites))
	for _, s := range sites {
		if err := checkName("canary site", s); err != nil {
			return err
		}
		if seen[s] {
			return invalidf("canary site %q named twice", s)
		}
		seen[s] = true
	}
	return nil
}

// ValidateProtectedPaths checks protected path patterns: each one a
// pattern as in a filter rule (docs/filters.md), without the "+ " or "- ".
func ValidateProtectedPaths(patterns []string) error {
	if len(patterns) > maxProtectedPaths {
		return invalidf("%d protected paths, at most %d", len(patterns), maxProtectedPaths)
	}
	for _, p := range patterns {
		switch {
		case p == "":
			return invalidf("protected path: empty pattern")
		case strings.TrimSpace(p) != p:
			return invalidf("protected path %q has leading or trailing space", p)
		case strings.HasPrefix(p, "+ ") || strings.HasPrefix(p, "- "):
			return invalidf("protected path %q: give the pattern alone, without %q", p, p[:2])
		}
		if _, err := tree.ParseFilter([]string{"- " + p}); err != nil {
			return invalidf("protected path %q: %v", p, err)
		}
	}
	return nil
}

// FormatLag writes a lag the way ParseLag reads it, without zero units:
// "6h", "1h30m", "45s".
func FormatLag(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ParseLag reads an allowed lag such as "6h" or "90m" (time.ParseDuration).
func ParseLag(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalidf("allowed_lag %q: want a duration such as 6h or 90m", s)
	}
	return d, nil
}

// checkSiteEntity validates and completes the fields a site gained with
// the entities migration.
func checkSiteEntity(s *Site) error {
	for _, f := range []struct{ name, value string }{
		{"location", s.Location}, {"wan_link", s.WANLink}, {"agent_identity", s.AgentIdentity},
	} {
		if len(f.value) > maxDescription || !utf8.ValidString(f.value) || strings.ContainsRune(f.value, 0) {
			return invalidf("%s must be UTF-8 text of at most %d bytes without NUL", f.name, maxDescription)
		}
	}
	if s.BandwidthLimit < 0 {
		return invalidf("bandwidth_limit %d is negative (0 means unlimited)", s.BandwidthLimit)
	}
	if len(s.BandwidthWindows) > maxBandwidthWindows {
		return invalidf("%d bandwidth windows, at most %d", len(s.BandwidthWindows), maxBandwidthWindows)
	}
	for i, w := range s.BandwidthWindows {
		pw, err := ParseWindow(w)
		if err != nil {
			return err
		}
		s.BandwidthWindows[i] = pw.String()
	}
	if s.BandwidthWindows == nil {
		s.BandwidthWindows = []string{}
	}
	// Only events set it.
	s.LastHeartbeat = nil
	return nil
}

// Window is a weekly period of a site's bandwidth schedule
// (bandwidth.Window).
type Window = bandwidth.Window

// ParseWindow reads a bandwidth window "DAYS HH:MM-HH:MM [RATE]"
// (bandwidth.ParseWindow); the error wraps ErrInvalid.
func ParseWindow(s string) (Window, error) {
	w, err := bandwidth.ParseWindow(s)
	if err != nil {
		return Window{}, invalidf("%v", err)
	}
	return w, nil
}

// EntityRepository is the part of the Repository that keeps the audit
// log, the deltas and the events kept as problems.
//
// Audit contract: CreateSite, CreateTree, CreateSubscription,
// AddSigningKey (when it adds) and RevokeSigningKey (when it revokes)
// write their Audit… entry (audit.go), with the actor of ctx, in the
// transaction of the change; so must every later method that changes
// the catalog.
type EntityRepository interface {
	// RecordAudit writes one audit entry with the outbox messages of
	// evs, in one transaction, for a change that is not in the catalog's
	// tables (a sync request, whose trigger is the event).
	RecordAudit(ctx context.Context, e AuditEntry, evs ...Event) error
	// AuditLog lists audit entries newest first, at most f.Limit.
	AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	// Deltas lists deltas by first sight, newest first, with TimesServed.
	Deltas(ctx context.Context, f DeltaFilter) ([]Delta, error)
	// RecordProblem stores p with its event id, in one transaction, and
	// returns true; it returns false and changes nothing when the id was
	// recorded before.
	RecordProblem(ctx context.Context, p EventProblem) (bool, error)
	// Problems lists event problems newest first, at most f.Limit.
	Problems(ctx context.Context, f ProblemFilter) ([]EventProblem, error)
}
