package window

import (
	"fmt"
	"time"
)

// Granularity is the length of one period of a series.
type Granularity int

// Granularities of a series: days, weeks (from Monday) and months start at local midnight.
const (
	Hour Granularity = iota + 1
	Day
	Week
	Month
)

func (g Granularity) String() string {
	switch g {
	case Hour:
		return "hour"
	case Day:
		return "day"
	case Week:
		return "week"
	case Month:
		return "month"
	}
	return fmt.Sprintf("granularity(%d)", int(g))
}

// Period is one period of a series: the unix hours [FromHour, ToHour).
type Period struct{ FromHour, ToHour int64 }

// Periods splits r into the periods of g, in order, covering r exactly. Hours are UTC hours;
// days, weeks and months start at local midnight in r's zone, so a DST day has 23 or 25 hours.
// A local midnight that is not on a UTC hour (zones with :30 or :45 offsets) is floored to the
// enclosing hour, as rolling day windows are, and the returned Resolved says so. The first and
// last periods are clipped to r: their figures are those of r's part of them.
func Periods(r Resolved, g Granularity) ([]Period, Resolved, error) {
	if r.FromHour >= r.ToHour {
		return nil, r, nil
	}
	if g == Hour {
		ps := make([]Period, 0, r.ToHour-r.FromHour)
		for h := r.FromHour; h < r.ToHour; h++ {
			ps = append(ps, Period{h, h + 1})
		}
		return ps, r, nil
	}
	name := r.TimeZone
	if name == "" {
		name = "UTC"
	}
	loc, err := location(name)
	if err != nil {
		return nil, r, err
	}
	start := periodStart(HourTime(r.FromHour).In(loc), g)
	var ps []Period
	var offHour time.Time
	from := r.FromHour
	for b := start; from < r.ToHour; {
		b = nextPeriod(b, g)
		to := min(HourOf(b), r.ToHour)
		if to < r.ToHour && !onHour(b) && offHour.IsZero() {
			offHour = b
		}
		if to > from { // the period before the first floored boundary can be empty
			ps = append(ps, Period{from, to})
			from = to
		}
	}
	if !offHour.IsZero() {
		note := fmt.Sprintf("local midnight %s is not on a UTC hour; %s periods start at the enclosing hour %s",
			offHour.Format(time.RFC3339), g, HourTime(HourOf(offHour)).In(loc).Format(time.RFC3339))
		if r.Note != "" {
			note = r.Note + "; " + note
		}
		r.AlignedToHour, r.Note = true, note
	}
	return ps, r, nil
}

// CountPeriods is len of Periods' answer, without building it.
func CountPeriods(r Resolved, g Granularity) (int, error) {
	if g == Hour || r.FromHour >= r.ToHour {
		return int(max(r.ToHour-r.FromHour, 0)), nil
	}
	ps, _, err := Periods(r, g)
	return len(ps), err
}

// periodStart is the local midnight starting the period of g that holds t.
func periodStart(t time.Time, g Granularity) time.Time {
	y, m, d := t.Date()
	switch g {
	case Week:
		d -= (int(t.Weekday()) + 6) % 7 // days since Monday
	case Month:
		d = 1
	}
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// nextPeriod is the local midnight starting the period after the one starting at b; time.Date
// normalises the day or month, and the zone's rules put midnight where DST has it.
func nextPeriod(b time.Time, g Granularity) time.Time {
	y, m, d := b.Date()
	switch g {
	case Week:
		d += 7
	case Month:
		m++
	default:
		d++
	}
	return time.Date(y, m, d, 0, 0, 0, 0, b.Location())
}
