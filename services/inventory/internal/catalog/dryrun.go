package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/pulpdist/pulpdist/libs/pack"
	"github.com/pulpdist/pulpdist/libs/tree"
)

// ManifestSource reads the published manifests of a tree's versions.
type ManifestSource interface {
	// Manifest returns the manifest of a version, checked against its
	// root; it fails with ErrManifestNotFound when none is stored.
	Manifest(ctx context.Context, tree, root string) (*tree.Manifest, error)
}

// ErrManifestNotFound marks a version whose manifest is not stored.
var ErrManifestNotFound = fmt.Errorf("manifest %w", ErrNotFound)

// ErrNoManifests is returned by DryRun when the inventory was given no
// manifest source.
var ErrNoManifests = errors.New("no manifest source")

// UseManifests gives the service the manifests DryRun reads. Call it
// before the service serves requests.
func (s *Service) UseManifests(m ManifestSource) { s.manifests = m }

// DryRun is what a sync of a subscription to the latest version would
// change at the site.
type DryRun struct {
	Site string
	Tree string
	// From is the version the site serves ("" for none), To the latest.
	From, To string
	// Set counts the entries written (new or changed), Files and Bytes
	// the regular files among them and their sizes; Remove counts the
	// paths deleted.
	Set, Files, Remove int
	Bytes              int64
}

// DryRun computes, from the manifests of the version the site serves and
// of the latest version, what syncing the subscription now would change.
func (s *Service) DryRun(ctx context.Context, site, treeName string) (DryRun, error) {
	if err := checkName("site", site); err != nil {
		return DryRun{}, err
	}
	if err := checkName("tree", treeName); err != nil {
		return DryRun{}, err
	}
	if s.manifests == nil {
		return DryRun{}, ErrNoManifests
	}
	d, err := s.repo.OverviewData(ctx)
	if err != nil {
		return DryRun{}, fmt.Errorf("dry run: %w", err)
	}
	var row *OverviewRow
	for _, r := range buildOverview(d, s.now()) {
		if r.Site == site && r.Tree == treeName && r.Role == RoleReplica {
			row = &r
			break
		}
	}
	if row == nil {
		return DryRun{}, fmt.Errorf("%w: %q to %q", ErrSubscriptionNotFound, site, treeName)
	}
	out := DryRun{Site: site, Tree: treeName, From: row.Version, To: row.LatestVersion}
	if out.To == "" || out.To == out.From {
		return out, nil // nothing published yet, or in sync
	}
	to, err := s.manifests.Manifest(ctx, treeName, out.To)
	if err != nil {
		return DryRun{}, fmt.Errorf("dry run %s/%s: %w", site, treeName, err)
	}
	var from *tree.Manifest
	if out.From != "" {
		if from, err = s.manifests.Manifest(ctx, treeName, out.From); err != nil {
			return DryRun{}, fmt.Errorf("dry run %s/%s: %w", site, treeName, err)
		}
	}
	set, remove := pack.Diff(from, to)
	out.Set, out.Remove = len(set), len(remove)
	for _, e := range set {
		if e.Kind == tree.KindFile {
			out.Files++
			out.Bytes += e.Size
		}
	}
	return out, nil
}
