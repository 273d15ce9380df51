package inventory

import (
	"context"
	"fmt"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
)

// control is the inventory on the bus's request-reply side: its status,
// on a subject every instance shares (they share one database).
func (s *Service) control() control.Config {
	return control.Config{
		Service:     bus.ServiceInventory,
		Instance:    s.instance,
		Description: "pulpdist inventory: the record of trees, sites, subscriptions, versions and runs; REST API at " + s.URL(),
		Ready:       s.probe.Ready,
		Status:      s.status,
	}
}

// status adds the catalog's counts to the common status.
func (s *Service) status(ctx context.Context, common bus.ServiceStatus) (any, error) {
	c, err := s.catalog.Counts(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", control.ErrUnavailable, err)
	}
	return bus.InventoryStatus{
		ServiceStatus: common, Sites: c.Sites, Trees: c.Trees, Subscriptions: c.Subscriptions, Versions: c.Versions,
		Running: c.Running, Failing: c.Failing, Behind: c.Behind,
	}, nil
}
