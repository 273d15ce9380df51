package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// ControlRepository changes what exists. Every method is one transaction.
type ControlRepository interface {
	// UpdateTree reads the tree, lets f return its new state and stores
	// what a TreePatch may change (every field but the name, origin site,
	// creation time and pause flag), with nobody changing the tree in
	// between. An error of f is returned as it is and
	// changes nothing. It fails with ErrTreeNotFound for an unknown tree.
	UpdateTree(ctx context.Context, name string, f func(Tree) (Tree, error)) (Tree, error)
	// UpdateSite is UpdateTree for what a SitePatch may change.
	UpdateSite(ctx context.Context, name string, f func(Site) (Site, error)) (Site, error)
	// SetPaused pauses or resumes the subscriptions f selects (a site's,
	// a tree's or one) and returns them. It fails with ErrSiteNotFound or
	// ErrTreeNotFound for an unknown site or tree, and with
	// ErrSubscriptionNotFound when f names one subscription that does not
	// exist.
	SetPaused(ctx context.Context, f SubscriptionFilter, paused bool) ([]Subscription, error)
	// Arrivals lists, for each site and each of the versions of the
	// tree, when the site first finished a run that left it serving that
	// version.
	Arrivals(ctx context.Context, tree string, versions []string) ([]Arrival, error)
}

// TreePatch is a change to a tree; nil fields stay as they are.
type TreePatch struct {
	Schedule   *string
	Filters    *[]string
	Keep       *int
	Enabled    *bool
	AllowedLag *time.Duration
	Source     *string
	Type       *string
	// MaxDeletions and ProtectedPaths are the tree's deletion guards.
	MaxDeletions   *int64
	ProtectedPaths *[]string
	SyncLatest     *int
	CanarySites    *[]string
	Priority       *string
}

// SitePatch is a change to a site; nil fields stay as they are.
type SitePatch struct {
	Description      *string
	Location         *string
	WANLink          *string
	BandwidthLimit   *int64
	BandwidthWindows *[]string
	AgentIdentity    *string
}

// Arrival is when a site first served a version.
type Arrival struct {
	Site    string
	Version string
	At      time.Time
}

// VersionHistory is a version of a tree and when each site got it.
type VersionHistory struct {
	Version
	// Arrivals are in the order the sites got the version.
	Arrivals []Arrival
}

// Alarm is a subscription that has been behind for longer than its
// tree allows.
type Alarm struct {
	OverviewRow
	AllowedLag time.Duration
}

// normalizeTreeSettings checks and normalizes the settings that a create
// or an update sets.
func normalizeTreeSettings(t Tree) (Tree, error) {
	if kind, of, err := bus.ParseSource(t.Source); err == nil && kind == bus.SourceReplica && of == t.Name {
		return Tree{}, invalidf("source %q: a tree cannot be made from its own replica", t.Source)
	}
	t.Schedule = strings.Join(strings.Fields(t.Schedule), " ")
	if err := ValidateSchedule(t.Schedule); err != nil {
		return Tree{}, err
	}
	if len(t.Filters) > maxFilters {
		return Tree{}, invalidf("%d filter rules, at most %d", len(t.Filters), maxFilters)
	}
	if _, err := tree.ParseFilter(t.Filters); err != nil {
		return Tree{}, invalidf("filters: %v", err)
	}
	if t.Filters == nil {
		t.Filters = []string{}
	}
	if t.Keep < MinKeep || t.Keep > MaxKeep {
		return Tree{}, invalidf("keep %d out of range %d..%d", t.Keep, MinKeep, MaxKeep)
	}
	if err := checkTreeEntity(&t); err != nil {
		return Tree{}, err
	}
	return t, nil
}

// UpdateTree applies p to a tree. check sees the tree as stored, under
// lock, and refuses the change by returning an error (a stale version);
// nil means no check.
func (s *Service) UpdateTree(ctx context.Context, name string, p TreePatch, check func(Tree) error) (Tree, error) {
	if err := checkName("tree", name); err != nil {
		return Tree{}, err
	}
	t, err := s.repo.UpdateTree(ctx, name, func(t Tree) (Tree, error) {
		if check != nil {
			if err := check(t); err != nil {
				return Tree{}, err
			}
		}
		if p.Schedule != nil {
			t.Schedule = *p.Schedule
		}
		if p.Filters != nil {
			t.Filters = *p.Filters
		}
		if p.Keep != nil {
			t.Keep = *p.Keep
		}
		if p.Enabled != nil {
			t.Disabled = !*p.Enabled
		}
		if p.AllowedLag != nil {
			if *p.AllowedLag == 0 {
				return Tree{}, invalidf("allowed_lag must be given as a duration such as 6h")
			}
			t.AllowedLag = *p.AllowedLag
		}
		if p.Source != nil {
			if err := ValidateSource(*p.Source); err != nil {
				return Tree{}, err
			}
			t.Source = *p.Source
		}
		if p.Type != nil {
			if *p.Type == "" {
				return Tree{}, invalidf("type must be %s, %s or %s", TreeSimple, TreeVersioned, TreeSnapshot)
			}
			t.Type = *p.Type
		}
		if p.MaxDeletions != nil {
			t.MaxDeletions = *p.MaxDeletions
		}
		if p.ProtectedPaths != nil {
			t.ProtectedPaths = *p.ProtectedPaths
		}
		if p.SyncLatest != nil {
			t.SyncLatest = *p.SyncLatest
		}
		if p.CanarySites != nil {
			t.CanarySites = *p.CanarySites
		}
		if p.Priority != nil {
			if *p.Priority == "" {
				return Tree{}, invalidf("priority must be %s or %s", PriorityNormal, PriorityUrgent)
			}
			t.Priority = *p.Priority
		}
		return normalizeTreeSettings(t)
	})
	if err != nil {
		return Tree{}, fmt.Errorf("update tree %s: %w", name, err)
	}
	return t, nil
}

// UpdateSite applies p to a site; check as for UpdateTree.
func (s *Service) UpdateSite(ctx context.Context, name string, p SitePatch, check func(Site) error) (Site, error) {
	if err := checkName("site", name); err != nil {
		return Site{}, err
	}
	site, err := s.repo.UpdateSite(ctx, name, func(site Site) (Site, error) {
		if check != nil {
			if err := check(site); err != nil {
				return Site{}, err
			}
		}
		p.apply(&site)
		if len(site.Description) > maxDescription || !utf8.ValidString(site.Description) {
			return Site{}, invalidf("description must be UTF-8 text of at most %d bytes", maxDescription)
		}
		heartbeat := site.LastHeartbeat // events set it, not updates
		if err := checkSiteEntity(&site); err != nil {
			return Site{}, err
		}
		site.LastHeartbeat = heartbeat
		return site, nil
	})
	if err != nil {
		return Site{}, fmt.Errorf("update site %s: %w", name, err)
	}
	return site, nil
}

// apply sets the fields p names.
func (p SitePatch) apply(site *Site) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&site.Description, p.Description)
	set(&site.Location, p.Location)
	set(&site.WANLink, p.WANLink)
	set(&site.AgentIdentity, p.AgentIdentity)
	if p.BandwidthLimit != nil {
		site.BandwidthLimit = *p.BandwidthLimit
	}
	if p.BandwidthWindows != nil {
		site.BandwidthWindows = slices.Clone(*p.BandwidthWindows)
	}
}

// SetPaused pauses (or resumes) every subscription of a site, of a tree,
// or the one of both, and returns them. A site or tree without
// subscriptions is not an error: nothing changes.
func (s *Service) SetPaused(ctx context.Context, f SubscriptionFilter, paused bool) ([]Subscription, error) {
	if f.Site == "" && f.Tree == "" {
		return nil, invalidf("name a site, a tree or both")
	}
	if err := checkGivenNames(f.Site, f.Tree); err != nil {
		return nil, err
	}
	subs, err := s.repo.SetPaused(ctx, f, paused)
	if err != nil {
		return nil, fmt.Errorf("set paused=%t: %w", paused, err)
	}
	return subs, nil
}

// RequestSubscriptionSync asks the scheduler to sync one subscription
// now and returns the trigger id: the origin scans as for a tree sync,
// but only site gets the deltas and apply commands. It fails with
// ErrSubscriptionNotFound when site does not subscribe to tree.
func (s *Service) RequestSubscriptionSync(ctx context.Context, site, tree string) (string, error) {
	if err := checkName("site", site); err != nil {
		return "", err
	}
	if err := checkName("tree", tree); err != nil {
		return "", err
	}
	subs, err := s.repo.Subscriptions(ctx, SubscriptionFilter{Site: site, Tree: tree})
	if err != nil {
		return "", fmt.Errorf("sync of %s to %s: %w", tree, site, err)
	}
	if len(subs) != 1 {
		return "", fmt.Errorf("%w: %q to %q", ErrSubscriptionNotFound, site, tree)
	}
	t := bus.ManualTrigger(tree, []string{site}, false, s.timestamp())
	// Through the outbox with its audit entry, as RequestSync.
	e := NewAuditEntry(ctx, t.RequestedAt, AuditTrigger, "subscription", site+"/"+tree,
		map[string]any{"trigger_id": t.TriggerID, "reason": t.Reason, "site": site, "tree": tree})
	if err := s.repo.RecordAudit(ctx, e, SyncRequestedEvent(t)); err != nil {
		return "", fmt.Errorf("request sync of %s to %s: %w", tree, site, err)
	}
	return t.TriggerID, nil
}

// TreeHistory lists one page of the versions of a tree that must exist
// (as Versions), each with the times the sites got it.
func (s *Service) TreeHistory(ctx context.Context, f VersionFilter) (Page[VersionHistory], error) {
	p, err := s.Versions(ctx, f)
	if err != nil {
		return Page[VersionHistory]{}, err
	}
	vs := p.Items
	roots := make([]string, len(vs))
	for i, v := range vs {
		roots[i] = v.Root
	}
	as, err := s.repo.Arrivals(ctx, f.Tree, roots)
	if err != nil {
		return Page[VersionHistory]{}, fmt.Errorf("history of %s: %w", f.Tree, err)
	}
	byRoot := map[string][]Arrival{}
	for _, a := range as {
		byRoot[a.Version] = append(byRoot[a.Version], a)
	}
	out := make([]VersionHistory, 0, len(vs))
	for _, v := range vs {
		arr := byRoot[v.Root]
		if arr == nil {
			arr = []Arrival{}
		}
		slices.SortFunc(arr, func(a, b Arrival) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Site, b.Site)) })
		out = append(out, VersionHistory{Version: v, Arrivals: arr})
	}
	return Page[VersionHistory]{Items: out, Next: p.Next}, nil
}

// Failing lists the newest run of each subscription and origin whose
// result is FAILED or PARTIAL (stopped, for an operator to look at), of
// the site and tree f names, by tree, then site.
func (s *Service) Failing(ctx context.Context, f SubscriptionFilter) ([]Run, error) {
	if err := checkGivenNames(f.Site, f.Tree); err != nil {
		return nil, err
	}
	d, err := s.repo.OverviewData(ctx)
	if err != nil {
		return nil, fmt.Errorf("failing: %w", err)
	}
	type key struct{ site, tree string }
	cells := map[key]bool{}
	for _, t := range d.Trees {
		cells[key{t.OriginSite, t.Name}] = true
	}
	for _, sub := range d.Subscriptions {
		cells[key{sub.Site, sub.Tree}] = true
	}
	out := []Run{}
	for _, r := range d.LatestRuns {
		if r.State == RunDone && (r.Result == "FAILED" || r.Result == "PARTIAL") && cells[key{r.Site, r.Tree}] {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Run) int { return cmp.Or(cmp.Compare(a.Tree, b.Tree), cmp.Compare(a.Site, b.Site)) })
	return matching(out, f, func(r Run) (string, string) { return r.Site, r.Tree }), nil
}

// Alarms lists the subscriptions, not paused, of the site and tree f
// names, that have been behind the latest version of their tree for
// longer than the tree allows, by tree, then site.
func (s *Service) Alarms(ctx context.Context, f SubscriptionFilter) ([]Alarm, error) {
	if err := checkGivenNames(f.Site, f.Tree); err != nil {
		return nil, err
	}
	d, err := s.repo.OverviewData(ctx)
	if err != nil {
		return nil, fmt.Errorf("alarms: %w", err)
	}
	allowed := map[string]time.Duration{}
	// A paused site or tree gets no syncs: its subscriptions are not late.
	pausedTree, pausedSite := map[string]bool{}, map[string]bool{}
	for _, t := range d.Trees {
		allowed[t.Name] = cmp.Or(t.AllowedLag, DefaultAllowedLag)
		pausedTree[t.Name] = t.Paused
	}
	sites, err := s.repo.Sites(ctx)
	if err != nil {
		return nil, fmt.Errorf("alarms: %w", err)
	}
	for _, site := range sites {
		pausedSite[site.Name] = site.Paused
	}
	out := []Alarm{}
	for _, r := range matching(buildOverview(d, s.now()), f, rowPlace) {
		if r.Role != RoleReplica || r.Paused || pausedTree[r.Tree] || pausedSite[r.Site] || r.BehindSince == nil {
			continue
		}
		if lag := time.Duration(r.LagSeconds) * time.Second; lag > allowed[r.Tree] {
			out = append(out, Alarm{OverviewRow: r, AllowedLag: allowed[r.Tree]})
		}
	}
	return out, nil
}

// ErrUnavailable marks a failure of the database itself (gone, closed,
// shutting down) rather than of the request: nothing was changed and
// the same request may succeed later.
var ErrUnavailable = errors.New("database unavailable")
