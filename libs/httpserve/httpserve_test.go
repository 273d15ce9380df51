package httpserve_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pulpdist/pulpdist/libs/httpserve"
)

// TestShutdownWithAConnectionThatSentNothing: a client connected but
// without a request yet (as an HTTP client dials ahead) does not fail
// the shutdown.
func TestShutdownWithAConnectionThatSentNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s, err := httpserve.Listen(ctx, "127.0.0.1:0", http.NotFoundHandler())
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The server has the connection once it answers a request on another.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(2 * httpserve.ShutdownBudget):
		t.Fatal("Serve did not return")
	}
}
