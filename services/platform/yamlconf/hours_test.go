package yamlconf

import (
	"fmt"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones below must not depend on the host

	"go.yaml.in/yaml/v3"

	"github.com/ticketpulse/ticketpulse/services/platform/calendar"
)

// week renders a schedule by time.Weekday, days without hours left out: "Mon 09:00-17:00".
func week(w [7][]calendar.Interval) string {
	var out []string
	for d, ivs := range w {
		if len(ivs) == 0 {
			continue
		}
		s := make([]string, len(ivs))
		for i, iv := range ivs {
			s[i] = iv.String()
		}
		out = append(out, time.Weekday(d).String()[:3]+" "+strings.Join(s, ","))
	}
	return strings.Join(out, "; ")
}

func TestWeeklyHours(t *testing.T) {
	tests := []struct {
		name  string
		give  string
		want  string
		probs string
	}{
		{"one range for weekdays", "{mon-fri: 09:00-17:00}",
			"Mon 09:00-17:00; Tue 09:00-17:00; Wed 09:00-17:00; Thu 09:00-17:00; Fri 09:00-17:00", ""},
		{"a list, to midnight", `{sat: ["08:00-12:00", "13:00-24:00"], sun: "00:00-01:00"}`,
			"Sun 00:00-01:00; Sat 08:00-12:00,13:00-24:00", ""},
		{"spaces around the dash", `{mon: "09:00 - 17:00"}`, "Mon 09:00-17:00", ""},
		{"no day", "{}", "", "f.yaml:1: x: no working hours on any day"},
		{"null is no day", "", "", "f.yaml:1: x: no working hours on any day"},
		{"not a mapping", "[mon]", "", "f.yaml:1: x: want a mapping, not a list"},
		{"unknown day", "{monday: 09:00-17:00}", "",
			`f.yaml:1: x: unknown day "monday" (want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri)`},
		{"range wraps", "{sat-mon: 09:00-17:00}", "",
			`f.yaml:1: x: unknown day "sat-mon" (want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri)`},
		{"range of one day", "{mon-mon: 09:00-17:00}", "",
			`f.yaml:1: x: unknown day "mon-mon" (want mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri)`},
		{"day twice, first wins", "\n  mon-wed: 09:00-17:00\n  tue: 10:00-11:00", "Mon 09:00-17:00; Tue 09:00-17:00; Wed 09:00-17:00",
			"f.yaml:3: x: tue already has hours (line 2)"},
		{"bad range", "{mon: 9-5}", "", `f.yaml:1: x.mon: "9-5" is not a time range (write e.g. 09:00-17:00)`},
		{"past midnight", "{mon: 09:00-24:30}", "", `f.yaml:1: x.mon: "09:00-24:30" is not a time range (times run from 00:00 to 24:00)`},
		{"starts at 24:00", "{mon: 24:00-24:00}", "", `f.yaml:1: x.mon: "24:00-24:00" is not a time range (times run from 00:00 to 24:00)`},
		{"minutes past 59", "{mon: 09:60-17:00}", "", `f.yaml:1: x.mon: "09:60-17:00" is not a time range (times run from 00:00 to 24:00)`},
		{"ends before it starts", "{mon: 17:00-09:00}", "", `f.yaml:1: x.mon: "17:00-09:00" does not end after it starts`},
		{"empty range", "{mon: 09:00-09:00}", "", `f.yaml:1: x.mon: "09:00-09:00" does not end after it starts`},
		{"overlap", `{mon: ["09:00-12:00", "11:00-13:00"]}`, "Mon 09:00-12:00", "f.yaml:1: x.mon[1]: 11:00-13:00 overlaps 09:00-12:00"},
		{"empty list", "{mon: []}", "", "f.yaml:1: x.mon: want at least one time range, not an empty list"},
		{"mapping for a day", "{mon: {from: 9}}", "", "f.yaml:1: x.mon: want a single value or a list, not a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			if got := week(l.WeeklyHours(value(t, tt.give), "x", "working")); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}

func TestParseInterval(t *testing.T) {
	tests := []struct {
		give, want, reason string
	}{
		{"00:00-24:00", "00:00-24:00", ""},
		{"09:30-17:45", "09:30-17:45", ""},
		{"9:00-17:00", "00:00-00:00", "is not a time range (write e.g. 09:00-17:00)"},
		{"09:00", "00:00-00:00", "is not a time range (write e.g. 09:00-17:00)"},
		{"25:00-26:00", "00:00-00:00", "is not a time range (times run from 00:00 to 24:00)"},
		{"10:00-09:59", "00:00-00:00", "does not end after it starts"},
	}
	for _, tt := range tests {
		iv, reason := ParseInterval(tt.give)
		if iv.String() != tt.want || reason != tt.reason {
			t.Errorf("ParseInterval(%q) = %v, %q; want %s, %q", tt.give, iv, reason, tt.want, tt.reason)
		}
	}
}

func TestTimeZone(t *testing.T) {
	tests := []struct {
		give, want, probs string
	}{
		{"Europe/Berlin", "Europe/Berlin", ""},
		{"UTC", "UTC", ""},
		{"Local", "<nil>", "f.yaml:1: x: name the zone (e.g. Europe/Berlin) rather than the host's Local"},
		{"Europe/Berlinn", "<nil>", `f.yaml:1: x: unknown time zone "Europe/Berlinn" (want an IANA name such as Europe/Berlin)`},
		{"[UTC]", "<nil>", "f.yaml:1: x: want a non-empty string, not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			got := "<nil>"
			if loc := l.TimeZone(value(t, tt.give), "x"); loc != nil {
				got = loc.String()
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}

func TestCalendar(t *testing.T) {
	holidays := func(l *Loader) func(n *yaml.Node, path string) []string {
		return func(n *yaml.Node, path string) []string { s, _ := l.Strings(n, path); return s }
	}
	tests := []struct {
		name     string
		give     string
		holidays bool
		want     string // the zone, and whether 2026-12-25 10:00 there is working time
		probs    string
	}{
		{"working hours", "{time_zone: Europe/Berlin, hours: {mon-fri: 09:00-17:00}}", false, "Europe/Berlin open", ""},
		{"with a holiday", "{time_zone: UTC, hours: {fri: 09:00-17:00}, holidays: 2026-12-25}", true, "UTC closed", ""},
		{"holidays not allowed", "{time_zone: UTC, hours: {fri: 09:00-17:00}, holidays: 2026-12-25}", false, "nil",
			`f.yaml:1: x: unknown key "holidays" (allowed: time_zone, hours)`},
		{"nothing", "{}", false, "nil",
			"f.yaml:1: x: missing time_zone: (an IANA name such as Europe/Berlin)\nf.yaml:1: x: missing hours: (when, e.g. mon: 09:00-17:00)"},
		{"bad zone and hours", "\n  time_zone: Mars/Olympus\n  hours: {}", false, "nil",
			"f.yaml:2: x.time_zone: unknown time zone \"Mars/Olympus\" (want an IANA name such as Europe/Berlin)\nf.yaml:3: x.hours: no working hours on any day"},
		// The holidays reader here checks nothing, so calendar.New refuses the date.
		{"calendar.New has the last word", "{time_zone: UTC, hours: {fri: 09:00-17:00}, holidays: [christmas]}", true, "nil",
			"f.yaml:1: x: holiday \"christmas\": want YYYY-MM-DD"},
		{"not a mapping", "[UTC]", false, "nil", "f.yaml:1: x: want a mapping, not a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &Loader{File: "f.yaml"}
			spec := CalendarSpec{What: "working", HoursHint: "when, e.g. mon: 09:00-17:00"}
			if tt.holidays {
				spec.Holidays = holidays(l)
			}
			c, loc := l.Calendar(value(t, tt.give), "x", spec)
			got := "nil"
			if c != nil {
				at := time.Date(2026, 12, 25, 10, 0, 0, 0, loc)
				state := "closed"
				if c.Add(at, time.Minute).Equal(at.Add(time.Minute)) {
					state = "open"
				}
				got = fmt.Sprintf("%s %s", loc, state)
			} else if loc != nil {
				t.Errorf("no calendar, but a zone %s", loc)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			if got := problems(l); got != tt.probs {
				t.Errorf("problems:\n%s\nwant:\n%s", got, tt.probs)
			}
		})
	}
}
