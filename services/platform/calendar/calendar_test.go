package calendar

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests must not depend on the machine's zone files
)

var berlin = mustLoad("Europe/Berlin")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func hours(from, to int) Interval { return Interval{From: from * 60, To: to * 60} }

// officeHours is Monday to Friday, 09:00-12:00 and 13:00-17:00 (seven hours a day).
func officeHours(t *testing.T, holidays ...string) *Calendar {
	t.Helper()
	var week [7][]Interval
	for d := time.Monday; d <= time.Friday; d++ {
		week[d] = []Interval{hours(13, 17), hours(9, 12)} // unsorted on purpose
	}
	c, err := New(berlin, week, holidays)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
	if err != nil {
		panic(err)
	}
	return t
}

func TestAdd(t *testing.T) {
	c := officeHours(t, "2026-12-25", "2026-12-28")
	tests := []struct {
		name  string
		start string
		d     time.Duration
		want  string
	}{
		{name: "within the morning", start: "2026-11-24 09:30", d: time.Hour, want: "2026-11-24 10:30"},
		{name: "across lunch", start: "2026-11-24 11:30", d: time.Hour, want: "2026-11-24 13:30"},
		{name: "ends exactly at closing", start: "2026-11-24 16:00", d: time.Hour, want: "2026-11-24 17:00"},
		{name: "across the night", start: "2026-11-24 16:00", d: 2 * time.Hour, want: "2026-11-25 10:00"},
		{name: "across the weekend", start: "2026-11-27 16:00", d: 4 * time.Hour, want: "2026-11-30 12:00"},
		{name: "from a Saturday", start: "2026-11-28 12:00", d: time.Hour, want: "2026-11-30 10:00"},
		{name: "from before opening", start: "2026-11-24 06:00", d: 30 * time.Minute, want: "2026-11-24 09:30"},
		{name: "during lunch", start: "2026-11-24 12:20", d: 10 * time.Minute, want: "2026-11-24 13:10"},
		{name: "over a holiday weekend", start: "2026-12-24 16:00", d: 2 * time.Hour, want: "2026-12-29 10:00"},
		{name: "a whole week", start: "2026-11-23 09:00", d: 35 * time.Hour, want: "2026-11-27 17:00"},
		{name: "zero", start: "2026-11-28 12:00", d: 0, want: "2026-11-28 12:00"},
		// Clocks go back on 2026-10-25 (a Sunday) and forward on 2026-03-29: working hours stay
		// at 09:00 local, so the business time is unchanged.
		{name: "over the autumn clock change", start: "2026-10-23 16:00", d: 2 * time.Hour, want: "2026-10-26 10:00"},
		{name: "over the spring clock change", start: "2026-03-27 16:00", d: 2 * time.Hour, want: "2026-03-30 10:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Add(at(tt.start), tt.d)
			if !got.Equal(at(tt.want)) {
				t.Errorf("Add(%s, %s) = %s, want %s", tt.start, tt.d, got.In(berlin).Format("2006-01-02 15:04 Mon"), tt.want)
			}
		})
	}
}

func TestElapsed(t *testing.T) {
	c := officeHours(t, "2026-12-25")
	tests := []struct {
		from, to string
		want     time.Duration
	}{
		{"2026-11-24 09:00", "2026-11-24 17:00", 7 * time.Hour},
		{"2026-11-27 16:30", "2026-11-30 09:30", time.Hour},
		{"2026-11-28 00:00", "2026-11-29 23:59", 0},
		{"2026-12-24 08:00", "2026-12-26 08:00", 7 * time.Hour},
		{"2026-11-24 12:10", "2026-11-24 12:50", 0},
		{"2026-11-24 17:00", "2026-11-24 09:00", 0},
	}
	for _, tt := range tests {
		if got := c.Elapsed(at(tt.from), at(tt.to)); got != tt.want {
			t.Errorf("Elapsed(%s, %s) = %s, want %s", tt.from, tt.to, got, tt.want)
		}
	}
}

// Whatever the start and the target, the working time from the start to the deadline is the
// target, and the deadline is the earliest instant at which it is.
func TestAddAndElapsedAgree(t *testing.T) {
	c := officeHours(t, "2026-12-25", "2027-01-01")
	r := rand.New(rand.NewPCG(1, 2))
	base := at("2026-10-01 00:00")
	for i := 0; i < 2000; i++ {
		start := base.Add(time.Duration(r.Int64N(int64(120 * 24 * time.Hour))))
		d := time.Duration(r.Int64N(int64(60 * time.Hour)))
		deadline := c.Add(start, d)
		if got := c.Elapsed(start, deadline); got != d {
			t.Fatalf("start %s, target %s: deadline %s, but only %s of working time passes by then", start, d, deadline, got)
		}
		if d > 0 && c.Elapsed(start, deadline.Add(-time.Second)) >= d {
			t.Fatalf("start %s, target %s: deadline %s is later than needed", start, d, deadline)
		}
	}
}

func TestNilCalendarIsAlwaysOpen(t *testing.T) {
	var c *Calendar
	start := at("2026-11-28 12:00")
	if got := c.Add(start, 90*time.Minute); !got.Equal(start.Add(90 * time.Minute)) {
		t.Errorf("Add = %s", got)
	}
	if got := c.Elapsed(start, start.Add(50*time.Hour)); got != 50*time.Hour {
		t.Errorf("Elapsed = %s", got)
	}
}

func TestNewRejects(t *testing.T) {
	var week [7][]Interval
	week[time.Monday] = []Interval{hours(9, 17)}
	tests := []struct {
		name     string
		loc      *time.Location
		week     func() [7][]Interval
		holidays []string
		want     string
	}{
		{name: "no time zone", week: func() [7][]Interval { return week }, want: "no time zone"},
		{name: "no hours at all", loc: berlin, week: func() [7][]Interval { return [7][]Interval{} }, want: "no working hours on any day"},
		{name: "end before start", loc: berlin, week: func() [7][]Interval {
			w := week
			w[time.Tuesday] = []Interval{hours(17, 9)}
			return w
		}, want: "Tuesday: hours 17:00-09:00 are not within one day"},
		{name: "past midnight", loc: berlin, week: func() [7][]Interval {
			w := week
			w[time.Friday] = []Interval{{From: 22 * 60, To: 25 * 60}}
			return w
		}, want: "Friday: hours 22:00-25:00 are not within one day"},
		{name: "overlap", loc: berlin, week: func() [7][]Interval {
			w := week
			w[time.Monday] = []Interval{hours(9, 13), hours(12, 17)}
			return w
		}, want: "Monday: hours 12:00-17:00 overlap 09:00-13:00"},
		{name: "bad holiday", loc: berlin, week: func() [7][]Interval { return week }, holidays: []string{"25.12.2026"}, want: `holiday "25.12.2026": want YYYY-MM-DD`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.loc, tt.week(), tt.holidays)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
