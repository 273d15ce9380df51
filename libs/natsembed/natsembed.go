// Package natsembed runs a NATS server with JetStream inside the process,
// for `pulpdist dev` and for tests.
package natsembed

import (
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options choose where the embedded server listens and stores.
type Options struct {
	Host string // default 127.0.0.1
	// Port to listen on; -1 picks a random free port. 0 is refused because
	// nats-server reads it as the standard 4222.
	Port     int
	StoreDir string
}

// Start runs a JetStream-enabled server and waits until it accepts clients.
// The caller stops it with Shutdown and WaitForShutdown.
func Start(o Options) (*server.Server, error) {
	if o.Port == 0 {
		return nil, fmt.Errorf("embedded nats: port 0 means 4222 to nats-server; use -1 for a random port")
	}
	if o.StoreDir == "" {
		return nil, fmt.Errorf("embedded nats: store directory required")
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	s, err := server.NewServer(&server.Options{
		ServerName: "pulpdist-embedded",
		Host:       host,
		Port:       o.Port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 10s")
	}
	return s, nil
}
