// Package httpserve runs an HTTP server bound before it serves (so ":0"
// gives a random port a test can read) and shuts it down with the context.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ShutdownBudget is how long in-flight requests get once the context ends.
// It is more than the 5 s net/http waits before it treats a connection
// that has not sent its first request as idle and closes it: a client
// that has just connected (an HTTP client dials ahead of its request, and
// keeps the connection when the request is cancelled) would otherwise make
// every shutdown in that moment fail.
const ShutdownBudget = 10 * time.Second

// Server is a bound, not yet serving, HTTP server.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen binds addr (host:port; port 0 picks a free one).
func Listen(ctx context.Context, addr string, h http.Handler) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// Addr is the bound address, host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is http://Addr().
func (s *Server) URL() string { return "http://" + s.Addr() }

// Serve answers requests until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownBudget)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
