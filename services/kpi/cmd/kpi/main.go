// Command kpi consumes ticket events from JetStream, keeps per-agent and per-team KPIs in Redis and
// serves them over gRPC (ticketpulse.v1.KpiService).
package main

import (
	"os"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/app"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
)

func main() {
	var cfg app.Config
	os.Exit(service.Main(app.Spec, os.Args[1:], os.Stderr, &cfg, app.Run))
}
