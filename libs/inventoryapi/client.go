package inventoryapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client calls the inventory REST API.
type Client struct {
	base  string
	http  *http.Client
	token string
}

// NewClient returns a client for the inventory at base (http://host:port).
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), http: hc}
}

// Trees lists every tree.
func (c *Client) Trees(ctx context.Context) ([]Tree, error) {
	var out []Tree
	return out, c.do(ctx, http.MethodGet, "/api/v1/trees", nil, &out)
}

// Tree returns one tree; a *Problem with Status 404 if it does not exist.
func (c *Client) Tree(ctx context.Context, name string) (Tree, error) {
	var out Tree
	return out, c.do(ctx, http.MethodGet, "/api/v1/trees/"+url.PathEscape(name), nil, &out)
}

// CreateTree declares a tree.
func (c *Client) CreateTree(ctx context.Context, t Tree) (Tree, error) {
	var out Tree
	return out, c.do(ctx, http.MethodPost, "/api/v1/trees", t, &out)
}

// CreateSite declares a site.
func (c *Client) CreateSite(ctx context.Context, s Site) (Site, error) {
	var out Site
	return out, c.do(ctx, http.MethodPost, "/api/v1/sites", s, &out)
}

// Sites lists every site.
func (c *Client) Sites(ctx context.Context) ([]Site, error) {
	var out []Site
	return out, c.do(ctx, http.MethodGet, "/api/v1/sites", nil, &out)
}

// Subscribe subscribes a site to a tree.
func (c *Client) Subscribe(ctx context.Context, s Subscription) (Subscription, error) {
	var out Subscription
	return out, c.do(ctx, http.MethodPost, "/api/v1/subscriptions", s, &out)
}

// Subscriptions lists the subscriptions to a tree.
func (c *Client) Subscriptions(ctx context.Context, tree string) ([]Subscription, error) {
	var out []Subscription
	return out, c.do(ctx, http.MethodGet, "/api/v1/trees/"+url.PathEscape(tree)+"/subscriptions", nil, &out)
}

// Sync triggers a sync of a tree now.
func (c *Client) Sync(ctx context.Context, tree string) (SyncAccepted, error) {
	return c.SyncWith(ctx, tree, SyncRequest{})
}

// SyncWith triggers a sync of a tree now with options.
func (c *Client) SyncWith(ctx context.Context, tree string, r SyncRequest) (SyncAccepted, error) {
	var out SyncAccepted
	var body any
	if r != (SyncRequest{}) {
		body = r
	}
	return out, c.do(ctx, http.MethodPost, "/api/v1/trees/"+url.PathEscape(tree)+"/sync", body, &out)
}

// Runs lists sync runs, newest first, optionally for one tree and/or site:
// the first page of RunPage (the server's default size).
func (c *Client) Runs(ctx context.Context, tree, site string) ([]Run, error) {
	out, _, err := c.RunPage(ctx, RunQuery{Tree: tree, Site: site})
	return out, err
}

// Versions lists the published versions of a tree, newest first.
func (c *Client) Versions(ctx context.Context, tree string) ([]Version, error) {
	var out []Version
	return out, c.do(ctx, http.MethodGet, "/api/v1/trees/"+url.PathEscape(tree)+"/versions", nil, &out)
}

// Overview returns every site × tree.
func (c *Client) Overview(ctx context.Context) ([]OverviewRow, error) {
	return c.OverviewOf(ctx, Place{})
}

// Place selects the rows of one site and/or one tree; "" matches all.
// Sort orders the overview and the alarms: tree (the default), site or
// -lag (the longest behind first); failing takes none.
type Place struct{ Site, Tree, Sort string }

func (p Place) query(path string) string {
	if v := setGiven(url.Values{}, [2]string{"site", p.Site}, [2]string{"tree", p.Tree}, [2]string{"sort", p.Sort}); len(v) > 0 {
		return path + "?" + v.Encode()
	}
	return path
}

// OverviewOf is the overview of the site and tree p names.
func (c *Client) OverviewOf(ctx context.Context, p Place) ([]OverviewRow, error) {
	var out []OverviewRow
	return out, c.do(ctx, http.MethodGet, p.query("/api/v1/overview"), nil, &out)
}

// SigningKeys lists every pack-signing key, revoked ones included, oldest
// first.
func (c *Client) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var out []SigningKey
	return out, c.do(ctx, http.MethodGet, "/api/v1/keys", nil, &out)
}

// AddSigningKey registers a public key (PEM) under a name, so that
// site-agents trust packs it signed. Adding a key again under the same name
// returns it unchanged.
func (c *Client) AddSigningKey(ctx context.Context, name, publicKeyPEM string) (SigningKey, error) {
	var out SigningKey
	return out, c.do(ctx, http.MethodPost, "/api/v1/keys", SigningKeyCreate{Name: name, PublicKey: publicKeyPEM}, &out)
}

// RevokeSigningKey revokes a key by id; site-agents stop trusting it.
func (c *Client) RevokeSigningKey(ctx context.Context, id string) (SigningKey, error) {
	var out SigningKey
	return out, c.do(ctx, http.MethodPost, "/api/v1/keys/"+url.PathEscape(id)+"/revoke", nil, &out)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	_, err := c.doHeader(ctx, method, path, nil, in, out)
	return err
}

// doHeader is do with extra request headers; it returns the response's.
func (c *Client) doHeader(ctx context.Context, method, path string, hdr http.Header, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		p := &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		_ = json.Unmarshal(data, p) // a non-problem body keeps the status text
		return nil, fmt.Errorf("%s %s: %w", method, path, p)
	}
	if out == nil {
		return resp.Header, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return resp.Header, nil
}
