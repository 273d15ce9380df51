package inventoryapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// ProvisionAgentToken makes sure the file at path holds a live agent token
// of site, for a site-agent to read (PULPDIST_AGENT_TOKEN_FILE). A token
// already in the file is kept while the inventory accepts it for the
// site; otherwise admin creates one (named name) and the file is replaced
// atomically, mode 0600. It returns the token and whether it made it, so
// running it again (every deployment start) changes nothing.
func ProvisionAgentToken(ctx context.Context, admin *Client, site, path, name string) (string, bool, error) {
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		live, err := agentTokenLive(ctx, admin.WithToken(tok), site)
		if err != nil {
			return "", false, fmt.Errorf("agent token of %s in %s: %w", site, path, err)
		}
		if live {
			return tok, false, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", false, fmt.Errorf("agent token of %s: %w", site, err)
	}
	tc, err := admin.CreateToken(ctx, TokenCreate{Role: "agent", Site: site, Name: name})
	if err != nil {
		return "", false, fmt.Errorf("agent token of %s: %w", site, err)
	}
	if err := writeFileAtomic(path, []byte(tc.Secret+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("agent token of %s (token %s made; revoke it): %w", site, tc.ID, err)
	}
	return tc.Secret, true, nil
}

// agentTokenLive reports whether c's token is a live agent token of site:
// it may read the site (404 while the site is not declared yet); an
// unknown or revoked token gets 401, one of another site 403.
func agentTokenLive(ctx context.Context, c *Client, site string) (bool, error) {
	_, err := c.Site(ctx, site)
	var p *Problem
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &p) && p.Status == http.StatusNotFound:
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
