// Package dispatch decides what happens when: which site-agent gets which
// command, which deltas are needed, for a trigger, a new snapshot or a ready
// delta. It knows no NATS and no HTTP: the scheduler adapts those to the
// small interfaces declared here.
package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// Inventory answers what trees, sites and subscriptions exist, and which
// are paused.
type Inventory interface {
	Tree(ctx context.Context, name string) (inventoryapi.Tree, error)
	Site(ctx context.Context, name string) (inventoryapi.Site, error)
	Subscriptions(ctx context.Context, tree string) ([]inventoryapi.Subscription, error)
	Trees(ctx context.Context) ([]inventoryapi.Tree, error)
}

// Versions tells which version of a tree a site serves ("" for none).
type Versions interface {
	SiteVersion(ctx context.Context, site, tree string) (string, error)
}

// Sender delivers commands, delta requests and events.
type Sender interface {
	Command(ctx context.Context, c bus.SyncCommand) error
	RequestDelta(ctx context.Context, r bus.DeltaRequest, msgID string) error
	Event(ctx context.Context, entity, action string, about bus.About, key string, data any) error
	Trigger(ctx context.Context, t bus.Trigger) error
}

// Scans records the scans in flight across scheduler instances
// (bus.Scans), to coalesce triggers.
type Scans interface {
	Begin(ctx context.Context, tree, run string, confirm bool) (started bool, inFlight string, err error)
	End(ctx context.Context, tree, run string) (again, confirm bool, err error)
}

// Dispatcher turns triggers, snapshots and ready deltas into work.
type Dispatcher struct {
	inv   Inventory
	ver   Versions
	out   Sender
	scans Scans
	log   *slog.Logger
	now   func() time.Time
}

// New returns a dispatcher.
func New(inv Inventory, ver Versions, out Sender, log *slog.Logger) *Dispatcher {
	return &Dispatcher{inv: inv, ver: ver, out: out, log: log, now: time.Now}
}

// CoalesceWith makes d coalesce the triggers of a tree that come while
// its scan runs into one follow-up scan, recording scans in s.
func (d *Dispatcher) CoalesceWith(s Scans) *Dispatcher {
	d.scans = s
	return d
}

// runNamespace makes run ids deterministic: a redelivered trigger or
// snapshot produces the same run id, so its command is deduplicated by
// JetStream and its run recorded once.
var runNamespace = uuid.MustParse("0b3a8e55-6f2d-4c1e-9a57-2d9b1f6c7e10")

// RunID derives the id of the run of one site for one step of a trigger.
func RunID(triggerID, site string, kind bus.CommandKind, from, to string) string {
	return uuid.NewSHA1(runNamespace, []byte(triggerID+"|"+site+"|"+string(kind)+"|"+from+"|"+to)).String()
}

// scopeSep separates a trigger id from the sites a trigger is limited to
// (see ScopedTriggerID). Trigger ids the scheduler accepts never hold it.
const scopeSep = "~"

// ScopedTriggerID is the id the work of a trigger limited to sites is
// correlated by: the snapshot command, and so the snapshot, the delta
// requests, the ready deltas and the runs. The snapshot and ready deltas
// carry nothing else from the trigger, so the scope travels in the id:
// "<id>~<site>[,<site>...]". Without sites it is id itself.
func ScopedTriggerID(id string, sites []string) string {
	if len(sites) == 0 {
		return id
	}
	return id + scopeSep + strings.Join(sites, ",")
}

// TriggerScope returns the sites a scoped trigger id names; nil means
// every subscription. An id whose scope does not parse is treated as
// unscoped: only ScopedTriggerID makes scopes.
func TriggerScope(id string) []string {
	i := strings.LastIndex(id, scopeSep)
	if i < 0 {
		return nil
	}
	sites := strings.Split(id[i+len(scopeSep):], ",")
	for _, s := range sites {
		if bus.ValidateName("site", s) != nil {
			return nil
		}
	}
	return sites
}

// Trigger asks the origin site of the tree to scan and publish a version.
// A trigger of a disabled or paused tree, or of a tree whose origin site
// is paused, scans nothing: its run at the origin ends DISABLED, saying
// why. A trigger limited to sites runs the same scan; its id then carries
// the scope to the snapshot and the deltas that follow.
func (d *Dispatcher) Trigger(ctx context.Context, t bus.Trigger) error {
	if strings.Contains(t.TriggerID, scopeSep) {
		return bus.Permanent(fmt.Errorf("trigger %s: trigger id %q holds %q, which the scheduler reserves", t.Tree, t.TriggerID, scopeSep))
	}
	tree, err := d.inv.Tree(ctx, t.Tree)
	if err != nil {
		return classify(fmt.Errorf("trigger %s: %w", t.Tree, err))
	}
	id := ScopedTriggerID(t.TriggerID, t.Sites)
	why := treeOff(tree)
	if why == "" {
		origin, err := d.inv.Site(ctx, tree.OriginSite)
		if err != nil {
			return classify(fmt.Errorf("trigger %s: origin %s: %w", t.Tree, tree.OriginSite, err))
		}
		if origin.Paused {
			why = "origin site paused"
		}
	}
	if why != "" {
		d.log.Info("trigger not run", "tree", tree.Name, "site", tree.OriginSite, "trigger", t.TriggerID, "why", why)
		return d.finishDisabled(ctx, id, tree.OriginSite, tree.Name, bus.CommandSnapshot, "", why)
	}
	cmd := bus.SyncCommand{
		V: bus.MessageVersion, TriggerID: id, Kind: bus.CommandSnapshot,
		Site: tree.OriginSite, Tree: tree.Name, Source: tree.Source, Filters: tree.Filters, Keep: tree.Keep,
		Type: tree.Type, SyncLatest: tree.SyncLatest, MaxDeletions: tree.MaxDeletions, ProtectedPaths: tree.ProtectedPaths,
		ConfirmDeletions: t.ConfirmDeletions,
	}
	cmd.RunID = RunID(id, cmd.Site, cmd.Kind, "", "")
	if d.scans != nil {
		started, inFlight, err := d.scans.Begin(ctx, tree.Name, cmd.RunID, t.ConfirmDeletions)
		if err != nil {
			return err
		}
		if !started {
			d.log.Info("trigger coalesced into the scan in flight", "tree", tree.Name, "trigger", t.TriggerID, "run", inFlight)
			return d.finish(ctx, bus.SyncFinished{TriggerID: id, Site: tree.OriginSite, Tree: tree.Name, Kind: bus.CommandSnapshot, Result: bus.ResultUpToDate,
				Error: "coalesced: a scan of the tree is running (run " + inFlight + "); one more scan follows it"}, "coalesced")
		}
	}
	return d.start(ctx, cmd)
}

// treeOff says why a tree gets no work ("" when it does): disabled or
// paused.
func treeOff(t inventoryapi.Tree) string {
	switch {
	case t.Enabled != nil && !*t.Enabled:
		return "tree disabled"
	case t.Paused:
		return "tree paused"
	}
	return ""
}

// Snapshot reacts to a new version: sites already at it need nothing
// (unless the trigger names them: they report UP_TO_DATE), paused
// subscriptions (or of a paused site or tree) are recorded as DISABLED,
// and one delta is requested per distinct base version that some site
// holds. A snapshot the origin has since replaced
// is ignored. A scoped trigger id limits all this to its sites.
func (d *Dispatcher) Snapshot(ctx context.Context, s bus.Snapshot) error {
	tree, subs, err := d.treeAndSubs(ctx, s.Tree, s.TriggerID)
	if err != nil {
		return err
	}
	if stale, err := d.stale(ctx, tree, s.Root); err != nil || stale {
		return err
	}
	if subs, err = d.gate(ctx, tree, subs, s.TriggerID, s.Root); err != nil {
		return err
	}
	return d.plan(ctx, tree, subs, s.TriggerID, s.Root, "")
}

// plan sends the sites of subs towards version root of tree: paused ones
// are recorded DISABLED, and one delta is requested per base version the
// others hold. A site that serves root already needs nothing and is not
// contacted — so a poll that finds the tree unchanged costs the sites, and
// the bus, nothing per site — unless the trigger names it (an operator
// asking that site): it is then told so and reports UP_TO_DATE.
func (d *Dispatcher) plan(ctx context.Context, tree inventoryapi.Tree, subs []inventoryapi.Subscription, triggerID, root, stage string) error {
	named := TriggerScope(triggerID) != nil
	bases := map[string]int{} // base version → sites at it
	for _, sub := range subs {
		site, why, err := d.paused(ctx, tree, sub)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", tree.Name, err)
		}
		if why != "" {
			if err := d.disabled(ctx, triggerID, sub, root, why); err != nil {
				return err
			}
			continue
		}
		cur, err := d.ver.SiteVersion(ctx, sub.Site, tree.Name)
		if err != nil {
			return fmt.Errorf("snapshot %s: version of %s: %w", tree.Name, sub.Site, err)
		}
		if cur == root {
			if !named {
				continue
			}
			cmd := d.apply(triggerID, tree, site, cur, root)
			if err := d.start(ctx, cmd); err != nil {
				return err
			}
			continue
		}
		bases[cur]++
	}
	for base, n := range bases {
		req := bus.DeltaRequest{V: bus.MessageVersion, TriggerID: triggerID, Tree: tree.Name, From: base, To: root, Sites: n, Stage: stage}
		if err := d.requestDelta(ctx, req); err != nil {
			return err
		}
	}
	return nil
}

// gate applies the tree's staged rollout to subs for version to: while a
// canary site that subscribes does not serve to yet, only the canaries
// get it. A trigger limited to sites (an operator naming them) is not
// held. A paused canary holds the rollout too: take it out of
// canary_sites to go on without it.
func (d *Dispatcher) gate(ctx context.Context, tree inventoryapi.Tree, subs []inventoryapi.Subscription, triggerID, to string) ([]inventoryapi.Subscription, error) {
	if len(tree.CanarySites) == 0 || TriggerScope(triggerID) != nil {
		return subs, nil
	}
	var canaries []inventoryapi.Subscription
	open := true
	for _, sub := range subs {
		if !slices.Contains(tree.CanarySites, sub.Site) {
			continue
		}
		canaries = append(canaries, sub)
		cur, err := d.ver.SiteVersion(ctx, sub.Site, tree.Name)
		if err != nil {
			return nil, fmt.Errorf("rollout of %s: version of %s: %w", tree.Name, sub.Site, err)
		}
		open = open && cur == to
	}
	if open {
		return subs, nil
	}
	d.log.Info("rollout held for the canaries", "tree", tree.Name, "version", to, "canaries", len(canaries))
	return canaries, nil
}

// RunFinished reacts to a site's finished apply: it moves staged
// rollouts on (canaryFinished) and syncs the trees made from the site's
// replica (chained).
func (d *Dispatcher) RunFinished(ctx context.Context, fin bus.SyncFinished) error {
	if fin.Kind == bus.CommandSnapshot {
		return d.scanFinished(ctx, fin)
	}
	if fin.Kind != bus.CommandApply || fin.To == "" {
		return nil
	}
	if err := d.chained(ctx, fin); err != nil {
		return err
	}
	if fin.Result != bus.ResultCompleted && fin.Result != bus.ResultUpToDate {
		return nil
	}
	tree, err := d.inv.Tree(ctx, fin.Tree)
	if err != nil {
		if p := new(inventoryapi.Problem); errors.As(err, &p) && p.Status == http.StatusNotFound {
			return nil // the tree went
		}
		return classify(fmt.Errorf("tree %s: %w", fin.Tree, err))
	}
	if err := d.catchUp(ctx, tree, fin); err != nil {
		return err
	}
	return d.canaryFinished(ctx, tree, fin)
}

// stageCatchUp is the stage of the delta requests of sites that finished
// an apply short of the newest version.
const stageCatchUp = "catch-up"

// catchUp asks for the next delta of a site that applied a version other
// than the tree's newest: the first pack of a chain of stored packs
// (DeltaReady.Target), or a version the origin replaced meanwhile.
func (d *Dispatcher) catchUp(ctx context.Context, tree inventoryapi.Tree, fin bus.SyncFinished) error {
	if fin.Result != bus.ResultCompleted || treeOff(tree) != "" {
		return nil
	}
	latest, err := d.ver.SiteVersion(ctx, tree.OriginSite, tree.Name)
	if err != nil {
		return fmt.Errorf("version of origin %s: %w", tree.OriginSite, err)
	}
	if latest == "" || latest == fin.To {
		return nil
	}
	d.log.Info("site short of the newest version: next delta", "tree", tree.Name, "site", fin.Site, "at", fin.To, "newest", latest)
	return d.requestDelta(ctx, bus.DeltaRequest{V: bus.MessageVersion, TriggerID: fin.TriggerID, Tree: tree.Name, From: fin.To, To: latest, Sites: 1, Stage: stageCatchUp})
}

// scanFinished ends the tree's scan in flight and, when triggers came
// during it, triggers the one follow-up scan they stand for.
func (d *Dispatcher) scanFinished(ctx context.Context, fin bus.SyncFinished) error {
	if d.scans == nil {
		return nil
	}
	again, confirm, err := d.scans.End(ctx, fin.Tree, fin.RunID)
	if err != nil || !again {
		return err
	}
	trig := bus.Trigger{
		V: bus.MessageVersion, TriggerID: uuid.NewSHA1(derivedNamespace, []byte(fin.RunID+"|again")).String(),
		Tree: fin.Tree, Reason: "coalesced", RequestedAt: d.now().UTC(), ConfirmDeletions: confirm,
	}
	d.log.Info("follow-up scan of coalesced triggers", "tree", fin.Tree, "after", fin.RunID, "trigger", trig.TriggerID)
	return d.out.Trigger(ctx, trig)
}

// stageRollout is the stage of the delta requests of a staged rollout's
// second round.
const stageRollout = "rollout"

// derivedNamespace makes the ids of the triggers the scheduler derives
// (chained trees, follow-up scans) deterministic: a
// redelivered sync.finished triggers once.
var derivedNamespace = uuid.MustParse("5f0e2d7a-8c41-4b9e-a3d6-1e7c9b2f4a80")

// chained triggers every tree whose source is this site's replica of
// fin's tree (source replica:TREE, origin the site) when the replica
// moved to a new version.
func (d *Dispatcher) chained(ctx context.Context, fin bus.SyncFinished) error {
	if fin.Result != bus.ResultCompleted {
		return nil
	}
	trees, err := d.inv.Trees(ctx)
	if err != nil {
		return classify(fmt.Errorf("trees made from %s: %w", fin.Tree, err))
	}
	for _, t := range trees {
		if t.OriginSite != fin.Site || t.Source != bus.ReplicaSourcePrefix+fin.Tree {
			continue
		}
		if why := treeOff(t); why != "" {
			d.log.Info("chained tree not synced", "tree", t.Name, "from", fin.Tree, "why", why)
			continue
		}
		trig := bus.Trigger{
			V: bus.MessageVersion, TriggerID: uuid.NewSHA1(derivedNamespace, []byte(fin.RunID+"|"+t.Name)).String(),
			Tree: t.Name, Reason: "chain", RequestedAt: d.now().UTC(),
		}
		if err := d.out.Trigger(ctx, trig); err != nil {
			return err
		}
		d.log.Info("chained tree triggered", "tree", t.Name, "from", fin.Tree, "site", fin.Site, "trigger", trig.TriggerID)
	}
	return nil
}

// canaryFinished goes on with a staged rollout: when a canary site of a
// tree reports the newest version COMPLETED (or UP_TO_DATE) and every
// canary now serves it, the other sites get it.
func (d *Dispatcher) canaryFinished(ctx context.Context, tree inventoryapi.Tree, fin bus.SyncFinished) error {
	if TriggerScope(fin.TriggerID) != nil || !slices.Contains(tree.CanarySites, fin.Site) {
		return nil
	}
	if stale, err := d.stale(ctx, tree, fin.To); err != nil || stale {
		return err
	}
	subs, err := d.inv.Subscriptions(ctx, tree.Name)
	if err != nil {
		return classify(fmt.Errorf("subscriptions of %s: %w", tree.Name, err))
	}
	gated, err := d.gate(ctx, tree, subs, fin.TriggerID, fin.To)
	if err != nil || len(gated) != len(subs) {
		return err // still held (or failed)
	}
	rest := slices.DeleteFunc(subs, func(s inventoryapi.Subscription) bool { return slices.Contains(tree.CanarySites, s.Site) })
	d.log.Info("canaries serve the version: rollout goes on", "tree", tree.Name, "version", fin.To, "sites", len(rest))
	return d.plan(ctx, tree, rest, fin.TriggerID, fin.To, stageRollout)
}

// requestDelta asks for a delta once per trigger and pair: a redelivered
// message is deduplicated, a later trigger asks again and is answered from
// the delta store.
func (d *Dispatcher) requestDelta(ctx context.Context, req bus.DeltaRequest) error {
	msgID := bus.DeltaID(req.Tree, req.From, req.To) + "/" + req.TriggerID + bus.StageSuffix(req.Stage)
	if err := d.out.RequestDelta(ctx, req, msgID); err != nil {
		return err
	}
	return d.out.Event(ctx, bus.EntityDelta, bus.ActionRequested, bus.About{Tree: req.Tree}, msgID, req)
}

// stale reports whether the origin of tree has published a version other
// than root since: work towards root would then move sites backwards.
func (d *Dispatcher) stale(ctx context.Context, tree inventoryapi.Tree, root string) (bool, error) {
	latest, err := d.ver.SiteVersion(ctx, tree.OriginSite, tree.Name)
	if err != nil {
		return false, fmt.Errorf("version of origin %s: %w", tree.OriginSite, err)
	}
	if latest != "" && latest != root {
		d.log.Info("ignoring a replaced version", "tree", tree.Name, "version", root, "latest", latest)
		return true, nil
	}
	return false, nil
}

// DeltaReady sends the pack to every active site that serves its base, and
// asks for the delta from their own version for active sites that serve
// neither its base nor its target (they moved since the snapshot). A pack
// towards a version the origin has since replaced is not sent: sites never
// go back to an older version.
func (d *Dispatcher) DeltaReady(ctx context.Context, r bus.DeltaReady) error {
	tree, subs, err := d.treeAndSubs(ctx, r.Tree, r.TriggerID)
	if err != nil {
		return err
	}
	// A chain's first pack leads to an older version than the one asked
	// for: that one decides.
	target := cmp.Or(r.Target, r.To)
	if stale, err := d.stale(ctx, tree, target); err != nil || stale {
		return err
	}
	if subs, err = d.gate(ctx, tree, subs, r.TriggerID, target); err != nil {
		return err
	}
	for _, sub := range subs {
		site, why, err := d.paused(ctx, tree, sub)
		if err != nil {
			return fmt.Errorf("delta ready %s: %w", r.Tree, err)
		}
		if why != "" {
			continue
		}
		cur, err := d.ver.SiteVersion(ctx, sub.Site, r.Tree)
		if err != nil {
			return fmt.Errorf("delta ready %s: version of %s: %w", r.Tree, sub.Site, err)
		}
		if cur == target || (cur == r.To && cur != r.From) {
			continue // there, or a step of the chain on (its own apply goes on)
		}
		if cur != r.From {
			if err := d.requestDelta(ctx, bus.DeltaRequest{V: bus.MessageVersion, TriggerID: r.TriggerID, Tree: r.Tree, From: cur, To: target, Stage: r.Stage}); err != nil {
				return err
			}
			continue
		}
		cmd := d.apply(r.TriggerID, tree, site, r.From, r.To)
		cmd.Pack, cmd.PackHash = r.Pack, r.PackHash
		if err := d.start(ctx, cmd); err != nil {
			return err
		}
	}
	return nil
}

// treeAndSubs reads the tree and those of its subscriptions that the
// scope of triggerID names (all of them when it names none).
func (d *Dispatcher) treeAndSubs(ctx context.Context, name, triggerID string) (inventoryapi.Tree, []inventoryapi.Subscription, error) {
	tree, err := d.inv.Tree(ctx, name)
	if err != nil {
		return tree, nil, classify(fmt.Errorf("tree %s: %w", name, err))
	}
	subs, err := d.inv.Subscriptions(ctx, name)
	if err != nil {
		return tree, nil, classify(fmt.Errorf("subscriptions of %s: %w", name, err))
	}
	scope := TriggerScope(triggerID)
	if scope == nil {
		return tree, subs, nil
	}
	in := make([]inventoryapi.Subscription, 0, len(scope))
	for _, s := range subs {
		if slices.Contains(scope, s.Site) {
			in = append(in, s)
		}
	}
	if len(in) < len(scope) {
		d.log.Info("a site the trigger names has no subscription to the tree", "tree", name, "trigger", triggerID)
	}
	return tree, in, nil
}

// paused says why sub gets no work ("" when it does): the subscription,
// its tree or its site is paused. A site paused after a subscription was
// made pauses it too. It returns the site when it read it.
func (d *Dispatcher) paused(ctx context.Context, tree inventoryapi.Tree, sub inventoryapi.Subscription) (inventoryapi.Site, string, error) {
	if sub.Paused {
		return inventoryapi.Site{}, "subscription paused", nil
	}
	if why := treeOff(tree); why != "" {
		return inventoryapi.Site{}, why, nil
	}
	site, err := d.inv.Site(ctx, sub.Site)
	if err != nil {
		return site, "", classify(fmt.Errorf("site %s: %w", sub.Site, err))
	}
	if site.Paused {
		return site, "site paused", nil
	}
	return site, "", nil
}

// apply is the command moving site from one version of tree to another,
// at the pace of the site's link and with the tree's priority.
func (d *Dispatcher) apply(triggerID string, tree inventoryapi.Tree, site inventoryapi.Site, from, to string) bus.SyncCommand {
	return bus.SyncCommand{
		V: bus.MessageVersion, RunID: RunID(triggerID, site.Name, bus.CommandApply, from, to), TriggerID: triggerID,
		Kind: bus.CommandApply, Site: site.Name, Tree: tree.Name, From: from, To: to, Keep: tree.Keep, Origin: tree.OriginSite,
		BandwidthLimit: site.BandwidthLimit, BandwidthWindows: site.BandwidthWindows, Urgent: tree.Priority == "urgent",
	}
}

// start records the run as started, then sends its command.
func (d *Dispatcher) start(ctx context.Context, cmd bus.SyncCommand) error {
	ev := bus.SyncStarted{
		RunID: cmd.RunID, TriggerID: cmd.TriggerID, Site: cmd.Site, Tree: cmd.Tree,
		Kind: cmd.Kind, From: cmd.From, To: cmd.To, StartedAt: d.now().UTC(),
	}
	if err := d.out.Event(ctx, bus.EntitySync, bus.ActionStarted, bus.About{Tree: cmd.Tree, Site: cmd.Site}, cmd.RunID, ev); err != nil {
		return err
	}
	if err := d.out.Command(ctx, cmd); err != nil {
		return err
	}
	d.log.Info("command sent", "kind", cmd.Kind, "site", cmd.Site, "tree", cmd.Tree, "run", cmd.RunID, "to", cmd.To)
	return nil
}

// disabled records a paused subscription's run as DISABLED, why says
// what is paused.
func (d *Dispatcher) disabled(ctx context.Context, triggerID string, sub inventoryapi.Subscription, to, why string) error {
	return d.finishDisabled(ctx, triggerID, sub.Site, sub.Tree, bus.CommandApply, to, why)
}

// finishDisabled records the run of a step that is not done as DISABLED.
// Its id is not the id of the step's real run, which a later delivery of
// the same trigger may make once the tree or site is resumed.
func (d *Dispatcher) finishDisabled(ctx context.Context, triggerID, site, tree string, kind bus.CommandKind, to, why string) error {
	return d.finish(ctx, bus.SyncFinished{TriggerID: triggerID, Site: site, Tree: tree, Kind: kind, To: to, Result: bus.ResultDisabled, Error: why}, "paused")
}

// finish records a run the scheduler ends itself (fin without its id and
// time). tag sets its id apart from the real run of the step's.
func (d *Dispatcher) finish(ctx context.Context, fin bus.SyncFinished, tag string) error {
	fin.RunID, fin.FinishedAt = RunID(fin.TriggerID, fin.Site, fin.Kind, tag, fin.To), d.now().UTC()
	site, tree := fin.Site, fin.Tree
	return d.out.Event(ctx, bus.EntitySync, bus.ActionFinished, bus.About{Tree: tree, Site: site}, fin.RunID, fin)
}

// classify marks errors that redelivery cannot fix: the inventory says the
// tree does not exist (404) or the request is invalid (400).
func classify(err error) error {
	var p *inventoryapi.Problem
	if errors.As(err, &p) && (p.Status == http.StatusNotFound || p.Status == http.StatusBadRequest) {
		return bus.Permanent(err)
	}
	return err
}
