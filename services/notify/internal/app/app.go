// Package app wires the notify service. Until its own work lands it is the platform shell: NATS,
// Redis, the gRPC server (health and reflection) and the HTTP server with /healthz, /readyz and
// /metrics.
package app

import (
	"context"
	"log/slog"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/shell"
)

// Name is the service name in logs, traces and the NATS connection.
const Name = "notify"

// Default listen addresses (loopback; override with -grpc-addr and -http-addr).
const (
	DefaultGRPCAddr = "127.0.0.1:9092"
	DefaultHTTPAddr = "127.0.0.1:9192"
)

// Config is everything the service reads from flags and the environment.
type Config struct{ shell.Config }

// Register declares the settings on s.
func (c *Config) Register(s *envflag.Set) {
	c.Config.Register(s, DefaultGRPCAddr, DefaultHTTPAddr, "NotificationService, health, reflection")
}

// Run serves until ctx ends. A clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return shell.Run(ctx, Name, cfg.Config, log)
}
