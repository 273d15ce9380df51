// Package demo seeds a fresh `pulpdist dev` with something to look at: an
// origin tree on disk and, through the REST API, two replica sites
// subscribed to it.
package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
)

// Names of what the demo declares.
const (
	Tree   = "demo"
	Origin = "origin"
)

// Replicas are the demo's replica sites.
var Replicas = []string{"site-a", "site-b"}

// Sites are every demo site, origin first.
func Sites() []string { return append([]string{Origin}, Replicas...) }

// WriteTree creates the demo origin tree under dir if it does not exist and
// returns its path.
func WriteTree(dir string) (string, error) {
	src := filepath.Join(dir, "origin", Tree)
	if _, err := os.Stat(src); err == nil {
		return src, nil
	}
	files := []struct {
		path, body string
		mode       os.FileMode
	}{
		{"README.txt", "This tree is mirrored by pulpdist. Edit it and run: pulpdist sync demo\n", 0o644},
		{"bin/hello.sh", "#!/bin/sh\necho hello from pulpdist\n", 0o755},
		{"data/numbers.csv", numbers(2000), 0o644},
		{"docs/guide.md", "# Guide\n\nChange any file under the origin tree, then trigger a sync.\n", 0o644},
	}
	for _, f := range files {
		p := filepath.Join(src, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", fmt.Errorf("demo tree: %w", err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			return "", fmt.Errorf("demo tree: %w", err)
		}
	}
	if err := os.Symlink("../README.txt", filepath.Join(src, "docs", "README.txt")); err != nil {
		return "", fmt.Errorf("demo tree: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(src, "empty"), 0o755); err != nil {
		return "", fmt.Errorf("demo tree: %w", err)
	}
	return src, nil
}

func numbers(n int) string {
	b := []byte("n,square\n")
	for i := range n {
		b = fmt.Appendf(b, "%d,%d\n", i, i*i)
	}
	return string(b)
}

// Declare creates the demo sites, tree and subscriptions; what already
// exists (a restarted dev) is left as it is.
func Declare(ctx context.Context, c *inventoryapi.Client, source string) error {
	for _, s := range Sites() {
		if _, err := c.CreateSite(ctx, inventoryapi.Site{Name: s, Description: "demo site"}); ignoreExists(err) != nil {
			return err
		}
	}
	tree := inventoryapi.Tree{Name: Tree, OriginSite: Origin, Source: source, Schedule: "*/5 * * * *", Keep: 2}
	if _, err := c.CreateTree(ctx, tree); ignoreExists(err) != nil {
		return err
	}
	for _, s := range Replicas {
		if _, err := c.Subscribe(ctx, inventoryapi.Subscription{Site: s, Tree: Tree}); ignoreExists(err) != nil {
			return err
		}
	}
	return nil
}

func ignoreExists(err error) error {
	var p *inventoryapi.Problem
	if errors.As(err, &p) && p.Status == http.StatusConflict {
		return nil
	}
	return err
}
