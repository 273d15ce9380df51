// Package natstest starts a real, embedded JetStream server for a test.
package natstest

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pulpdist/pulpdist/libs/natsembed"
)

// Server is a running test server.
type Server struct {
	// URL is its client URL.
	URL string
	s   *server.Server
}

// Received counts the messages the server has received from clients so
// far: requests included, so a test can bound the traffic of an operation.
func (s *Server) Received() uint64 {
	v, err := s.s.Varz(nil)
	if err != nil {
		return 0 // only when shut down
	}
	return uint64(v.InMsgs)
}

// APICalls counts the JetStream API requests the server has served so
// far (stream and consumer management, info; not direct gets).
func (s *Server) APICalls() uint64 {
	v, err := s.s.Varz(nil)
	if err != nil || v.JetStream.Stats == nil {
		return 0 // only when shut down
	}
	return v.JetStream.Stats.API.Total
}

// Start runs an embedded JetStream server on a random port with a temporary
// store and returns its client URL. It stops when the test ends.
func Start(tb testing.TB) string {
	tb.Helper()
	return Serve(tb).URL
}

// Serve is Start, returning the server.
func Serve(tb testing.TB) *Server {
	tb.Helper()
	s, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: tb.TempDir()})
	if err != nil {
		tb.Fatalf("start embedded nats: %v", err)
	}
	url := s.ClientURL()
	tb.Cleanup(func() {
		// Services started by the test have stopped (cleanups run last
		// first): what they published is all there.
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		for _, err := range CheckEvents(ctx, url) {
			tb.Error(err)
		}
		cancel()
		s.Shutdown()
		s.WaitForShutdown()
	})
	return &Server{URL: url, s: s}
}
