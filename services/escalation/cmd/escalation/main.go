// Command escalation runs SLA timers and escalation rules over ticket events and KPI snapshots.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/app"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
)

func main() {
	var cfg app.Config
	os.Exit(service.Main(app.Name,
		"escalation raises escalations from ticket events and KPI snapshots (SLA timers, rules) and serves EscalationService over gRPC.",
		os.Args[1:], os.Stderr, &cfg.Common, cfg.Register,
		func(ctx context.Context, log *slog.Logger) error { return app.Run(ctx, cfg, log) }))
}
