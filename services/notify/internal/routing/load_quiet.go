package routing

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
	"github.com/ticketpulse/ticketpulse/services/platform/yamlconf"
)

// Quiet hours are written like the escalation rules' calendars (services/escalation/internal/
// rules/load_calendar.go, whose parsing this copies until it is shared): a time zone and hours:
// day or day-range keys with "HH:MM-HH:MM" ranges. The calendar's "working" time is the quiet
// time; there are no holidays.

// days are the day keys of hours:, in the order ranges run (a week starts on Monday).
var days = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// weekday maps a position in days to calendar's index, time.Weekday.
func weekday(i int) time.Weekday { return time.Weekday((i + 1) % 7) }

var timeRange = regexp.MustCompile(`^(\d\d):(\d\d)\s*-\s*(\d\d):(\d\d)$`)

// quietHours reads a route's quiet_hours: and names them for logs; nil when they have problems.
func (l *loader) quietHours(n *yaml.Node, path string) (*calendar.Calendar, string) {
	before := len(l.Problems)
	f, ok := l.Fields(n, path, "time_zone", "hours")
	if !ok {
		return nil, ""
	}
	var loc *time.Location
	if p, ok := f["time_zone"]; ok {
		loc = l.timeZone(p.Val, path+".time_zone")
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing time_zone: (an IANA name such as Europe/Berlin)", path)
	}
	var week [7][]calendar.Interval
	if p, ok := f["hours"]; ok {
		week = l.hours(p.Val, path+".hours")
	} else {
		l.Addf(yamlconf.Resolve(n), "%s: missing hours: (when to hold notifications back, e.g. mon-fri: [\"00:00-08:00\", \"18:00-24:00\"])", path)
	}
	if len(l.Problems) > before {
		return nil, ""
	}
	c, err := calendar.New(loc, week, nil)
	if err != nil {
		// The checks above should leave nothing for New to refuse; this keeps its word final.
		l.Addf(yamlconf.Resolve(n), "%s: %v", path, err)
		return nil, ""
	}
	return c, loc.String() + " quiet hours"
}

func (l *loader) timeZone(n *yaml.Node, path string) *time.Location {
	name, ok := l.Str(n, path)
	if !ok {
		return nil
	}
	// "Local" would make the hours depend on the host the service runs on.
	if name == "Local" {
		l.Addf(n, "%s: name the zone (e.g. Europe/Berlin) rather than the host's Local", path)
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		l.Addf(n, "%s: unknown time zone %q (want an IANA name such as Europe/Berlin)", path, name)
		return nil
	}
	return loc
}

// hours reads the weekly schedule: day or day-range keys, each day at most once.
func (l *loader) hours(n *yaml.Node, path string) [7][]calendar.Interval {
	var week [7][]calendar.Interval
	var firstLine [7]int
	entries, ok := l.Pairs(n, path)
	if !ok {
		return week
	}
	for _, e := range entries {
		key := e.Key.Value
		span, ok := dayRange(key)
		if !ok {
			l.Addf(e.Key, "%s: unknown day %q (want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri)", path, key)
		}
		for _, i := range span {
			if line := firstLine[i]; line != 0 {
				l.Addf(e.Key, "%s: %s already has hours (line %d)", path, days[i], line)
				ok = false
			}
		}
		ivs := l.intervals(e.Val, yamlconf.Join(path, key))
		if !ok {
			continue
		}
		for _, i := range span {
			firstLine[i] = e.Key.Line
			week[weekday(i)] = ivs
		}
	}
	if len(entries) == 0 {
		l.Addf(yamlconf.Resolve(n), "%s: no quiet hours on any day", path)
	}
	return week
}

// dayRange reads "mon" or "mon-fri" as positions in days; a range may not wrap past Sunday.
func dayRange(key string) ([]int, bool) {
	from, to, isRange := strings.Cut(key, "-")
	if !isRange {
		to = from
	}
	a, b := slices.Index(days, from), slices.Index(days, to)
	if a < 0 || b < 0 || a > b || (isRange && a == b) {
		return nil, false
	}
	out := make([]int, 0, b-a+1)
	for i := a; i <= b; i++ {
		out = append(out, i)
	}
	return out, true
}

// intervals reads one day's "HH:MM-HH:MM" ranges (one, or a list), which must not overlap.
func (l *loader) intervals(n *yaml.Node, path string) []calendar.Interval {
	var out []calendar.Interval
	count, ok := l.OneOrMany(n, path, func(item *yaml.Node, path string) {
		s, ok := l.Str(item, path)
		if !ok {
			return
		}
		iv, reason := parseInterval(s)
		if reason != "" {
			l.Addf(item, "%s: %q %s", path, s, reason)
			return
		}
		for _, prev := range out {
			if iv.From < prev.To && prev.From < iv.To {
				l.Addf(item, "%s: %s overlaps %s", path, iv, prev)
				return
			}
		}
		out = append(out, iv)
	})
	if ok && count == 0 {
		l.Addf(yamlconf.Resolve(n), "%s: want at least one time range, not an empty list", path)
	}
	return out
}

// parseInterval reads "09:00-17:00"; the end may be 24:00 and must come after the start. It
// answers why s is not a range, or "".
func parseInterval(s string) (calendar.Interval, string) {
	m := timeRange.FindStringSubmatch(s)
	if m == nil {
		return calendar.Interval{}, "is not a time range (write e.g. 09:00-17:00)"
	}
	from, ok1 := clock(m[1], m[2])
	to, ok2 := clock(m[3], m[4])
	switch {
	case !ok1 || !ok2 || from == 24*60:
		return calendar.Interval{}, "is not a time range (times run from 00:00 to 24:00)"
	case from >= to:
		return calendar.Interval{}, "does not end after it starts"
	}
	return calendar.Interval{From: from, To: to}, ""
}

// clock reads HH and MM as minutes after midnight; 24:00 is the end of the day.
func clock(hh, mm string) (int, bool) {
	h, _ := strconv.Atoi(hh)
	m, _ := strconv.Atoi(mm)
	if h > 24 || m > 59 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}
