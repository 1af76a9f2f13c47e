package window

import "github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"

// HourSpan is the hours [From, To) of one UTC day, read from that day's hourly detail hash.
type HourSpan struct {
	Day      int64
	From, To int
}

// Reads is the set of bucket reads for a range of hours, coarsest first: whole calendar years
// from year keys, whole months of the remaining edges from month keys, whole weeks of what is
// left from week keys, the remaining whole days from day keys, and the hours of the (at most two)
// partial days from hourly detail hashes. Every hour of the range is counted by exactly one read.
type Reads struct {
	Years  []int64
	Months []int64
	Weeks  []int64
	Days   []int64
	Hours  []HourSpan
}

// Len is the number of keys the cover reads.
func (c Reads) Len() int {
	return len(c.Years) + len(c.Months) + len(c.Weeks) + len(c.Days) + len(c.Hours)
}

// Cover returns the reads of the unix hours [fromHour, toHour); empty when fromHour >= toHour.
func Cover(fromHour, toHour int64) Reads {
	var c Reads
	if fromHour >= toHour {
		return c
	}
	firstDay, endDay := ceilDiv(fromHour, 24), floorDiv(toHour, 24) // whole days [firstDay, endDay)
	if firstDay > endDay {
		day := floorDiv(fromHour, 24)
		c.Hours = append(c.Hours, HourSpan{Day: day, From: int(fromHour - 24*day), To: int(toHour - 24*day)})
		return c
	}
	if head := 24*firstDay - fromHour; head > 0 {
		c.Hours = append(c.Hours, HourSpan{Day: firstDay - 1, From: int(24 - head), To: 24})
	}
	c.coverDays(firstDay, endDay, 0)
	if tail := toHour - 24*endDay; tail > 0 {
		c.Hours = append(c.Hours, HourSpan{Day: endDay, From: 0, To: int(tail)})
	}
	return c
}

// A level of whole periods: of calls the period of a day, first the first day of a period.
type level struct {
	of    func(day int64) int64
	first func(period int64) int64
	add   func(c *Reads, period int64)
}

var levels = []level{
	{bucket.YearOf, bucket.FirstDayOfYear, func(c *Reads, p int64) { c.Years = append(c.Years, p) }},
	{bucket.MonthOf, bucket.FirstDayOfMonth, func(c *Reads, p int64) { c.Months = append(c.Months, p) }},
	{bucket.WeekOf, bucket.FirstDayOfWeek, func(c *Reads, p int64) { c.Weeks = append(c.Weeks, p) }},
}

// coverDays adds the reads of the whole days [from, to) from level lv down: the whole periods of
// that level inside the days, then the edges left on either side at the finer levels, then days.
// Each edge is shorter than one period of its level, so the recursion is shallow.
func (c *Reads) coverDays(from, to int64, lv int) {
	if from >= to {
		return
	}
	if lv == len(levels) {
		for d := from; d < to; d++ {
			c.Days = append(c.Days, d)
		}
		return
	}
	l := levels[lv]
	first, end := l.of(from), l.of(to) // whole periods [first, end)
	if l.first(first) < from {
		first++
	}
	if first >= end {
		c.coverDays(from, to, lv+1)
		return
	}
	c.coverDays(from, l.first(first), lv+1)
	for p := first; p < end; p++ {
		l.add(c, p)
	}
	c.coverDays(l.first(end), to, lv+1)
}
