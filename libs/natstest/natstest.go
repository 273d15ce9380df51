// Package natstest starts a real, embedded JetStream server for a test.
package natstest

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/pulpdist/pulpdist/libs/natsembed"
)

// Server is a running test server.
type Server struct {
	// URL is its client URL; it stays the same across Restart.
	URL string

	port int
	dir  string
	mu   sync.Mutex
	s    *server.Server
}

// current is the server running now (Restart replaces it).
func (s *Server) current() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s
}

// Received counts the messages the server has received from clients so
// far: requests included, so a test can bound the traffic of an operation.
func (s *Server) Received() uint64 {
	v, err := s.current().Varz(nil)
	if err != nil {
		return 0 // only when shut down
	}
	return uint64(v.InMsgs)
}

// APICalls counts the JetStream API requests the server has served so
// far (stream and consumer management, info; not direct gets).
func (s *Server) APICalls() uint64 {
	v, err := s.current().Varz(nil)
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
	dir := tb.TempDir()
	s, err := natsembed.Start(natsembed.Options{Port: -1, StoreDir: dir})
	if err != nil {
		tb.Fatalf("start embedded nats: %v", err)
	}
	addr, ok := s.Addr().(*net.TCPAddr)
	if !ok {
		s.Shutdown()
		tb.Fatalf("embedded nats listens on %v, not TCP", s.Addr())
	}
	srv := &Server{URL: s.ClientURL(), port: addr.Port, dir: dir, s: s}
	tb.Cleanup(func() {
		// Services started by the test have stopped (cleanups run last
		// first): what they published is all there.
		ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
		for _, err := range CheckEvents(ctx, srv.URL) {
			tb.Error(err)
		}
		cancel()
		s := srv.current()
		s.Shutdown()
		s.WaitForShutdown()
	})
	return srv
}

// Restart shuts the server down and starts it again on the same port
// with the same store, as an operator restarts NATS: every client loses
// its connection and reconnects to the URL it knows, and JetStream finds
// its streams, consumers and stored messages as they were.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.s.Shutdown()
	s.s.WaitForShutdown()
	ns, err := natsembed.Start(natsembed.Options{Port: s.port, StoreDir: s.dir})
	if err != nil {
		tb.Fatalf("restart embedded nats on port %d: %v", s.port, err)
	}
	s.s = ns
}
