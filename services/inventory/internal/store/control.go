package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// forUpdate locks the selected rows until the transaction ends. SQLite
// needs no clause: its transactions take the write lock when they begin.
func (s *Store) forUpdate() string {
	if s.driver == DriverPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// lockRow reads the one row query selects, locked until tx ends, with
// scan; no row is notFound.
func lockRow[T any](ctx context.Context, s *Store, tx *sql.Tx, scan func(interface{ Scan(...any) error }) (T, error), notFound error, query string, args ...any) (T, error) {
	v, err := scan(tx.QueryRowContext(ctx, query+s.forUpdate(), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound
	}
	if err != nil {
		return v, fmt.Errorf("select: %w", err)
	}
	return v, nil
}

func lockTree(ctx context.Context, s *Store, tx *sql.Tx, name string) (catalog.Tree, error) {
	return lockRow(ctx, s, tx, scanTree, fmt.Errorf("%w: %q", catalog.ErrTreeNotFound, name),
		`SELECT `+treeColumns+` FROM trees WHERE name = $1`, name)
}

func lockSite(ctx context.Context, s *Store, tx *sql.Tx, name string) (catalog.Site, error) {
	return lockRow(ctx, s, tx, scanSite, fmt.Errorf("%w: %q", catalog.ErrSiteNotFound, name),
		`SELECT `+siteColumns+` FROM sites WHERE name = $1`, name)
}

// UpdateTree implements catalog.Repository: it reads the tree, locked,
// lets f change it and writes what f may change and its audit entry, in
// one transaction.
func (s *Store) UpdateTree(ctx context.Context, name string, f func(catalog.Tree) (catalog.Tree, error)) (catalog.Tree, error) {
	var out catalog.Tree
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t, err := lockTree(ctx, s, tx, name)
		if err != nil {
			return err
		}
		if out, err = f(t); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE trees SET schedule = $2, filters = $3, keep = $4, enabled = $5, allowed_lag_seconds = $6,
				source = $7, type = $8, max_deletions = $9, protected_paths = $10,
				sync_latest = $11, canary_sites = $12, priority = $13 WHERE name = $1`,
			name, out.Schedule, filtersJSON(out.Filters), out.Keep, !out.Disabled, lagSeconds(out.AllowedLag),
			out.Source, treeType(out.Type), out.MaxDeletions, filtersJSON(out.ProtectedPaths),
			out.SyncLatest, filtersJSON(out.CanarySites), treePriority(out.Priority)); err != nil {
			return fmt.Errorf("update tree %s: %w", name, err)
		}
		return s.record(ctx, tx, catalog.AuditTreeUpdated(ctx, time.Now(), out), catalog.TreeEvent(bus.ActionUpdated, out))
	})
	if err != nil {
		return catalog.Tree{}, err
	}
	return out, nil
}

// UpdateSite implements catalog.Repository like UpdateTree.
func (s *Store) UpdateSite(ctx context.Context, name string, f func(catalog.Site) (catalog.Site, error)) (catalog.Site, error) {
	var out catalog.Site
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		site, err := lockSite(ctx, s, tx, name)
		if err != nil {
			return err
		}
		if out, err = f(site); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE sites SET description = $2, location = $3, wan_link = $4, bandwidth_limit = $5, bandwidth_windows = $6, agent = $7
			WHERE name = $1`,
			name, out.Description, out.Location, out.WANLink, out.BandwidthLimit, filtersJSON(out.BandwidthWindows), out.AgentIdentity); err != nil {
			return fmt.Errorf("update site %s: %w", name, err)
		}
		return s.record(ctx, tx, catalog.AuditSiteUpdated(ctx, time.Now(), out), catalog.SiteEvent(bus.ActionUpdated, out))
	})
	if err != nil {
		return catalog.Site{}, err
	}
	return out, nil
}

// SetPaused implements catalog.Repository; the audit log records it as
// a pause or resume of the site, tree or subscription. For a site or a
// tree alone it also sets the paused flag of the site or tree itself.
// What it changes is announced: site.updated or tree.updated when the
// flag of the site or tree changed, subscription.updated for each
// subscription whose flag changed; a pause of what is paused announces
// nothing.
func (s *Store) SetPaused(ctx context.Context, f catalog.SubscriptionFilter, paused bool) ([]catalog.Subscription, error) {
	var out []catalog.Subscription
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if f.Site != "" {
			if err := exists(ctx, tx, "sites", f.Site, catalog.ErrSiteNotFound); err != nil {
				return err
			}
		}
		if f.Tree != "" {
			if err := exists(ctx, tx, "trees", f.Tree, catalog.ErrTreeNotFound); err != nil {
				return err
			}
		}
		var evs []catalog.Event
		if (f.Site == "") != (f.Tree == "") {
			ev, err := s.setEntityPaused(ctx, tx, f, paused)
			if err != nil {
				return err
			}
			if ev != nil {
				evs = append(evs, *ev)
			}
		}
		w, args := where([2]string{"site", f.Site}, [2]string{"tree", f.Tree})
		if w == "" {
			return fmt.Errorf("%w: pausing every subscription at once is not offered", catalog.ErrInvalid)
		}
		args = append(args, paused)
		flag := `$` + fmt.Sprint(len(args))
		changing, err := list(ctx, tx, "subscriptions", `SELECT `+subscriptionColumns+` FROM subscriptions`+w+` AND paused <> `+flag+` ORDER BY tree, site`, args, scanSubscription)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE subscriptions SET paused = `+flag+w, args...); err != nil {
			return fmt.Errorf("update subscriptions: %w", err)
		}
		for _, sub := range changing {
			sub.Paused = paused
			evs = append(evs, catalog.SubscriptionEvent(bus.ActionUpdated, sub))
		}
		out, err = list(ctx, tx, "subscriptions", `SELECT `+subscriptionColumns+` FROM subscriptions`+w+` ORDER BY tree, site`, args[:len(args)-1], scanSubscription)
		if err == nil && len(out) == 0 && f.Site != "" && f.Tree != "" {
			err = fmt.Errorf("%w: %q to %q", catalog.ErrSubscriptionNotFound, f.Site, f.Tree)
		}
		if err != nil {
			return err
		}
		action := catalog.AuditResume
		if paused {
			action = catalog.AuditPause
		}
		entity, name := "subscription", f.Site+"/"+f.Tree
		switch {
		case f.Tree == "":
			entity, name = "site", f.Site
		case f.Site == "":
			entity, name = "tree", f.Tree
		}
		changed := make([]string, 0, len(out))
		for _, sub := range out {
			changed = append(changed, sub.Site+"/"+sub.Tree)
		}
		return s.record(ctx, tx, catalog.NewAuditEntry(ctx, time.Now(), action, entity, name, map[string]any{"subscriptions": changed}), evs...)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// setEntityPaused sets the paused flag of the site or the tree f names
// alone and returns the event of the change, nil when the flag was
// already so.
func (s *Store) setEntityPaused(ctx context.Context, tx *sql.Tx, f catalog.SubscriptionFilter, paused bool) (*catalog.Event, error) {
	table, name := "sites", f.Site
	if f.Site == "" {
		table, name = "trees", f.Tree
	}
	res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET paused = $2 WHERE name = $1 AND paused <> $2`, name, paused)
	if err != nil {
		return nil, fmt.Errorf("update %s %s: %w", table, name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return nil, err
	}
	var ev catalog.Event
	if f.Site != "" {
		site, err := lockSite(ctx, s, tx, name)
		if err != nil {
			return nil, err
		}
		ev = catalog.SiteEvent(bus.ActionUpdated, site)
	} else {
		t, err := lockTree(ctx, s, tx, name)
		if err != nil {
			return nil, err
		}
		ev = catalog.TreeEvent(bus.ActionUpdated, t)
	}
	return &ev, nil
}

// Arrivals implements catalog.Repository: the first time each site
// finished a run to each version of the tree with the version in place.
func (s *Store) Arrivals(ctx context.Context, tree string, versions []string) ([]catalog.Arrival, error) {
	if len(versions) == 0 {
		return []catalog.Arrival{}, nil
	}
	args := []any{tree}
	marks := make([]string, len(versions))
	for i, v := range versions {
		args = append(args, v)
		marks[i] = "$" + strconv.Itoa(len(args))
	}
	return list(ctx, s.db, "arrivals",
		`SELECT site, to_version, MIN(finished_at) FROM runs
		WHERE tree = $1 AND to_version IN (`+strings.Join(marks, ", ")+`)
			AND state = 'DONE' AND result IN ('COMPLETED', 'UP_TO_DATE') AND finished_at IS NOT NULL
		GROUP BY site, to_version ORDER BY site, to_version`,
		args, func(sc interface{ Scan(...any) error }) (catalog.Arrival, error) {
			var a catalog.Arrival
			var at dbTime
			err := sc.Scan(&a.Site, &a.Version, &at)
			a.At = at.t
			return a, err
		})
}
