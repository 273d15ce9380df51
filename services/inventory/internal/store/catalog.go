package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// queryer is what both *sql.DB and *sql.Tx offer.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CreateSite implements catalog.Repository.
func (s *Store) CreateSite(ctx context.Context, site catalog.Site) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO sites (name, description, created_at, location, wan_link, bandwidth_limit, bandwidth_windows, agent)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			site.Name, site.Description, ts(site.CreatedAt), site.Location, site.WANLink, site.BandwidthLimit,
			filtersJSON(site.BandwidthWindows), site.AgentIdentity)
		if isUnique(err) {
			return fmt.Errorf("%w: site %q", catalog.ErrAlreadyExists, site.Name)
		}
		if err != nil {
			return unavailable(fmt.Errorf("insert site %s: %w", site.Name, err))
		}
		return s.record(ctx, tx, catalog.AuditSiteCreated(ctx, site), catalog.SiteEvent(bus.ActionCreated, site))
	})
}

const siteColumns = `name, description, created_at, location, wan_link, bandwidth_limit, bandwidth_windows, agent, last_heartbeat, paused`

func scanSite(sc interface{ Scan(...any) error }) (catalog.Site, error) {
	var site catalog.Site
	var created, heartbeat dbTime
	var windows string
	if err := sc.Scan(&site.Name, &site.Description, &created, &site.Location, &site.WANLink, &site.BandwidthLimit,
		&windows, &site.AgentIdentity, &heartbeat, &site.Paused); err != nil {
		return site, err
	}
	site.CreatedAt = created.t
	site.LastHeartbeat = heartbeat.ptr()
	if err := json.Unmarshal([]byte(windows), &site.BandwidthWindows); err != nil {
		return site, fmt.Errorf("site %s: bandwidth windows: %w", site.Name, err)
	}
	return site, nil
}

// Site implements catalog.Repository.
func (s *Store) Site(ctx context.Context, name string) (catalog.Site, error) {
	site, err := scanSite(s.db.QueryRowContext(ctx, `SELECT `+siteColumns+` FROM sites WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Site{}, fmt.Errorf("%w: %q", catalog.ErrSiteNotFound, name)
	}
	if err != nil {
		return catalog.Site{}, unavailable(fmt.Errorf("select site %s: %w", name, err))
	}
	return site, nil
}

// Sites implements catalog.Repository.
func (s *Store) Sites(ctx context.Context) ([]catalog.Site, error) {
	return list(ctx, s.db, "sites", `SELECT `+siteColumns+` FROM sites ORDER BY name`, nil, scanSite)
}

// exists checks that a row with the given name is in a table.
func exists(ctx context.Context, q queryer, table, name string, notFound error) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE name = $1`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %q", notFound, name)
	}
	if err != nil {
		return fmt.Errorf("look up %s %s: %w", table, name, err)
	}
	return nil
}

// CreateTree implements catalog.Repository.
func (s *Store) CreateTree(ctx context.Context, t catalog.Tree) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := exists(ctx, tx, "sites", t.OriginSite, catalog.ErrSiteNotFound); err != nil {
			return fmt.Errorf("origin: %w", err)
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO trees (name, origin_site, source, schedule, keep, created_at, filters,
				type, max_deletions, protected_paths, enabled, allowed_lag_seconds, sync_latest, canary_sites, priority)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			t.Name, t.OriginSite, t.Source, t.Schedule, t.Keep, ts(t.CreatedAt), filtersJSON(t.Filters),
			treeType(t.Type), t.MaxDeletions, filtersJSON(t.ProtectedPaths), !t.Disabled, lagSeconds(t.AllowedLag),
			t.SyncLatest, filtersJSON(t.CanarySites), treePriority(t.Priority))
		switch {
		case isUnique(err):
			return fmt.Errorf("%w: tree %q", catalog.ErrAlreadyExists, t.Name)
		case isForeignKey(err):
			return fmt.Errorf("origin: %w: %q", catalog.ErrSiteNotFound, t.OriginSite)
		case err != nil:
			return fmt.Errorf("insert tree %s: %w", t.Name, err)
		}
		return s.record(ctx, tx, catalog.AuditTreeCreated(ctx, t), catalog.TreeEvent(bus.ActionCreated, t))
	})
}

const treeColumns = `name, origin_site, source, schedule, keep, created_at, filters, type, max_deletions, protected_paths, enabled, allowed_lag_seconds, paused, sync_latest, canary_sites, priority`

func scanTree(sc interface{ Scan(...any) error }) (catalog.Tree, error) {
	var t catalog.Tree
	var created dbTime
	var filters, protected, canaries string
	var enabled bool
	var lag int64
	if err := sc.Scan(&t.Name, &t.OriginSite, &t.Source, &t.Schedule, &t.Keep, &created, &filters,
		&t.Type, &t.MaxDeletions, &protected, &enabled, &lag, &t.Paused,
		&t.SyncLatest, &canaries, &t.Priority); err != nil {
		return t, err
	}
	t.CreatedAt = created.t
	t.Disabled = !enabled
	t.AllowedLag = time.Duration(lag) * time.Second
	if err := json.Unmarshal([]byte(filters), &t.Filters); err != nil {
		return t, fmt.Errorf("tree %s: filters: %w", t.Name, err)
	}
	if err := json.Unmarshal([]byte(protected), &t.ProtectedPaths); err != nil {
		return t, fmt.Errorf("tree %s: protected paths: %w", t.Name, err)
	}
	if err := json.Unmarshal([]byte(canaries), &t.CanarySites); err != nil {
		return t, fmt.Errorf("tree %s: canary sites: %w", t.Name, err)
	}
	return t, nil
}

// filtersJSON stores filter rules as a JSON array ("[]" for none).
func filtersJSON(f []string) string {
	if f == nil {
		f = []string{}
	}
	b, err := json.Marshal(f)
	if err != nil { // a []string always marshals
		return "[]"
	}
	return string(b)
}

// Tree implements catalog.Repository.
func (s *Store) Tree(ctx context.Context, name string) (catalog.Tree, error) {
	t, err := scanTree(s.db.QueryRowContext(ctx, `SELECT `+treeColumns+` FROM trees WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Tree{}, fmt.Errorf("%w: %q", catalog.ErrTreeNotFound, name)
	}
	if err != nil {
		return catalog.Tree{}, unavailable(fmt.Errorf("select tree %s: %w", name, err))
	}
	return t, nil
}

// Trees implements catalog.Repository.
func (s *Store) Trees(ctx context.Context) ([]catalog.Tree, error) {
	return list(ctx, s.db, "trees", `SELECT `+treeColumns+` FROM trees ORDER BY name`, nil, scanTree)
}

// CreateSubscription implements catalog.Repository.
func (s *Store) CreateSubscription(ctx context.Context, sub catalog.Subscription) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := exists(ctx, tx, "sites", sub.Site, catalog.ErrSiteNotFound); err != nil {
			return err
		}
		if err := exists(ctx, tx, "trees", sub.Tree, catalog.ErrTreeNotFound); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO subscriptions (site, tree, paused, created_at) VALUES ($1, $2, $3, $4)`,
			sub.Site, sub.Tree, sub.Paused, ts(sub.CreatedAt))
		switch {
		case isUnique(err):
			return fmt.Errorf("%w: subscription of %q to %q", catalog.ErrAlreadyExists, sub.Site, sub.Tree)
		case isForeignKey(err):
			return fmt.Errorf("%w or %w: %q, %q", catalog.ErrSiteNotFound, catalog.ErrTreeNotFound, sub.Site, sub.Tree)
		case err != nil:
			return fmt.Errorf("insert subscription %s/%s: %w", sub.Site, sub.Tree, err)
		}
		return s.record(ctx, tx, catalog.AuditSubscribed(ctx, sub), catalog.SubscriptionEvent(bus.ActionCreated, sub))
	})
}

const subscriptionColumns = `site, tree, paused, created_at`

func scanSubscription(sc interface{ Scan(...any) error }) (catalog.Subscription, error) {
	var sub catalog.Subscription
	var created dbTime
	err := sc.Scan(&sub.Site, &sub.Tree, &sub.Paused, &created)
	sub.CreatedAt = created.t
	return sub, err
}

// where builds a WHERE clause from the non-empty column filters, with
// placeholders numbered from 1.
func where(filters ...[2]string) (string, []any) {
	var conds []string
	var args []any
	for _, f := range filters {
		if f[1] == "" {
			continue
		}
		args = append(args, f[1])
		conds = append(conds, f[0]+" = $"+strconv.Itoa(len(args)))
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Subscriptions implements catalog.Repository.
func (s *Store) Subscriptions(ctx context.Context, f catalog.SubscriptionFilter) ([]catalog.Subscription, error) {
	w, args := where([2]string{"site", f.Site}, [2]string{"tree", f.Tree})
	return list(ctx, s.db, "subscriptions",
		`SELECT `+subscriptionColumns+` FROM subscriptions`+w+` ORDER BY tree, site`, args, scanSubscription)
}

const versionColumns = `tree, root, site, files, bytes, published_at`

func scanVersion(sc interface{ Scan(...any) error }) (catalog.Version, error) {
	var v catalog.Version
	var published dbTime
	err := sc.Scan(&v.Tree, &v.Root, &v.Site, &v.Files, &v.Bytes, &published)
	v.PublishedAt = published.t
	return v, err
}

// Versions implements catalog.Repository.
func (s *Store) Versions(ctx context.Context, f catalog.VersionFilter) ([]catalog.Version, error) {
	// The id is catalog.VersionKey's.
	l := timeList{selectFrom: `SELECT ` + versionColumns + ` FROM versions`, timeCol: "published_at", idExpr: "root"}
	l.eq("tree", f.Tree)
	q, args := l.query(f.Range, f.Limit)
	return list(ctx, s.db, "versions", q, args, scanVersion)
}

const runColumns = `id, trigger_id, site, tree, kind, from_version, to_version, state, result, error, files, bytes, duration_ms, started_at, finished_at`

func scanRun(sc interface{ Scan(...any) error }) (catalog.Run, error) {
	var r catalog.Run
	var started, finished dbTime
	err := sc.Scan(&r.ID, &r.TriggerID, &r.Site, &r.Tree, &r.Kind, &r.From, &r.To, &r.State, &r.Result, &r.Error,
		&r.Files, &r.Bytes, &r.DurationMS, &started, &finished)
	r.StartedAt = started.t
	r.FinishedAt = finished.ptr()
	return r, err
}

// Run implements catalog.Repository.
func (s *Store) Run(ctx context.Context, id string) (catalog.Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return catalog.Run{}, fmt.Errorf("%w: %q", catalog.ErrRunNotFound, id)
	}
	if err != nil {
		return catalog.Run{}, unavailable(fmt.Errorf("select run %s: %w", id, err))
	}
	return r, nil
}

// Runs implements catalog.Repository.
// (pagination.go builds the query).
func (s *Store) Runs(ctx context.Context, f catalog.RunFilter) ([]catalog.Run, error) {
	query, args := runsQuery(f)
	return list(ctx, s.db, "runs", query, args, scanRun)
}

const siteVersionColumns = `site, tree, root, updated_at`

func scanSiteVersion(sc interface{ Scan(...any) error }) (catalog.SiteVersion, error) {
	var sv catalog.SiteVersion
	var updated dbTime
	err := sc.Scan(&sv.Site, &sv.Tree, &sv.Root, &updated)
	sv.UpdatedAt = updated.t
	return sv, err
}

// OverviewData implements catalog.Repository. It reads in one transaction
// so that the parts agree with each other.
func (s *Store) OverviewData(ctx context.Context) (catalog.OverviewData, error) {
	var d catalog.OverviewData
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if d.Sites, err = list(ctx, tx, "sites", `SELECT `+siteColumns+` FROM sites ORDER BY name`, nil, scanSite); err != nil {
			return err
		}
		if d.Trees, err = list(ctx, tx, "trees", `SELECT `+treeColumns+` FROM trees ORDER BY name`, nil, scanTree); err != nil {
			return err
		}
		if d.Subscriptions, err = list(ctx, tx, "subscriptions", `SELECT `+subscriptionColumns+` FROM subscriptions ORDER BY tree, site`, nil, scanSubscription); err != nil {
			return err
		}
		if d.Versions, err = list(ctx, tx, "versions", `SELECT `+versionColumns+` FROM versions`, nil, scanVersion); err != nil {
			return err
		}
		if d.SiteVersions, err = list(ctx, tx, "site versions", `SELECT `+siteVersionColumns+` FROM site_versions`, nil, scanSiteVersion); err != nil {
			return err
		}
		d.LatestRuns, err = list(ctx, tx, "latest runs",
			`SELECT `+runColumns+` FROM (
				SELECT r.*, ROW_NUMBER() OVER (PARTITION BY site, tree ORDER BY started_at DESC, id DESC) AS n
				FROM runs r
			) latest WHERE n = 1`, nil, scanRun)
		return err
	})
	if err != nil {
		return catalog.OverviewData{}, fmt.Errorf("overview data: %w", err)
	}
	return d, nil
}

// markProcessed records event id as processed at t within tx and
// reports whether this is its first delivery.
func markProcessed(ctx context.Context, tx *sql.Tx, id string, t time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx,
		`INSERT INTO processed_events (id, received_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
		id, t)
	if err != nil {
		return false, fmt.Errorf("insert processed event: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert processed event: %w", err)
	}
	return n > 0, nil
}

// changeTrees are the trees the runs and site version of c name.
func changeTrees(c catalog.Change) []string {
	var out []string
	for _, r := range []*catalog.Run{c.RunStarted, c.RunFinished} {
		if r != nil {
			out = append(out, r.Tree)
		}
	}
	if c.SiteVersion != nil {
		out = append(out, c.SiteVersion.Tree)
	}
	return out
}

// RecordEvent implements catalog.Repository.
func (s *Store) RecordEvent(ctx context.Context, eventID string, c catalog.Change) (bool, error) {
	var recorded bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		first, err := markProcessed(ctx, tx, eventID, ts(time.Now()))
		if err != nil {
			return err
		}
		if !first {
			return nil // seen before: change nothing
		}
		recorded = true
		// A run or a served version of a tree the inventory does not know
		// is not recorded: the event is kept as a problem instead.
		for _, tree := range changeTrees(c) {
			if err := exists(ctx, tx, "trees", tree, catalog.ErrTreeNotFound); err != nil {
				return err
			}
		}
		if v := c.Version; v != nil {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO versions (tree, root, site, files, bytes, published_at) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (tree, root) DO UPDATE SET site = excluded.site, files = excluded.files, bytes = excluded.bytes`,
				v.Tree, v.Root, v.Site, v.Files, v.Bytes, ts(v.PublishedAt))
			if isForeignKey(err) {
				return fmt.Errorf("version %s of %w: %q", v.Root, catalog.ErrTreeNotFound, v.Tree)
			}
			if err != nil {
				return fmt.Errorf("upsert version %s/%s: %w", v.Tree, v.Root, err)
			}
		}
		if r := c.RunStarted; r != nil {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO runs (id, trigger_id, site, tree, kind, from_version, to_version, state, started_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (id) DO UPDATE SET trigger_id = excluded.trigger_id, site = excluded.site, tree = excluded.tree,
					kind = excluded.kind, from_version = excluded.from_version, to_version = excluded.to_version,
					started_at = excluded.started_at
				WHERE runs.state <> 'DONE'`,
				r.ID, r.TriggerID, r.Site, r.Tree, r.Kind, r.From, r.To, catalog.RunRunning, ts(r.StartedAt))
			if err != nil {
				return fmt.Errorf("upsert started run %s: %w", r.ID, err)
			}
		}
		if r := c.RunFinished; r != nil {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO runs (id, trigger_id, site, tree, kind, from_version, to_version, state, result, error,
					files, bytes, duration_ms, started_at, finished_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
				ON CONFLICT (id) DO UPDATE SET trigger_id = excluded.trigger_id, site = excluded.site, tree = excluded.tree,
					kind = excluded.kind, from_version = excluded.from_version, to_version = excluded.to_version,
					state = excluded.state, result = excluded.result, error = excluded.error, files = excluded.files,
					bytes = excluded.bytes, duration_ms = excluded.duration_ms, finished_at = excluded.finished_at`,
				r.ID, r.TriggerID, r.Site, r.Tree, r.Kind, r.From, r.To, catalog.RunDone, r.Result, r.Error,
				r.Files, r.Bytes, r.DurationMS, ts(r.StartedAt), nullTime(r.FinishedAt))
			if err != nil {
				return fmt.Errorf("upsert finished run %s: %w", r.ID, err)
			}
		}
		if sv := c.SiteVersion; sv != nil {
			_, err := tx.ExecContext(ctx,
				`INSERT INTO site_versions (site, tree, root, updated_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (site, tree) DO UPDATE SET root = excluded.root, updated_at = excluded.updated_at
				WHERE site_versions.updated_at <= excluded.updated_at`,
				sv.Site, sv.Tree, sv.Root, ts(sv.UpdatedAt))
			if err != nil {
				return fmt.Errorf("upsert site version %s/%s: %w", sv.Site, sv.Tree, err)
			}
		}
		if d := c.Delta; d != nil {
			if err := recordDelta(ctx, tx, d); err != nil {
				return err
			}
		}
		if d := c.DeltaGone; d != nil {
			if _, err := tx.ExecContext(ctx, `DELETE FROM deltas WHERE tree = $1 AND from_version = $2 AND to_version = $3`, d.Tree, d.From, d.To); err != nil {
				return fmt.Errorf("delete delta %s: %w", d.Tree, err)
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return recorded, nil
}

// list runs a query and scans every row.
func list[T any](ctx context.Context, q queryer, what, query string, args []any, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, unavailable(fmt.Errorf("select %s: %w", what, err))
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, unavailable(fmt.Errorf("select %s: %w", what, err))
	}
	return out, nil
}
