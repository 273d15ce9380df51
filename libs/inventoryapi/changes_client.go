package inventoryapi

import (
	"context"
	"net/http"
	"net/url"
)

// Changes with conditional requests: a GET answers with an ETag, and a
// PATCH (always) or DELETE (when ifMatch is not "") sends it back as
// If-Match, so that the change is refused with 412 if somebody changed
// the resource since it was read.

func ifMatchHeader(tag string) http.Header {
	if tag == "" {
		return nil
	}
	return http.Header{"If-Match": {tag}}
}

func treePath(name string) string { return "/api/v1/trees/" + url.PathEscape(name) }
func sitePath(name string) string { return "/api/v1/sites/" + url.PathEscape(name) }
func subscriptionPath(site, tree string) string {
	return "/api/v1/subscriptions/" + url.PathEscape(site) + "/" + url.PathEscape(tree)
}

// TreeTagged returns a tree and its ETag.
func (c *Client) TreeTagged(ctx context.Context, name string) (Tree, string, error) {
	var out Tree
	h, err := c.doHeader(ctx, http.MethodGet, treePath(name), nil, nil, &out)
	return out, h.Get("ETag"), err
}

// SiteTagged returns a site and its ETag.
func (c *Client) SiteTagged(ctx context.Context, name string) (Site, string, error) {
	var out Site
	h, err := c.doHeader(ctx, http.MethodGet, sitePath(name), nil, nil, &out)
	return out, h.Get("ETag"), err
}

// UpdateTree changes the fields p sets on a tree read with ETag tag and
// returns the tree as changed and its new tag.
func (c *Client) UpdateTree(ctx context.Context, name, tag string, p TreePatch) (Tree, string, error) {
	var out Tree
	h, err := c.doHeader(ctx, http.MethodPatch, treePath(name), ifMatchHeader(tag), p, &out)
	return out, h.Get("ETag"), err
}

// UpdateSite is UpdateTree for a site.
func (c *Client) UpdateSite(ctx context.Context, name, tag string, p SitePatch) (Site, string, error) {
	var out Site
	h, err := c.doHeader(ctx, http.MethodPatch, sitePath(name), ifMatchHeader(tag), p, &out)
	return out, h.Get("ETag"), err
}

// DeleteTree deletes a tree (only if its ETag is still ifMatch, unless
// ifMatch is "").
func (c *Client) DeleteTree(ctx context.Context, name, ifMatch string) (Deletion, error) {
	var out Deletion
	_, err := c.doHeader(ctx, http.MethodDelete, treePath(name), ifMatchHeader(ifMatch), nil, &out)
	return out, err
}

// DeleteSite deletes a site that is no tree's origin, as DeleteTree.
func (c *Client) DeleteSite(ctx context.Context, name, ifMatch string) (Deletion, error) {
	var out Deletion
	_, err := c.doHeader(ctx, http.MethodDelete, sitePath(name), ifMatchHeader(ifMatch), nil, &out)
	return out, err
}

// DeleteSubscription unsubscribes a site from a tree, as DeleteTree.
func (c *Client) DeleteSubscription(ctx context.Context, site, tree, ifMatch string) (Deletion, error) {
	var out Deletion
	_, err := c.doHeader(ctx, http.MethodDelete, subscriptionPath(site, tree), ifMatchHeader(ifMatch), nil, &out)
	return out, err
}
