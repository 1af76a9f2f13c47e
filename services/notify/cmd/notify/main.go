// Command notify delivers escalations to chat webhooks, signed webhooks and e-mail, with retries.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/app"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
)

func main() {
	var cfg app.Config
	os.Exit(service.Main(app.Name,
		"notify delivers escalations (chat webhook, signed webhook, e-mail) with retries until a deadline, and serves NotificationService over gRPC.",
		os.Args[1:], os.Stderr, &cfg.Common, cfg.Register,
		func(ctx context.Context, log *slog.Logger) error { return app.Run(ctx, cfg, log) }))
}
