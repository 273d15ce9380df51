package inventoryapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ProvisionAgentToken makes sure the file at path holds a live agent token
// of site, for a site-agent to read (PULPDIST_AGENT_TOKEN_FILE), as
// ProvisionToken.
func ProvisionAgentToken(ctx context.Context, admin *Client, site, path, name string) (string, bool, error) {
	return ProvisionToken(ctx, admin, TokenCreate{Role: "agent", Site: site, Name: name}, path)
}

// ProvisionToken makes sure the file at path holds a live token of the
// role (and site) want names: an agent token for a site-agent, a viewer
// token for a scheduler. A token already in the file is kept while the
// inventory accepts it as such; otherwise admin creates one and the file
// is replaced atomically, mode 0600. It returns the token and whether it
// made it, so running it again (every deployment start) changes nothing.
func ProvisionToken(ctx context.Context, admin *Client, want TokenCreate, path string) (string, bool, error) {
	what := want.Role + " token"
	if want.Site != "" {
		what += " of " + want.Site
	}
	if want.Role != "agent" && want.Role != "viewer" {
		return "", false, fmt.Errorf("%s: provision makes agent and viewer tokens only", what)
	}
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		live, err := tokenLive(ctx, admin.WithToken(tok), want)
		if err != nil {
			return "", false, fmt.Errorf("%s in %s: %w", what, path, err)
		}
		if live {
			return tok, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	tc, err := admin.CreateToken(ctx, want)
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", what, err)
	}
	if err := writeFileAtomic(path, []byte(tc.Secret+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("%s (token %s made; revoke it): %w", what, tc.ID, err)
	}
	return tc.Secret, true, nil
}

// tokenLive reports whether c's token is a live token as want says. An
// agent token of the site may read the site (404 while the site is not
// declared yet); one of another site gets 403. A viewer token reads the
// trees but not the tokens (an admin token would). An unknown or revoked
// token gets 401.
func tokenLive(ctx context.Context, c *Client, want TokenCreate) (bool, error) {
	if want.Role == "agent" {
		_, err := c.Site(ctx, want.Site)
		return answered(err, http.StatusNotFound)
	}
	if _, err := c.Trees(ctx); err != nil {
		return answered(err)
	}
	_, err := c.Tokens(ctx)
	if err == nil { // more than a viewer
		return false, nil
	}
	live, err := answered(err)
	return !live && err == nil, err
}

// answered is whether err is a success (nil, or a problem with one of the
// statuses ok), false for a refusal of the token (401, 403), and err
// itself otherwise.
func answered(err error, ok ...int) (bool, error) {
	var p *Problem
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &p) && slices.Contains(ok, p.Status):
		return true, nil
	case errors.As(err, &p) && (p.Status == http.StatusUnauthorized || p.Status == http.StatusForbidden):
		return false, nil
	}
	return false, err
}

// writeFileAtomic replaces path with data: written beside it, synced,
// then renamed over it, so a reader never sees half a file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
