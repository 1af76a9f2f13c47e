// Command notify delivers escalations to chat webhooks, signed webhooks and e-mail, with retries.
package main

import (
	"os"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/app"
	"github.com/ticketpulse/ticketpulse/services/platform/service"
)

func main() {
	var cfg app.Config
	os.Exit(service.Main(app.Spec, os.Args[1:], os.Stderr, &cfg, app.Run))
}
