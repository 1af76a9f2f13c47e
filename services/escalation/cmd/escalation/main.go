// Command escalation runs SLA timers and escalation rules over ticket events and KPI snapshots.
package main

import (
	"os"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/app"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
)

func main() {
	var cfg app.Config
	os.Exit(service.Main(app.Spec, os.Args[1:], os.Stderr, &cfg, app.Run))
}
