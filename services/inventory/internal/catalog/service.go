package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/adhocore/gronx"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// Repository stores the catalog. Every method is one transaction.
type Repository interface {
	// CreateSite fails with ErrAlreadyExists for a taken name.
	CreateSite(ctx context.Context, s Site) error
	Site(ctx context.Context, name string) (Site, error)
	Sites(ctx context.Context) ([]Site, error)
	// CreateTree fails with ErrSiteNotFound for an unknown origin site
	// and ErrAlreadyExists for a taken name.
	CreateTree(ctx context.Context, t Tree) error
	Tree(ctx context.Context, name string) (Tree, error)
	Trees(ctx context.Context) ([]Tree, error)
	// CreateSubscription fails with ErrSiteNotFound or ErrTreeNotFound
	// for an unknown site or tree and ErrAlreadyExists for a repeat.
	CreateSubscription(ctx context.Context, s Subscription) error
	Subscriptions(ctx context.Context, f SubscriptionFilter) ([]Subscription, error)
	// Versions lists the versions of f.Tree in f's range and order (by
	// publication, then root), at most f.Limit of them.
	Versions(ctx context.Context, f VersionFilter) ([]Version, error)
	Run(ctx context.Context, id string) (Run, error)
	// Runs lists runs newest first, at most f.Limit of them.
	Runs(ctx context.Context, f RunFilter) ([]Run, error)
	OverviewData(ctx context.Context) (OverviewData, error)
	// RecordEvent applies the change one bus event carries together with
	// the event id, in one transaction. It returns false and changes
	// nothing when the id was recorded before.
	RecordEvent(ctx context.Context, eventID string, c Change) (bool, error)
	// AddSigningKey stores k and returns it with true. When a key with k.ID
	// is stored under the same name and not revoked, it returns that one
	// with false and changes nothing. It fails with ErrAlreadyExists when
	// the key is stored under another name or revoked, or when another
	// key that is not revoked has the name.
	AddSigningKey(ctx context.Context, k SigningKey) (SigningKey, bool, error)
	// RevokeSigningKey sets the revocation time of a key that is not
	// revoked yet and returns the key, and whether it changed it. It fails
	// with ErrSigningKeyNotFound for an unknown id.
	RevokeSigningKey(ctx context.Context, id string, at time.Time) (SigningKey, bool, error)
	// SigningKeys lists every key, revoked ones included, oldest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// TokenRepository stores the API tokens (tokens.go).
	TokenRepository
	// ControlRepository changes trees, sites and subscriptions (control.go).
	ControlRepository
	// EntityRepository keeps the audit log, deltas and event problems
	// (entities.go).
	EntityRepository
	AlarmRepository
	// AgentRepository keeps the heartbeats and agents' states (agents.go).
	AgentRepository
	// RemovalRepository deletes trees, sites and subscriptions (remove.go).
	RemovalRepository
}

// Change is what one bus event does to the catalog; nil fields do nothing.
type Change struct {
	// Version is inserted; a version already known keeps its first
	// publication time.
	Version *Version
	// RunStarted is inserted or updated as RUNNING, unless the run is
	// already DONE (events may arrive out of order).
	RunStarted *Run
	// RunFinished is inserted or updated as DONE; a run first seen here
	// keeps the StartedAt given.
	RunFinished *Run
	// SiteVersion replaces the site's version of the tree unless the one
	// recorded is newer.
	SiteVersion *SiteVersion
	// Delta is inserted or updated (deltas.go); it fails with
	// ErrTreeNotFound for an unknown tree.
	Delta *Delta
	// DeltaGone is removed (its Tree, From and To): the delta-cache
	// deleted the pack.
	DeltaGone *Delta
}

// Notifier keeps the state the bus holds for site-agents in line with the
// catalog. The events of changes do not go through it: the Repository
// writes them to the outbox with the change (outbox.go).
type Notifier interface {
	// TrustSigningKeys makes keys exactly the set site-agents trust; when
	// it returns nil, the set is stored on the bus.
	TrustSigningKeys(ctx context.Context, keys []SigningKey) error
}

// Service applies the catalog's rules.
type Service struct {
	repo   Repository
	notify Notifier
	log    *slog.Logger
	now    func() time.Time
	// trustMu makes publications of the trusted keys one at a time, each
	// reading the keys after the change that caused it was committed, so
	// an older set never overwrites a newer one.
	trustMu sync.Mutex
	// manifests are read by DryRun (dryrun.go); nil until UseManifests.
	manifests ManifestSource
	// recorded is told of each change an event recorded for the first
	// time (OnRecorded); nil for none.
	recorded func(Change)
}

// OnRecorded has f told of each change an event recorded for the first
// time, after its commit: a redelivered event, or one another inventory
// recorded first, is not told again. Call it before the service is used.
func (s *Service) OnRecorded(f func(Change)) { s.recorded = f }

// New returns a service storing in repo and announcing through n.
func New(repo Repository, n Notifier, log *slog.Logger) *Service {
	return &Service{repo: repo, notify: n, log: log, now: time.Now}
}

// timestamp is now as stored: UTC, microseconds (what PostgreSQL keeps).
func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// Limits on free-text input.
const (
	maxDescription = 1024
	maxSource      = 4096
	maxRunID       = 128
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

func checkName(kind, name string) error {
	if err := bus.ValidateName(kind, name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// CreateSite declares a site.
func (s *Service) CreateSite(ctx context.Context, site Site) (Site, error) {
	if err := checkName("site", site.Name); err != nil {
		return Site{}, err
	}
	if len(site.Description) > maxDescription || !utf8.ValidString(site.Description) {
		return Site{}, invalidf("description must be UTF-8 text of at most %d bytes", maxDescription)
	}
	if err := checkSiteEntity(&site); err != nil {
		return Site{}, err
	}
	site.CreatedAt = s.timestamp()
	if err := s.repo.CreateSite(ctx, site); err != nil {
		return Site{}, fmt.Errorf("create site %s: %w", site.Name, err)
	}
	return site, nil
}

// Site returns one site.
func (s *Service) Site(ctx context.Context, name string) (Site, error) {
	if err := checkName("site", name); err != nil {
		return Site{}, err
	}
	return s.repo.Site(ctx, name)
}

// Sites lists every site by name.
func (s *Service) Sites(ctx context.Context) ([]Site, error) { return s.repo.Sites(ctx) }

// ValidateSource checks a tree's source: an absolute, clean path.
func ValidateSource(src string) error {
	switch {
	case src == "":
		return invalidf("source is required")
	case len(src) > maxSource || !utf8.ValidString(src) || strings.ContainsRune(src, 0):
		return invalidf("source must be UTF-8 text of at most %d bytes without NUL", maxSource)
	case strings.ContainsFunc(src, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return invalidf("source %q holds a control character", src)
	case strings.HasPrefix(src, "rsync:") || strings.HasPrefix(src, bus.ReplicaSourcePrefix):
		if _, _, err := bus.ParseSource(src); err != nil {
			return invalidf("%v", err)
		}
		return nil
	case !path.IsAbs(src):
		return invalidf("source %q must be an absolute path, rsync://host/module/path or replica:TREE", src)
	case path.Clean(src) != src:
		return invalidf("source %q must be a clean path (want %q)", src, path.Clean(src))
	}
	return nil
}

// ValidateSchedule checks a five-field cron expression ("" is accepted:
// manual only).
func ValidateSchedule(expr string) error {
	if expr == "" {
		return nil
	}
	if n := len(strings.Fields(expr)); n != 5 {
		return invalidf("schedule %q has %d fields, want 5 (minute hour day-of-month month day-of-week)", expr, n)
	}
	if !gronx.New().IsValid(expr) {
		return invalidf("schedule %q is not a valid cron expression", expr)
	}
	return nil
}

// maxFilters bounds the filter rules of a tree.
const maxFilters = 1000

// CreateTree declares a tree. Keep 0 means DefaultKeep.
func (s *Service) CreateTree(ctx context.Context, t Tree) (Tree, error) {
	if err := checkName("tree", t.Name); err != nil {
		return Tree{}, err
	}
	if err := checkName("origin site", t.OriginSite); err != nil {
		return Tree{}, err
	}
	if err := ValidateSource(t.Source); err != nil {
		return Tree{}, err
	}
	if t.Keep == 0 {
		t.Keep = DefaultKeep
	}
	t, err := normalizeTreeSettings(t)
	if err != nil {
		return Tree{}, err
	}
	t.CreatedAt = s.timestamp()
	if err := s.repo.CreateTree(ctx, t); err != nil {
		return Tree{}, fmt.Errorf("create tree %s: %w", t.Name, err)
	}
	return t, nil
}

// Tree returns one tree.
func (s *Service) Tree(ctx context.Context, name string) (Tree, error) {
	if err := checkName("tree", name); err != nil {
		return Tree{}, err
	}
	return s.repo.Tree(ctx, name)
}

// Trees lists every tree by name.
func (s *Service) Trees(ctx context.Context) ([]Tree, error) { return s.repo.Trees(ctx) }

// Subscribe makes a site a replica of a tree. The origin site of a tree
// cannot subscribe to it.
func (s *Service) Subscribe(ctx context.Context, sub Subscription) (Subscription, error) {
	if err := checkName("site", sub.Site); err != nil {
		return Subscription{}, err
	}
	if err := checkName("tree", sub.Tree); err != nil {
		return Subscription{}, err
	}
	t, err := s.repo.Tree(ctx, sub.Tree)
	if err != nil {
		return Subscription{}, fmt.Errorf("subscribe %s to %s: %w", sub.Site, sub.Tree, err)
	}
	if t.OriginSite == sub.Site {
		return Subscription{}, invalidf("site %q is the origin of tree %q and cannot subscribe to it", sub.Site, sub.Tree)
	}
	sub.CreatedAt = s.timestamp()
	if err := s.repo.CreateSubscription(ctx, sub); err != nil {
		return Subscription{}, fmt.Errorf("subscribe %s to %s: %w", sub.Site, sub.Tree, err)
	}
	return sub, nil
}

// Subscriptions lists subscriptions matching f.
func (s *Service) Subscriptions(ctx context.Context, f SubscriptionFilter) ([]Subscription, error) {
	if err := checkGivenNames(f.Site, f.Tree); err != nil {
		return nil, err
	}
	return s.repo.Subscriptions(ctx, f)
}

// checkGivenNames checks the names of site and tree, each unless empty.
func checkGivenNames(site, tree string) error {
	if site != "" {
		if err := checkName("site", site); err != nil {
			return err
		}
	}
	if tree != "" {
		if err := checkName("tree", tree); err != nil {
			return err
		}
	}
	return nil
}

// TreeSubscriptions lists the subscriptions to a tree that must exist.
func (s *Service) TreeSubscriptions(ctx context.Context, tree string) ([]Subscription, error) {
	if _, err := s.Tree(ctx, tree); err != nil {
		return nil, err
	}
	return s.repo.Subscriptions(ctx, SubscriptionFilter{Tree: tree})
}

// SyncRequest asks for a sync of a tree now.
type SyncRequest struct {
	Tree string
	// ConfirmDeletions lets the origin publish a version that deletes
	// more entries than the tree's max_deletions.
	ConfirmDeletions bool
}

// RequestSync asks the scheduler to sync a tree now and returns the
// trigger id.
func (s *Service) RequestSync(ctx context.Context, r SyncRequest) (string, error) {
	if _, err := s.Tree(ctx, r.Tree); err != nil {
		return "", err
	}
	t := bus.ManualTrigger(r.Tree, nil, r.ConfirmDeletions, s.timestamp())
	// The trigger goes out through the outbox, with its audit entry: the
	// log shows every sync requested, and only those.
	if err := s.repo.RecordAudit(ctx, AuditSyncRequested(ctx, t), SyncRequestedEvent(t)); err != nil {
		return "", fmt.Errorf("request sync of %s: %w", r.Tree, err)
	}
	return t.TriggerID, nil
}

// VersionFilter selects one page of a tree's versions by publication
// time, newest first unless Ascending.
type VersionFilter struct {
	Tree string
	Range
	Limit int
}

// Version list limits.
const (
	DefaultVersionLimit = 100
	MaxVersionLimit     = 1000
)

// Versions lists one page of the versions of a tree that must exist.
// Limit 0 means DefaultVersionLimit.
func (s *Service) Versions(ctx context.Context, f VersionFilter) (Page[Version], error) {
	if _, err := s.Tree(ctx, f.Tree); err != nil {
		return Page[Version]{}, err
	}
	p, err := pageOf(ctx, f.Range, f.Limit, DefaultVersionLimit, MaxVersionLimit,
		func(ctx context.Context, n int) ([]Version, error) { f.Limit = n; return s.repo.Versions(ctx, f) }, VersionKey)
	return p, wrapList("versions of "+f.Tree, err)
}

// VersionKey is where a version stands in a version list: its
// publication time and root.
func VersionKey(v Version) TimeKey { return TimeKey{At: v.PublishedAt, ID: v.Root} }

// Run returns one run.
func (s *Service) Run(ctx context.Context, id string) (Run, error) {
	if id == "" || len(id) > maxRunID {
		return Run{}, invalidf("run id must be 1 to %d bytes", maxRunID)
	}
	return s.repo.Run(ctx, id)
}

// Runs lists runs newest first. Limit 0 means DefaultRunLimit.
func (s *Service) Runs(ctx context.Context, f RunFilter) ([]Run, error) {
	if err := checkGivenNames(f.Site, f.Tree); err != nil {
		return nil, err
	}
	if f.Limit == 0 {
		f.Limit = DefaultRunLimit
	}
	if f.Limit < 1 || f.Limit > MaxRunLimit {
		return nil, invalidf("limit %d out of range 1..%d", f.Limit, MaxRunLimit)
	}
	return s.repo.Runs(ctx, f)
}

// Overview returns one row per subscription and one per tree origin, of
// the site and tree f names (empty: all), by tree, origin first, then
// site.
func (s *Service) Overview(ctx context.Context, f SubscriptionFilter) ([]OverviewRow, error) {
	if err := checkGivenNames(f.Site, f.Tree); err != nil {
		return nil, err
	}
	rows, _, err := s.OverviewAll(ctx)
	if err != nil {
		return nil, err
	}
	return matching(rows, f, rowPlace), nil
}

// OverviewAll is the overview of every site × tree together with the
// data it was built from (every site and tree), read at once.
func (s *Service) OverviewAll(ctx context.Context) ([]OverviewRow, OverviewData, error) {
	d, err := s.repo.OverviewData(ctx)
	if err != nil {
		return nil, OverviewData{}, fmt.Errorf("overview: %w", err)
	}
	return buildOverview(d, s.now()), d, nil
}

func rowPlace(r OverviewRow) (site, tree string) { return r.Site, r.Tree }

// matching keeps the items whose site and tree f matches.
func matching[T any](items []T, f SubscriptionFilter, of func(T) (site, tree string)) []T {
	return slices.DeleteFunc(items, func(v T) bool {
		site, tree := of(v)
		return (f.Site != "" && site != f.Site) || (f.Tree != "" && tree != f.Tree)
	})
}
