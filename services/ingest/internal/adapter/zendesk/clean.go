package zendesk

import (
	"time"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
)

// Layouts Zendesk renders timestamps in: RFC 3339 in event payloads, and the minute-precision
// ISO 8601 form ("2013-12-12T05:35Z") the *_with_timestamp placeholders are documented with.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"}

// parseTime reads a Zendesk timestamp as UTC, rejecting what the canonical form cannot hold.
func parseTime(s, field string) (time.Time, error) {
	return adapter.ParseTime(s, field, "an ISO 8601 timestamp", timeLayouts)
}
