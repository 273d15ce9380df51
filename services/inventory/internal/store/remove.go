package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// deleteRows runs one DELETE (or UPDATE) per step and counts the rows
// each touched, under its name.
func deleteRows(ctx context.Context, tx *sql.Tx, steps []removal) (map[string]int64, error) {
	counts := map[string]int64{}
	for _, st := range steps {
		res, err := tx.ExecContext(ctx, st.query, st.args...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", st.name, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("%s: rows affected: %w", st.name, err)
		}
		if st.name != "" {
			counts[st.name] = n
		}
	}
	return counts, nil
}

// removal is one statement of a deletion; its count is reported under
// name unless name is "" (the entity's own row).
type removal struct {
	name  string
	query string
	args  []any
}

// DeleteTree implements catalog.RemovalRepository.
func (s *Store) DeleteTree(ctx context.Context, name string, check func(catalog.Tree) error) (catalog.Removed[catalog.Tree], error) {
	var out catalog.Removed[catalog.Tree]
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := lockTree(ctx, s, tx, name)
		if err == nil && check != nil {
			err = check(t)
		}
		if err != nil {
			return err
		}
		counts, err := deleteRows(ctx, tx, []removal{
			{"subscriptions", `DELETE FROM subscriptions WHERE tree = $1`, []any{name}},
			{"versions", `DELETE FROM versions WHERE tree = $1`, []any{name}},
			{"deltas", `DELETE FROM deltas WHERE tree = $1`, []any{name}},
			{"site_versions", `DELETE FROM site_versions WHERE tree = $1`, []any{name}},
			{"", `DELETE FROM trees WHERE name = $1`, []any{name}},
		})
		if err != nil {
			return fmt.Errorf("delete tree %s: %w", name, err)
		}
		out = catalog.Removed[catalog.Tree]{Entity: t, Also: counts}
		return s.record(ctx, tx, catalog.AuditDeleted(ctx, time.Now(), "tree", name, counts), catalog.TreeEvent(bus.ActionDeleted, t))
	})
	if err != nil {
		return catalog.Removed[catalog.Tree]{}, err
	}
	return out, nil
}

// DeleteSite implements catalog.RemovalRepository.
func (s *Store) DeleteSite(ctx context.Context, name string, check func(catalog.Site) error) (catalog.Removed[catalog.Site], error) {
	var out catalog.Removed[catalog.Site]
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		site, err := lockSite(ctx, s, tx, name)
		if err == nil && check != nil {
			err = check(site)
		}
		if err != nil {
			return err
		}
		origins, err := list(ctx, tx, "trees", `SELECT name FROM trees WHERE origin_site = $1 ORDER BY name`, []any{name},
			func(sc interface{ Scan(...any) error }) (string, error) {
				var n string
				err := sc.Scan(&n)
				return n, err
			})
		if err != nil {
			return err
		}
		if len(origins) > 0 {
			return fmt.Errorf("%w: site %q is the origin of %s %s; delete those trees first",
				catalog.ErrInUse, name, plural(len(origins), "tree", "trees"), strings.Join(origins, ", "))
		}
		counts, err := deleteRows(ctx, tx, []removal{
			{"subscriptions", `DELETE FROM subscriptions WHERE site = $1`, []any{name}},
			{"site_versions", `DELETE FROM site_versions WHERE site = $1`, []any{name}},
			// The site's agent tokens stop working with it; their rows
			// stay, so the token list shows when.
			{"agent_tokens_revoked", `UPDATE api_tokens SET revoked_at = $2 WHERE role = 'agent' AND site = $1 AND revoked_at IS NULL`,
				[]any{name, ts(time.Now())}},
			{"", `DELETE FROM sites WHERE name = $1`, []any{name}},
		})
		if err != nil {
			return fmt.Errorf("delete site %s: %w", name, err)
		}
		out = catalog.Removed[catalog.Site]{Entity: site, Also: counts}
		return s.record(ctx, tx, catalog.AuditDeleted(ctx, time.Now(), "site", name, counts), catalog.SiteEvent(bus.ActionDeleted, site))
	})
	if err != nil {
		return catalog.Removed[catalog.Site]{}, err
	}
	return out, nil
}

// DeleteSubscription implements catalog.RemovalRepository.
func (s *Store) DeleteSubscription(ctx context.Context, site, tree string, check func(catalog.Subscription) error) (catalog.Removed[catalog.Subscription], error) {
	var out catalog.Removed[catalog.Subscription]
	name := site + "/" + tree
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		sub, err := lockRow(ctx, s, tx, scanSubscription, fmt.Errorf("%w: %q to %q", catalog.ErrSubscriptionNotFound, site, tree),
			`SELECT `+subscriptionColumns+` FROM subscriptions WHERE site = $1 AND tree = $2`, site, tree)
		if err == nil && check != nil {
			err = check(sub)
		}
		if err != nil {
			return err
		}
		counts, err := deleteRows(ctx, tx, []removal{
			{"site_versions", `DELETE FROM site_versions WHERE site = $1 AND tree = $2`, []any{site, tree}},
			{"", `DELETE FROM subscriptions WHERE site = $1 AND tree = $2`, []any{site, tree}},
		})
		if err != nil {
			return fmt.Errorf("delete subscription %s: %w", name, err)
		}
		out = catalog.Removed[catalog.Subscription]{Entity: sub, Also: counts}
		return s.record(ctx, tx, catalog.AuditDeleted(ctx, time.Now(), "subscription", name, counts), catalog.SubscriptionEvent(bus.ActionDeleted, sub))
	})
	if err != nil {
		return catalog.Removed[catalog.Subscription]{}, err
	}
	return out, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
