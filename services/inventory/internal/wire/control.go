package wire

import (
	"time"

	"github.com/pulpdist/pulpdist/libs/inventoryapi"
	"github.com/pulpdist/pulpdist/services/inventory/internal/catalog"
)

// VersionHistory is h on the wire.
func VersionHistory(h catalog.VersionHistory) inventoryapi.VersionHistory {
	out := inventoryapi.VersionHistory{Version: Version(h.Version), Arrivals: make([]inventoryapi.Arrival, 0, len(h.Arrivals))}
	for _, a := range h.Arrivals {
		out.Arrivals = append(out.Arrivals, inventoryapi.Arrival{Site: a.Site, ArrivedAt: a.At})
	}
	return out
}

// Alarm is a on the wire.
func Alarm(a catalog.Alarm) inventoryapi.Alarm {
	return inventoryapi.Alarm{OverviewRow: OverviewRow(a.OverviewRow), AllowedLagSeconds: int64(a.AllowedLag / time.Second)}
}

// DryRun is d on the wire.
func DryRun(d catalog.DryRun) inventoryapi.DryRun {
	return inventoryapi.DryRun{Site: d.Site, Tree: d.Tree, From: d.From, To: d.To, Set: d.Set, Files: d.Files, Bytes: d.Bytes, Remove: d.Remove}
}
