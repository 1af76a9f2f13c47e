// Command console serves the supervisors' web console: team and agent KPIs, escalations and
// deliveries, read from kpi, escalation and notify with the signed-in person's own credential.
package main

import (
	"os"

	"github.com/ticketpulse/ticketpulse/services/console/internal/app"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
)

func main() {
	var cfg app.Config
	os.Exit(service.Main(app.Spec, os.Args[1:], os.Stderr, &cfg, app.Run))
}
