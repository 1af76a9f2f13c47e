// Command ingest accepts ticket events over HTTP and publishes them to the TICKETS stream.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/app"
	"github.com/ticketpulse/ticketpulse/services/platform/envflag"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
)

const summary = "ingest accepts canonical ticket events on POST /v1/tenants/{tenant}/events and answers 202\nonly after JetStream stored every one of them in the TICKETS stream."

func main() {
	var common service.Common
	var cfg app.Config
	os.Exit(service.Main("ingest", summary, os.Args[1:], os.Stderr, &common,
		func(s *envflag.Set) {
			common.Register(s, false)
			cfg.Register(s)
		},
		func(ctx context.Context, log *slog.Logger) error {
			cfg.NATSURL = common.NATSURL
			cfg.OTLPEndpoint = common.OTLPEndpoint
			return app.Run(ctx, cfg, log)
		}))
}
