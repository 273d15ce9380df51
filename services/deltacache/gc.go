package deltacache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// Garbage collection of packs. A pack (tree, from, to) can still be
// needed while it is on a way from a version some site serves to the
// tree's newest version (the origin's last snapshot), through stored
// packs: from is served, or reached from a served version by stored
// packs, and to is the newest version or leads to it by stored packs (a
// chain, see chain.go). A full pack (from none) to the newest version
// serves the sites still to come. Every other pack is deleted once it is
// older than the grace period, which covers a fetch in progress and a site
// that reports late. Every instance collects (deleting twice is
// harmless); a tree without a snapshot in the snapshots stream is left
// alone.

// collect deletes the packs nobody can need and returns how many.
func (s *Service) collect(ctx context.Context, now time.Time) (int, error) {
	byTree, err := s.listPacks(ctx)
	if err != nil || len(byTree) == 0 {
		return 0, err
	}
	held, err := heldVersions(ctx, s.layout.Sites)
	if err != nil {
		return 0, err
	}
	deleted := 0
	for treeName, refs := range byTree {
		top, err := s.newest(ctx, treeName)
		if err != nil {
			return deleted, err
		}
		if top == "" {
			continue
		}
		// Versions reached by stored packs from a served one that has no
		// pack straight to the newest (it needs no chain), and versions
		// leading to the newest.
		forward, backward := map[string][]string{}, map[string][]string{}
		direct := map[string]bool{}
		for _, r := range refs {
			if r.from != "" {
				forward[r.from] = append(forward[r.from], r.to)
				backward[r.to] = append(backward[r.to], r.from)
				direct[r.from] = direct[r.from] || r.to == top
			}
		}
		var starts []string
		for _, r := range refs {
			if r.from != "" && held[treeName+"/"+r.from] && !direct[r.from] {
				starts = append(starts, r.from)
			}
		}
		reached, leads := reach(forward, starts...), reach(backward, top)
		for _, r := range refs {
			if now.Sub(r.info.ModTime) < s.cfg.GCGrace {
				continue
			}
			straight := r.to == top && (r.from == "" || held[treeName+"/"+r.from])
			if straight || (reached[r.from] && leads[r.to]) {
				continue
			}
			info := r.info
			if err := s.layout.Deltas.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				return deleted, fmt.Errorf("delete pack %s: %w", info.Name, err)
			}
			deleted++
			reason := "its target is no longer the newest version"
			if leads[r.to] {
				reason = "no site serves its base"
			}
			s.log.Info("pack deleted", "pack", info.Name, "size", info.Size, "why", reason)
			if err := s.events.PublishKeyed(ctx, bus.EntityDelta, bus.ActionDeleted, bus.About{Tree: treeName}, "deleted/"+info.Name+"/"+info.NUID, bus.DeltaDeleted{
				Tree: treeName, From: r.from, To: r.to, Pack: info.Name, Size: int64(info.Size), Reason: reason,
			}); err != nil {
				return deleted, err
			}
		}
	}
	return deleted, nil
}

// reach is the set of versions reached from starts along edges, starts
// included.
func reach(edges map[string][]string, starts ...string) map[string]bool {
	seen := map[string]bool{}
	todo := starts
	for len(todo) > 0 {
		v := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[v] {
			continue
		}
		seen[v] = true
		todo = append(todo, edges[v]...)
	}
	return seen
}

// newest is the root of the tree's last snapshot ("" when the stream
// holds none).
func (s *Service) newest(ctx context.Context, treeName string) (string, error) {
	st, err := s.js.Stream(ctx, bus.StreamSnapshots)
	if err != nil {
		return "", fmt.Errorf("snapshots stream: %w", err)
	}
	m, err := st.GetLastMsgForSubject(ctx, bus.SnapshotSubject(treeName))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("last snapshot of %s: %w", treeName, err)
	}
	snap, err := bus.Decode[bus.Snapshot](m.Data)
	if err != nil {
		// An unreadable snapshot proves nothing: the tree's packs stay.
		s.log.Warn("last snapshot unreadable: packs kept", "tree", treeName, "err", err)
		return "", nil //nolint:nilerr // not an error of the collection
	}
	return snap.Root, nil
}

// heldVersions is the set of "tree/version" some site serves.
func heldVersions(ctx context.Context, kv jetstream.KeyValue) (map[string]bool, error) {
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list site versions: %w", err)
	}
	out := map[string]bool{}
	for k := range keys.Keys() {
		site, treeName, ok := strings.Cut(k, ".")
		if !ok {
			continue
		}
		v, err := bus.GetSiteVersion(ctx, kv, site, treeName)
		if err != nil {
			return nil, err
		}
		if v != "" {
			out[treeName+"/"+v] = true
		}
	}
	return out, nil
}

// parsePackName splits a pack name (bus.DeltaID) into its tree and
// versions ("" for none).
func parsePackName(name string) (treeName, from, to string, ok bool) {
	parts := strings.Split(name, "/")
	if len(parts) != 3 || bus.ValidateName("tree", parts[0]) != nil || bus.ValidateVersion(parts[2], false) != nil {
		return "", "", "", false
	}
	if parts[1] == "none" {
		return parts[0], "", parts[2], true
	}
	if bus.ValidateVersion(parts[1], false) != nil {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// collectEvery runs collect every interval until ctx ends; a failed round
// is logged and the next one tries again.
func (s *Service) collectEvery(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if n, err := s.collect(ctx, now); err != nil {
				s.log.Warn("pack collection", "err", err, "deleted", n)
			}
		}
	}
}
