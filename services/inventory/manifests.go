package inventory

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/tree"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// manifestStore reads manifests from the object store the origins
// publish them to (bus.BucketManifests).
type manifestStore struct{ store jetstream.ObjectStore }

// Manifest implements catalog.ManifestSource.
func (m manifestStore) Manifest(ctx context.Context, treeName, root string) (*tree.Manifest, error) {
	name := bus.ManifestObject(treeName, root)
	r, err := m.store.Get(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, fmt.Errorf("%w: %s", catalog.ErrManifestNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("get manifest %s: %w", name, err)
	}
	defer r.Close()
	man, err := tree.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", name, err)
	}
	if man.Root() != root {
		return nil, fmt.Errorf("manifest %s: its root is %s", name, man.Root())
	}
	return man, nil
}
