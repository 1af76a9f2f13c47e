package yamlconf

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
)

// Weekly hours are written as a mapping of day or day-range keys (mon, mon-fri) to one
// "HH:MM-HH:MM" range or a list of them; every day appears at most once, a range ends after it
// starts and may end at 24:00.

// days are the day keys of a weekly schedule, in the order ranges run (a week starts on Monday).
var days = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// weekday maps a position in days to calendar's index, time.Weekday.
func weekday(i int) time.Weekday { return time.Weekday((i + 1) % 7) }

var timeRange = regexp.MustCompile(`^(\d\d):(\d\d)\s*-\s*(\d\d):(\d\d)$`)

// CalendarSpec describes a calendar mapping: time_zone: (see TimeZone), hours: (see
// WeeklyHours) and, when Holidays is set, holidays:.
type CalendarSpec struct {
	// What the hours are, as in "no working hours on any day".
	What string
	// HoursHint explains a missing hours: key, as in "missing hours: (the working hours, e.g.
	// mon-fri: 09:00-17:00)".
	HoursHint string
	// Holidays, when set, allows a holidays: key and reads its dates (YYYY-MM-DD) for
	// calendar.New; it is called after the hours are read.
	Holidays func(n *yaml.Node, path string) []string
}

// Calendar reads a calendar mapping as spec describes it. It answers the calendar and its time
// zone, or nil and nil when the mapping has any problem.
func (l *Loader) Calendar(n *yaml.Node, path string, spec CalendarSpec) (*calendar.Calendar, *time.Location) {
	before := len(l.Problems)
	allowed := []string{"time_zone", "hours"}
	if spec.Holidays != nil {
		allowed = append(allowed, "holidays")
	}
	f, ok := l.Fields(n, path, allowed...)
	if !ok {
		return nil, nil
	}
	var loc *time.Location
	if p, ok := f["time_zone"]; ok {
		loc = l.TimeZone(p.Val, path+".time_zone")
	} else {
		l.Addf(Resolve(n), "%s: missing time_zone: (an IANA name such as Europe/Berlin)", path)
	}
	var week [7][]calendar.Interval
	if p, ok := f["hours"]; ok {
		week = l.WeeklyHours(p.Val, path+".hours", spec.What)
	} else {
		l.Addf(Resolve(n), "%s: missing hours: (%s)", path, spec.HoursHint)
	}
	var holidays []string
	if p, ok := f["holidays"]; ok {
		holidays = spec.Holidays(p.Val, path+".holidays")
	}
	if len(l.Problems) > before {
		return nil, nil
	}
	c, err := calendar.New(loc, week, holidays)
	if err != nil {
		// The checks above should leave nothing for New to refuse; this keeps its word final.
		l.Addf(Resolve(n), "%s: %v", path, err)
		return nil, nil
	}
	return c, loc
}

// TimeZone reads an IANA time zone name; nil when it is not one. The host's "Local" is refused,
// since it would make the hours depend on where the service runs. Loaders that read zones
// should import time/tzdata, so a file valid on a laptop is not refused in a container image
// without zoneinfo.
func (l *Loader) TimeZone(n *yaml.Node, path string) *time.Location {
	name, ok := l.Str(n, path)
	if !ok {
		return nil
	}
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

// WeeklyHours reads a weekly schedule: day or day-range keys, each day at most once, indexed by
// time.Weekday as calendar.New wants it. what names the hours in the message about a schedule
// without any day ("no working hours on any day"). Days with problems are left empty.
func (l *Loader) WeeklyHours(n *yaml.Node, path, what string) [7][]calendar.Interval {
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
		ivs := l.intervals(e.Val, Join(path, key))
		if !ok {
			continue
		}
		for _, i := range span {
			firstLine[i] = e.Key.Line
			week[weekday(i)] = ivs
		}
	}
	if len(entries) == 0 {
		l.Addf(Resolve(n), "%s: no %s hours on any day", path, what)
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
func (l *Loader) intervals(n *yaml.Node, path string) []calendar.Interval {
	var out []calendar.Interval
	count, ok := l.OneOrMany(n, path, func(item *yaml.Node, path string) {
		s, ok := l.Str(item, path)
		if !ok {
			return
		}
		iv, reason := ParseInterval(s)
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
		l.Addf(Resolve(n), "%s: want at least one time range, not an empty list", path)
	}
	return out
}

// ParseInterval reads "09:00-17:00"; the end may be 24:00 and must come after the start. It
// answers why s is not a range, or "".
func ParseInterval(s string) (calendar.Interval, string) {
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
