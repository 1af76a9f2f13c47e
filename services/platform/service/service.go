// Package service holds what every Ticketpulse binary's main does: common settings, the logger,
// turning SIGINT/SIGTERM into a cancelled context, and the exit code.
package service

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// Common settings shared by the services.
type Common struct {
	NATSURL      string
	RedisURL     string
	LogLevel     string
	LogFormat    string
	OTLPEndpoint string
}

// Register adds the common flags; withRedis is false for services that do not use Redis.
func (c *Common) Register(s *envflag.Set, withRedis bool) {
	s.String(&c.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL (JetStream must be enabled).")
	if withRedis {
		s.String(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis URL, e.g. redis://user:pass@127.0.0.1:6379/0.")
	}
	s.String(&c.LogLevel, "log-level", "info", "Log level: debug, info, warn or error.")
	s.String(&c.LogFormat, "log-format", "text", "Log format: text or json.")
	s.String(&c.OTLPEndpoint, "otlp-endpoint", "", "OTLP/gRPC trace collector host:port; empty keeps traces in-process (context still propagates).")
}

// Main parses args (with the environment as defaults), then runs run until it returns or a signal
// arrives. It returns the process exit code: 0 on success and after -h, 2 for bad settings, 1 on failure.
func Main(name, summary string, args []string, stderr io.Writer, common *Common,
	register func(*envflag.Set), run func(ctx context.Context, log *slog.Logger) error) int {
	s := envflag.New(name, summary, os.LookupEnv)
	s.SetOutput(stderr)
	register(s)
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	log, err := telemetry.NewLogger(stderr, common.LogLevel, common.LogFormat)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	log = log.With("service", name)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log); err != nil {
		log.Error("stopped with error", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}
