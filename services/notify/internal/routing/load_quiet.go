package routing

import (
	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// Quiet hours are written like the escalation rules' calendars (see yamlconf.Calendar): a time
// zone and hours: day or day-range keys with "HH:MM-HH:MM" ranges. The calendar's "working"
// time is the quiet time; there are no holidays.

// quietHours reads a route's quiet_hours: and names them for logs; nil when they have problems.
func (l *loader) quietHours(n *yaml.Node, path string) (*calendar.Calendar, string) {
	c, loc := l.Calendar(n, path, yamlconf.CalendarSpec{
		What:      "quiet",
		HoursHint: `when to hold notifications back, e.g. mon-fri: ["00:00-08:00", "18:00-24:00"]`,
	})
	if c == nil {
		return nil, ""
	}
	return c, loc.String() + " quiet hours"
}
