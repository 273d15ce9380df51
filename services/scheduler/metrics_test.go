package scheduler

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pulpdist/pulpdist/libs/bus"
)

// TestMetricsCountWhatIsStored: what the stream drops as a duplicate (a
// retried handler, another instance firing the same minute) is not counted
// again.
func TestMetricsCountWhatIsStored(t *testing.T) {
	js, _ := startBus(t)
	out := testSender(t, js)
	root := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cmd := bus.SyncCommand{V: bus.MessageVersion, RunID: "run-1", TriggerID: "t-1", Site: "site-a", Tree: "demo", Kind: bus.CommandApply, To: root}
	trig := bus.Trigger{V: bus.MessageVersion, TriggerID: "t-1", Tree: "demo", Reason: "schedule", RequestedAt: time.Now().UTC()}
	req := bus.DeltaRequest{V: bus.MessageVersion, TriggerID: "t-1", Tree: "demo", To: root}
	for range 3 {
		if err := out.Command(t.Context(), cmd); err != nil {
			t.Fatal(err)
		}
		if err := out.Trigger(t.Context(), trig); err != nil {
			t.Fatal(err)
		}
		if err := out.RequestDelta(t.Context(), req, "req-1"); err != nil {
			t.Fatal(err)
		}
	}
	for name, got := range map[string]float64{
		"commands": testutil.ToFloat64(out.metrics.commands.WithLabelValues("demo", "apply", "false")),
		"triggers": testutil.ToFloat64(out.metrics.triggers.WithLabelValues("demo", "schedule")),
		"deltas":   testutil.ToFloat64(out.metrics.deltas.WithLabelValues("demo")),
	} {
		if got != 1 {
			t.Errorf("%s counted %v times, want once", name, got)
		}
	}
}
