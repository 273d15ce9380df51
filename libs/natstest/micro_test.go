package natstest_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/pulpdist/pulpdist/libs/natstest"
)

// TestDiscoverWaitsForServices: asked before any service registered, the
// server answers "no responders"; Discover asks again until the service
// that registers meanwhile answers.
func TestDiscoverWaitsForServices(t *testing.T) {
	url := natstest.Start(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	var svc micro.Service
	pings := natstest.Discover(t, nc, micro.PingVerb, "late", func(ps []micro.Ping) error {
		if svc == nil { // the first question went out with nobody to answer it
			if svc, err = micro.AddService(nc, micro.Config{Name: "late", Version: "1.0.0"}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = svc.Stop() }) // the connection closes anyway
		}
		if len(ps) != 1 {
			return errors.New("not answered yet")
		}
		return nil
	})
	if pings[0].Name != "late" || pings[0].Version != "1.0.0" {
		t.Errorf("ping %+v", pings[0])
	}
}
