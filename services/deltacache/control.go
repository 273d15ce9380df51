package deltacache

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/pulpdist/pulpdist/libs/bus"
	"github.com/pulpdist/pulpdist/libs/control"
)

// control is the instance on the bus's request-reply side: its status, on
// subjects of this instance alone (each builds its own deltas).
func (s *Service) control() control.Config {
	return control.Config{
		Service:     bus.ServiceDeltaCache,
		Instance:    s.cfg.Instance,
		PerInstance: true,
		Description: "pulpdist delta-cache: computes each delta once across its instances and stores the pack",
		Status:      s.status,
	}
}

// status adds the deltas this instance is computing, oldest first, to the
// common status.
func (s *Service) status(_ context.Context, common bus.ServiceStatus) (any, error) {
	st := bus.DeltaCacheStatus{ServiceStatus: common, Computing: []bus.DeltaInFlight{}, Effort: cmp.Or(s.cfg.Effort, EffortAuto)}
	s.computing.Range(func(_, v any) bool {
		st.Computing = append(st.Computing, v.(bus.DeltaInFlight))
		return true
	})
	slices.SortFunc(st.Computing, func(a, b bus.DeltaInFlight) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), strings.Compare(bus.DeltaID(a.Tree, a.From, a.To), bus.DeltaID(b.Tree, b.From, b.To)))
	})
	return st, nil
}

// track records that this instance computes the delta id for req from
// start on, for the status, until the returned function is called.
func (s *Service) track(req bus.DeltaRequest, id string, start time.Time) (done func()) {
	s.computing.Store(id, bus.DeltaInFlight{Tree: req.Tree, From: req.From, To: req.To, TriggerID: req.TriggerID, Sites: max(req.Sites, 1), StartedAt: start.UTC()})
	return func() { s.computing.Delete(id) }
}
