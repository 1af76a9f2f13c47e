package window

import "github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"

// HourSpan is the hours [From, To) of one UTC day, read from that day's hourly detail hash.
type HourSpan struct {
	Day      int64
	From, To int
}

// Reads is the exact minimal set of bucket reads for a range of hours: whole weeks from week
// keys, the remaining whole days from day keys, and the hours of the (at most two) partial days
// from hourly detail hashes. Every hour of the range is counted by exactly one read.
type Reads struct {
	Weeks []int64
	Days  []int64
	Hours []HourSpan
}

// Len is the number of keys the cover reads.
func (c Reads) Len() int { return len(c.Weeks) + len(c.Days) + len(c.Hours) }

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
	// Whole weeks [firstWeek, endWeek) lie inside the whole days.
	firstWeek, endWeek := bucket.WeekOf(firstDay), bucket.WeekOf(endDay)
	if bucket.FirstDayOfWeek(firstWeek) < firstDay {
		firstWeek++
	}
	if firstWeek < endWeek {
		for d := firstDay; d < bucket.FirstDayOfWeek(firstWeek); d++ {
			c.Days = append(c.Days, d)
		}
		for w := firstWeek; w < endWeek; w++ {
			c.Weeks = append(c.Weeks, w)
		}
		for d := bucket.FirstDayOfWeek(endWeek); d < endDay; d++ {
			c.Days = append(c.Days, d)
		}
	} else {
		for d := firstDay; d < endDay; d++ {
			c.Days = append(c.Days, d)
		}
	}
	if tail := toHour - 24*endDay; tail > 0 {
		c.Hours = append(c.Hours, HourSpan{Day: endDay, From: 0, To: int(tail)})
	}
	return c
}
