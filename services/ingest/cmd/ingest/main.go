// Command ingest accepts ticket events over HTTP and publishes them to the TICKETS stream.
package main

import (
	"os"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/app"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
)

func main() {
	var cfg app.Config
	os.Exit(service.Main(app.Spec, os.Args[1:], os.Stderr, &cfg, app.Run))
}
