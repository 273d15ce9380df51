package catalog

import (
	"context"
	"errors"
	"fmt"
)

// ErrInUse is returned when deleting something that others still need:
// a site that is the origin of a tree.
var ErrInUse = errors.New("in use")

// RemovalRepository deletes trees, sites and subscriptions. Every method
// is one transaction that also writes the audit entry; check sees the
// stored value, locked, and refuses the deletion by returning an error
// (a stale If-Match), which is returned as it is and changes nothing.
type RemovalRepository interface {
	// DeleteTree removes the tree with its subscriptions, versions,
	// deltas and the versions sites were recorded as serving. Runs and
	// event problems stay: they are the record of what happened. It
	// fails with ErrTreeNotFound for an unknown tree.
	DeleteTree(ctx context.Context, name string, check func(Tree) error) (Removed[Tree], error)
	// DeleteSite removes the site with its subscriptions and served
	// versions, and revokes its agent tokens. It fails with
	// ErrSiteNotFound for an unknown site and ErrInUse while the site is
	// the origin of a tree.
	DeleteSite(ctx context.Context, name string, check func(Site) error) (Removed[Site], error)
	// DeleteSubscription removes one subscription and the version the
	// site was recorded as serving for it. It fails with
	// ErrSubscriptionNotFound when there is no such subscription.
	DeleteSubscription(ctx context.Context, site, tree string, check func(Subscription) error) (Removed[Subscription], error)
}

// Removed is what a deletion took away: the entity as it was, and how
// many rows of each dependent kind went with it ("subscriptions",
// "versions", "deltas", "site_versions", "agent_tokens_revoked").
type Removed[T any] struct {
	Entity T
	Also   map[string]int64
}

// DeleteTree deletes a tree and what only it needs (RemovalRepository).
func (s *Service) DeleteTree(ctx context.Context, name string, check func(Tree) error) (Removed[Tree], error) {
	if err := checkName("tree", name); err != nil {
		return Removed[Tree]{}, err
	}
	r, err := s.repo.DeleteTree(ctx, name, check)
	if err != nil {
		return Removed[Tree]{}, fmt.Errorf("delete tree %s: %w", name, err)
	}
	return r, nil
}

// DeleteSite deletes a site that is no tree's origin.
func (s *Service) DeleteSite(ctx context.Context, name string, check func(Site) error) (Removed[Site], error) {
	if err := checkName("site", name); err != nil {
		return Removed[Site]{}, err
	}
	r, err := s.repo.DeleteSite(ctx, name, check)
	if err != nil {
		return Removed[Site]{}, fmt.Errorf("delete site %s: %w", name, err)
	}
	return r, nil
}

// DeleteSubscription ends a site's replica of a tree in the record. The
// files at the site stay where they are; the scheduler sends the site no
// more commands for the tree.
func (s *Service) DeleteSubscription(ctx context.Context, site, tree string, check func(Subscription) error) (Removed[Subscription], error) {
	if err := checkName("site", site); err != nil {
		return Removed[Subscription]{}, err
	}
	if err := checkName("tree", tree); err != nil {
		return Removed[Subscription]{}, err
	}
	r, err := s.repo.DeleteSubscription(ctx, site, tree, check)
	if err != nil {
		return Removed[Subscription]{}, fmt.Errorf("unsubscribe %s from %s: %w", site, tree, err)
	}
	return r, nil
}
