// Package natsembed runs the real NATS server (nats-server/v2) with JetStream inside the process,
// for the development stack and for tests.
package natsembed

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configure an embedded server.
type Options struct {
	// Addr is host:port; port 0 picks a free one. Only loopback hosts are sensible here.
	Addr string
	// StoreDir holds the JetStream file store.
	StoreDir string
	// Sync is "always" (fsync every write before acknowledging) or a duration such as "2m".
	Sync string
	// Name appears in the server's logs and monitoring.
	Name string
	// Configure, when set, changes the server's options last: users and their permissions,
	// accounts, TLS. Without it the server lets every client in, as the local stack wants.
	Configure func(*server.Options)
}

// ParseSync validates a sync setting: "always" or a positive duration.
func ParseSync(s string) (always bool, interval time.Duration, err error) {
	if s == "always" {
		return true, 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return false, 0, fmt.Errorf("sync interval %q: want \"always\" or a positive duration such as 2m", s)
	}
	return false, d, nil
}

// Start runs a server and waits until it accepts clients.
func Start(o Options) (*server.Server, error) {
	host, portStr, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("nats address %q: %w", o.Addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats address %q: bad port", o.Addr)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	always, interval, err := ParseSync(o.Sync)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName:   o.Name,
		Host:         host,
		Port:         port,
		JetStream:    true,
		StoreDir:     o.StoreDir,
		SyncAlways:   always,
		SyncInterval: interval,
		NoSigs:       true,
		NoLog:        true,
		HTTPPort:     0,
	}
	if o.Configure != nil {
		o.Configure(opts)
	}
	if always {
		// The server keeps a background interval too; a short one changes nothing when every write syncs.
		opts.SyncInterval = 2 * time.Minute
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("new nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server on %s not ready after 10s", o.Addr)
	}
	return s, nil
}
