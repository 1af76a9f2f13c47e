package rulesfile

import (
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

func (l *loader) calendars(n *yaml.Node, path string, refs *tenantRefs) {
	entries, _ := l.Pairs(n, path)
	for _, e := range entries {
		valid := l.definedName(e.Key, path)
		c := l.calendar(e.Val, yamlconf.Join(path, e.Key.Value))
		if !valid {
			continue
		}
		refs.calendarNames = append(refs.calendarNames, e.Key.Value)
		if c != nil {
			refs.calendars[e.Key.Value] = c
		}
	}
}

// calendar reads one calendar: time_zone:, hours: (see yamlconf.Calendar) and holidays:; nil
// when it has problems.
func (l *loader) calendar(n *yaml.Node, path string) *calendar.Calendar {
	c, _ := l.Calendar(n, path, yamlconf.CalendarSpec{
		What:      "working",
		HoursHint: "the working hours, e.g. mon-fri: 09:00-17:00",
		Holidays:  l.holidays,
	})
	return c
}

// holidays reads the days off, YYYY-MM-DD, one or a list.
func (l *loader) holidays(n *yaml.Node, path string) []string {
	out, _ := l.UniqueItems(n, path, "", func(item *yaml.Node, path string) (string, bool) {
		s, ok := l.Str(item, path)
		if !ok {
			return "", false
		}
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			l.Addf(item, "%s: %q is not a date (write YYYY-MM-DD)", path, s)
			return "", false
		}
		return s, true
	})
	return out
}
