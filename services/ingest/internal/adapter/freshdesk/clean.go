package freshdesk

import (
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
)

// parseTime reads a Freshdesk timestamp (timeLayouts) as UTC, rejecting what the canonical form
// cannot hold.
func parseTime(s, field string) (time.Time, error) {
	return adapter.ParseTime(s, field, "a timestamp Freshdesk renders (e.g. 2026-11-20 09:00:00 UTC)", timeLayouts)
}
