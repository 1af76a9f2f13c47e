// Package calendar measures SLA time in business hours: the hours a support team works, in its
// own time zone, minus its holidays. A deadline of "4 business hours" set on Friday at 16:00 in
// Berlin falls on Monday at 11:00 there, not on Friday at 20:00.
package calendar

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Interval is a span of working time within a day, in minutes after local midnight; To may be
// 24*60 (midnight at the end of the day).
type Interval struct {
	From, To int
}

// Calendar is a weekly schedule in one time zone with holidays. The nil *Calendar is open all
// the time (24/7), so policies without business hours need no calendar.
type Calendar struct {
	loc      *time.Location
	week     [7][]Interval // by time.Weekday
	holidays map[civilDate]bool
}

type civilDate struct {
	y int
	m time.Month
	d int
}

func dateOf(t time.Time) civilDate {
	y, m, d := t.Date()
	return civilDate{y, m, d}
}

// maxDays bounds the search for a deadline; New makes sure every week has working time, so only
// a deadline years away (a misconfigured target) gets near it.
const maxDays = 3 * 366

// New returns a calendar. week is indexed by time.Weekday; its intervals must lie within the day,
// not overlap, and at least one day must have one. Holidays are local dates ("2026-12-25").
func New(loc *time.Location, week [7][]Interval, holidays []string) (*Calendar, error) {
	if loc == nil {
		return nil, errors.New("calendar: no time zone")
	}
	c := &Calendar{loc: loc, holidays: map[civilDate]bool{}}
	hasHours := false
	for wd, ivs := range week {
		sorted := slices.Clone(ivs)
		slices.SortFunc(sorted, func(a, b Interval) int { return a.From - b.From })
		for i, iv := range sorted {
			if iv.From < 0 || iv.To > 24*60 || iv.From >= iv.To {
				return nil, fmt.Errorf("%s: hours %s are not within one day, start before end", time.Weekday(wd), iv)
			}
			if i > 0 && iv.From < sorted[i-1].To {
				return nil, fmt.Errorf("%s: hours %s overlap %s", time.Weekday(wd), iv, sorted[i-1])
			}
		}
		c.week[wd] = sorted
		hasHours = hasHours || len(sorted) > 0
	}
	if !hasHours {
		return nil, errors.New("calendar: no working hours on any day of the week")
	}
	for _, h := range holidays {
		d, err := time.ParseInLocation("2006-01-02", h, loc)
		if err != nil {
			return nil, fmt.Errorf("holiday %q: want YYYY-MM-DD", h)
		}
		c.holidays[dateOf(d)] = true
	}
	return c, nil
}

func (iv Interval) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", iv.From/60, iv.From%60, iv.To/60, iv.To%60)
}

// spans calls f with each working span of the local days from the one holding from onwards, in
// order, until f returns false or maxDays have passed.
func (c *Calendar) spans(from time.Time, f func(open, close time.Time) bool) {
	local := from.In(c.loc)
	y, m, d := local.Date()
	for i := 0; i < maxDays; i++ {
		day := time.Date(y, m, d+i, 0, 0, 0, 0, c.loc)
		if c.holidays[dateOf(day)] {
			continue
		}
		dy, dm, dd := day.Date()
		for _, iv := range c.week[day.Weekday()] {
			// Wall-clock times, so 09:00 stays 09:00 on the days clocks change.
			open := time.Date(dy, dm, dd, 0, iv.From, 0, 0, c.loc)
			close := time.Date(dy, dm, dd, 0, iv.To, 0, 0, c.loc)
			if !f(open, close) {
				return
			}
		}
	}
}

// Add returns the instant at which d of working time has passed since start. A start outside
// working hours counts from the next opening.
func (c *Calendar) Add(start time.Time, d time.Duration) time.Time {
	if c == nil {
		return start.Add(d)
	}
	if d <= 0 {
		return start
	}
	left := d
	deadline := time.Time{}
	c.spans(start, func(open, close time.Time) bool {
		if !close.After(start) {
			return true
		}
		if open.Before(start) {
			open = start
		}
		avail := close.Sub(open)
		if left <= avail {
			deadline = open.Add(left)
			return false
		}
		left -= avail
		return true
	})
	if deadline.IsZero() {
		// Only a target of years of working time gets here: treat it as never due in practice.
		return start.AddDate(0, 0, maxDays)
	}
	return deadline
}

// Elapsed returns the working time in [from, to).
func (c *Calendar) Elapsed(from, to time.Time) time.Duration {
	if !to.After(from) {
		return 0
	}
	if c == nil {
		return to.Sub(from)
	}
	var sum time.Duration
	c.spans(from, func(open, close time.Time) bool {
		if !open.Before(to) {
			return false
		}
		open, close = later(open, from), earlier(close, to)
		if close.After(open) {
			sum += close.Sub(open)
		}
		return true
	})
	return sum
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
