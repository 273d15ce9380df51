// Package natstest starts a real, embedded JetStream server for a test.
package natstest

import (
	"testing"

	"github.com/pulpdist/pulpdist/libs/natsembed"
)

// Start runs an embedded JetStream server on a random port with a temporary
// store and returns its client URL. It stops when the test ends.
func Start(tb testing.TB) string {
	tb.Helper()
	s, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("start embedded nats: %v", err)
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}
