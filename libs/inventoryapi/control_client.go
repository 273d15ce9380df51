package inventoryapi

import (
	"context"
	"net/http"
	"net/url"
)

// TreeHistory lists the versions of a tree, newest first, each with when
// the sites got it.
func (c *Client) TreeHistory(ctx context.Context, tree string) ([]VersionHistory, error) {
	var out []VersionHistory
	return out, c.do(ctx, http.MethodGet, "/api/v1/trees/"+url.PathEscape(tree)+"/history", nil, &out)
}

// Failing lists the newest run of each subscription (and origin) whose
// result is FAILED.
func (c *Client) Failing(ctx context.Context) ([]Run, error) { return c.FailingOf(ctx, Place{}) }

// FailingOf is Failing for the site and tree p names.
func (c *Client) FailingOf(ctx context.Context, p Place) ([]Run, error) {
	var out []Run
	return out, c.do(ctx, http.MethodGet, p.query("/api/v1/failing"), nil, &out)
}

// Alarms lists the subscriptions behind longer than their tree allows.
func (c *Client) Alarms(ctx context.Context) ([]Alarm, error) { return c.AlarmsOf(ctx, Place{}) }

// AlarmsOf is Alarms for the site and tree p names.
func (c *Client) AlarmsOf(ctx context.Context, p Place) ([]Alarm, error) {
	var out []Alarm
	return out, c.do(ctx, http.MethodGet, p.query("/api/v1/alarms"), nil, &out)
}

// SetPaused pauses (or resumes) every subscription of a site (kind
// "sites") or of a tree (kind "trees") and returns them.
func (c *Client) SetPaused(ctx context.Context, kind, name string, paused bool) ([]Subscription, error) {
	verb := "resume"
	if paused {
		verb = "pause"
	}
	var out []Subscription
	return out, c.do(ctx, http.MethodPost, "/api/v1/"+url.PathEscape(kind)+"/"+url.PathEscape(name)+"/"+verb, nil, &out)
}

// DryRun tells what syncing a subscription to the latest version would
// change at the site.
func (c *Client) DryRun(ctx context.Context, site, tree string) (DryRun, error) {
	var out DryRun
	return out, c.do(ctx, http.MethodGet, "/api/v1/subscriptions/"+url.PathEscape(site)+"/"+url.PathEscape(tree)+"/dry-run", nil, &out)
}

// Site returns one site; a *Problem with Status 404 if it does not exist.
func (c *Client) Site(ctx context.Context, name string) (Site, error) {
	var out Site
	return out, c.do(ctx, http.MethodGet, "/api/v1/sites/"+url.PathEscape(name), nil, &out)
}

// SyncSubscription triggers a sync of one subscription now: the origin
// scans, and only the site is brought to the new version.
func (c *Client) SyncSubscription(ctx context.Context, site, tree string) (SyncAccepted, error) {
	var out SyncAccepted
	return out, c.do(ctx, http.MethodPost, "/api/v1/subscriptions/"+url.PathEscape(site)+"/"+url.PathEscape(tree)+"/sync", nil, &out)
}
