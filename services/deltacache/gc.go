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
// needed while to is the tree's newest version (the origin's last
// snapshot) and some site serves from (a full pack, from none, serves the
// sites still to come). Every other pack is deleted once it is older than
// the grace period, which covers a fetch in progress and a site that
// reports late. Every instance collects (deleting twice is harmless); a
// tree without a snapshot in the snapshots stream is left alone.

// collect deletes the packs nobody can need and returns how many.
func (s *Service) collect(ctx context.Context, now time.Time) (int, error) {
	infos, err := s.layout.Deltas.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list packs: %w", err)
	}
	held, err := heldVersions(ctx, s.layout.Sites)
	if err != nil {
		return 0, err
	}
	latest := map[string]string{}
	deleted := 0
	for _, info := range infos {
		if info.Deleted || now.Sub(info.ModTime) < s.cfg.GCGrace {
			continue
		}
		treeName, from, to, ok := parsePackName(info.Name)
		if !ok {
			continue // not a pack name: not ours to judge
		}
		top, seen := latest[treeName]
		if !seen {
			if top, err = s.newest(ctx, treeName); err != nil {
				return deleted, err
			}
			latest[treeName] = top
		}
		if top == "" || (to == top && (from == "" || held[treeName+"/"+from])) {
			continue
		}
		if err := s.layout.Deltas.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return deleted, fmt.Errorf("delete pack %s: %w", info.Name, err)
		}
		deleted++
		reason := "its target is no longer the newest version"
		if to == top {
			reason = "no site serves its base"
		}
		s.log.Info("pack deleted", "pack", info.Name, "size", info.Size, "why", reason)
		if err := s.events.PublishKeyed(ctx, bus.EntityDelta, bus.ActionDeleted, treeName, "deleted/"+info.Name+"/"+info.NUID, bus.DeltaDeleted{
			Tree: treeName, From: from, To: to, Pack: info.Name, Size: int64(info.Size), Reason: reason,
		}); err != nil {
			return deleted, err
		}
	}
	return deleted, nil
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
