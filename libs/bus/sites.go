package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// GetSiteVersion returns the version of tree that site serves, "" if none
// is recorded.
func GetSiteVersion(ctx context.Context, kv jetstream.KeyValue, site, tree string) (string, error) {
	e, err := kv.Get(ctx, SiteVersionKey(site, tree))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("site version %s/%s: %w", site, tree, err)
	}
	var v SiteVersion
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		return "", fmt.Errorf("site version %s/%s: %w", site, tree, err)
	}
	if err := ValidateVersion(v.Root, true); err != nil {
		return "", fmt.Errorf("site version %s/%s: %w", site, tree, err)
	}
	return v.Root, nil
}

// PutSiteVersion records that site serves root of tree.
func PutSiteVersion(ctx context.Context, kv jetstream.KeyValue, site, tree, root string) error {
	b, err := json.Marshal(SiteVersion{Root: root, UpdatedAt: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("site version %s/%s: %w", site, tree, err)
	}
	if _, err := kv.Put(ctx, SiteVersionKey(site, tree), b); err != nil {
		return fmt.Errorf("site version %s/%s: %w", site, tree, err)
	}
	return nil
}
