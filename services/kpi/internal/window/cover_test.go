package window

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
)

func TestCover(t *testing.T) {
	// Day 20416 is Monday 2025-11-24; its week is bucket.WeekOf(20412).
	const mon = int64(20416)
	wk := bucket.WeekOf(mon)
	if bucket.FirstDayOfWeek(wk) != mon {
		t.Fatalf("fixture: day %d is not a Monday", mon)
	}
	h := func(day int64, hh int64) int64 { return day*24 + hh }
	tests := []struct {
		name     string
		from, to int64
		want     Reads
	}{
		{name: "empty", from: h(mon, 5), to: h(mon, 5), want: Reads{}},
		{name: "reversed", from: h(mon, 6), to: h(mon, 5), want: Reads{}},
		{name: "one hour", from: h(mon, 5), to: h(mon, 6), want: Reads{Hours: []HourSpan{{Day: mon, From: 5, To: 6}}}},
		{name: "rest of a day", from: h(mon, 5), to: h(mon+1, 0), want: Reads{Hours: []HourSpan{{Day: mon, From: 5, To: 24}}}},
		{name: "start of a day", from: h(mon, 0), to: h(mon, 7), want: Reads{Hours: []HourSpan{{Day: mon, From: 0, To: 7}}}},
		{name: "one whole day", from: h(mon, 0), to: h(mon+1, 0), want: Reads{Days: []int64{mon}}},
		{name: "over midnight", from: h(mon, 20), to: h(mon+1, 3),
			want: Reads{Hours: []HourSpan{{Day: mon, From: 20, To: 24}, {Day: mon + 1, From: 0, To: 3}}}},
		{name: "whole week", from: h(mon, 0), to: h(mon+7, 0), want: Reads{Weeks: []int64{wk}}},
		{name: "six days are days", from: h(mon, 0), to: h(mon+6, 0), want: Reads{Days: []int64{mon, mon + 1, mon + 2, mon + 3, mon + 4, mon + 5}}},
		{name: "week not on Monday is days", from: h(mon+1, 0), to: h(mon+8, 0),
			want: Reads{Days: []int64{mon + 1, mon + 2, mon + 3, mon + 4, mon + 5, mon + 6, mon + 7}}},
		{name: "30d rolling shape", from: h(mon-3, 0), to: h(mon+26, 15),
			want: Reads{
				Days:  []int64{mon - 3, mon - 2, mon - 1, mon + 21, mon + 22, mon + 23, mon + 24, mon + 25},
				Weeks: []int64{wk, wk + 1, wk + 2},
				Hours: []HourSpan{{Day: mon + 26, From: 0, To: 15}},
			}},
		{name: "partial, days, weeks, days, partial", from: h(mon-2, 13), to: h(mon+15, 2),
			want: Reads{
				Days:  []int64{mon - 1, mon + 14},
				Weeks: []int64{wk, wk + 1},
				Hours: []HourSpan{{Day: mon - 2, From: 13, To: 24}, {Day: mon + 15, From: 0, To: 2}},
			}},
		{name: "around the epoch", from: -30, to: 5,
			want: Reads{Hours: []HourSpan{{Day: -2, From: 18, To: 24}, {Day: 0, From: 0, To: 5}}, Days: []int64{-1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Cover(tt.from, tt.to)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Cover(%d, %d) =\n %+v\nwant\n %+v", tt.from, tt.to, got, tt.want)
			}
			if err := checkCover(tt.from, tt.to, got); err != nil {
				t.Error(err)
			}
		})
	}
}

// checkCover verifies that c counts every hour of [from, to) exactly once and nothing else, and
// that it is minimal: no seven of its days make a whole week, no hourly span is a whole day, and
// at most the first and last day are partial.
func checkCover(from, to int64, c Reads) error {
	// Counts per hour of the range, and the hours outside it that any read counts.
	seen := make([]int, max(to-from, 0))
	var outside []int64
	count := func(hour int64) {
		if hour < from || hour >= to {
			outside = append(outside, hour)
			return
		}
		seen[hour-from]++
	}
	addDay := func(d int64) {
		for hh := range int64(24) {
			count(d*24 + hh)
		}
	}
	for _, y := range c.Years {
		for d := bucket.FirstDayOfYear(y); d < bucket.FirstDayOfYear(y+1); d++ {
			addDay(d)
		}
	}
	months := make(map[int64]bool)
	for _, m := range c.Months {
		for d := bucket.FirstDayOfMonth(m); d < bucket.FirstDayOfMonth(m+1); d++ {
			addDay(d)
		}
		months[m] = true
	}
	for y := range months {
		all := true
		for m := bucket.FirstMonthOfYear(bucket.YearOf(bucket.FirstDayOfMonth(y))); m < bucket.FirstMonthOfYear(bucket.YearOf(bucket.FirstDayOfMonth(y))+1); m++ {
			all = all && months[m]
		}
		if all {
			return fmt.Errorf("months cover all of year %d, which a year key would answer", bucket.YearOf(bucket.FirstDayOfMonth(y)))
		}
	}
	weeks := make(map[int64]bool)
	for _, w := range c.Weeks {
		weeks[w] = true
	}
	for _, w := range c.Weeks {
		for d := range int64(7) {
			addDay(bucket.FirstDayOfWeek(w) + d)
		}
	}
	days := make(map[int64]bool)
	for _, d := range c.Days {
		addDay(d)
		days[d] = true
	}
	if len(c.Hours) > 2 {
		return fmt.Errorf("%d hourly spans, at most 2 possible", len(c.Hours))
	}
	for _, s := range c.Hours {
		if s.From < 0 || s.To > 24 || s.From >= s.To {
			return fmt.Errorf("bad hourly span %+v", s)
		}
		if s.From == 0 && s.To == 24 {
			return fmt.Errorf("hourly span %+v is a whole day", s)
		}
		for hh := s.From; hh < s.To; hh++ {
			count(s.Day*24 + int64(hh))
		}
	}
	if full := weeksOf(days); len(full) > 0 {
		return fmt.Errorf("days cover all of weeks %v, which week keys would answer", full)
	}
	if full := monthsOf(days, weeks); len(full) > 0 {
		return fmt.Errorf("days and weeks cover all of months %v, which month keys would answer", full)
	}
	for i, n := range seen {
		if n != 1 {
			return fmt.Errorf("hour %d counted %d times", from+int64(i), n)
		}
	}
	if len(outside) > 0 {
		return fmt.Errorf("hour %d outside [%d, %d) counted", outside[0], from, to)
	}
	return nil
}

// monthsOf lists the months whose every day the days or weeks cover.
func monthsOf(days, weeks map[int64]bool) map[int64]bool {
	full := make(map[int64]bool)
	covered := func(d int64) bool { return days[d] || weeks[bucket.WeekOf(d)] }
	seen := make(map[int64]bool)
	for d := range days {
		seen[bucket.MonthOf(d)] = true
	}
	for w := range weeks {
		seen[bucket.MonthOf(bucket.FirstDayOfWeek(w))] = true
		seen[bucket.MonthOf(bucket.FirstDayOfWeek(w)+6)] = true
	}
	for m := range seen {
		all := true
		for d := bucket.FirstDayOfMonth(m); d < bucket.FirstDayOfMonth(m+1); d++ {
			all = all && covered(d)
		}
		if all {
			full[m] = true
		}
	}
	return full
}

func weeksOf(days map[int64]bool) map[int64]bool {
	full := make(map[int64]bool)
	for d := range days {
		w := bucket.WeekOf(d)
		all := true
		for i := range int64(7) {
			all = all && days[bucket.FirstDayOfWeek(w)+i]
		}
		if all {
			full[w] = true
		}
	}
	return full
}

// Property: for random ranges, of any length up to the longest window, anywhere (including
// before the epoch), the cover partitions the range exactly and minimally.
func TestCoverPartitionsRandomRanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		from := rng.Int64N(2_000_000) - 1_000_000
		var n int64
		switch rng.IntN(3) {
		case 0:
			n = rng.Int64N(72)
		case 1:
			n = rng.Int64N(24 * 40)
		default:
			n = rng.Int64N(MaxHours + 1)
		}
		if err := checkCover(from, from+n, Cover(from, from+n)); err != nil {
			t.Fatalf("Cover(%d, %d): %v", from, from+n, err)
		}
	}
}

func FuzzCover(f *testing.F) {
	f.Add(int64(489888), int64(24*30+15))
	f.Add(int64(-30), int64(35))
	f.Add(int64(0), int64(MaxHours))
	f.Fuzz(func(t *testing.T, from, n int64) {
		if n < 0 || n > MaxHours || from < -1<<40 || from > 1<<40 {
			t.Skip()
		}
		if err := checkCover(from, from+n, Cover(from, from+n)); err != nil {
			t.Fatalf("Cover(%d, %d): %v", from, from+n, err)
		}
	})
}

func dayOf(s string) int64 { return HourOf(ts(s+"T00:00:00Z")) / 24 }

func TestCoverMonthsAndYears(t *testing.T) {
	month := func(s string) int64 { return bucket.MonthOf(dayOf(s + "-01")) }
	year := func(s string) int64 { return bucket.YearOf(dayOf(s + "-01-01")) }
	days := func(from, to string) []int64 {
		var out []int64
		for d := dayOf(from); d < dayOf(to); d++ {
			out = append(out, d)
		}
		return out
	}
	h := func(s string) int64 { return HourOf(ts(s)) }
	tests := []struct {
		name     string
		from, to string
		want     Reads
	}{
		{name: "leap February", from: "2028-02-01T00:00:00Z", to: "2028-03-01T00:00:00Z", want: Reads{Months: []int64{month("2028-02")}}},
		{name: "ordinary February", from: "2027-02-01T00:00:00Z", to: "2027-03-01T00:00:00Z", want: Reads{Months: []int64{month("2027-02")}}},
		{name: "February without its leap day is weeks and days", from: "2028-02-01T00:00:00Z", to: "2028-02-29T00:00:00Z",
			want: Reads{Weeks: []int64{bucket.WeekOf(dayOf("2028-02-07")), bucket.WeekOf(dayOf("2028-02-14")), bucket.WeekOf(dayOf("2028-02-21"))},
				Days: append(days("2028-02-01", "2028-02-07"), dayOf("2028-02-28"))}},
		// Europe's clocks change on the last Sunday of March: in UTC the month is 31 whole days.
		{name: "March with a DST change elsewhere", from: "2026-03-01T00:00:00Z", to: "2026-04-01T00:00:00Z", want: Reads{Months: []int64{month("2026-03")}}},
		{name: "leap year", from: "2028-01-01T00:00:00Z", to: "2029-01-01T00:00:00Z", want: Reads{Years: []int64{year("2028")}}},
		{name: "a week across New Year stays a week", from: "2026-12-28T00:00:00Z", to: "2027-01-04T00:00:00Z",
			want: Reads{Weeks: []int64{bucket.WeekOf(dayOf("2026-12-28"))}}},
		{name: "months across New Year", from: "2026-12-01T00:00:00Z", to: "2027-02-01T00:00:00Z",
			want: Reads{Months: []int64{month("2026-12"), month("2027-01")}}},
		{name: "eleven months are months", from: "2026-02-01T00:00:00Z", to: "2027-01-01T00:00:00Z",
			want: Reads{Months: []int64{month("2026-02"), month("2026-03"), month("2026-04"), month("2026-05"), month("2026-06"),
				month("2026-07"), month("2026-08"), month("2026-09"), month("2026-10"), month("2026-11"), month("2026-12")}}},
		{name: "ten years", from: "2016-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z",
			want: Reads{Years: []int64{year("2016"), year("2017"), year("2018"), year("2019"), year("2020"), year("2021"), year("2022"), year("2023"), year("2024"), year("2025")}}},
		// 2024-03-16 is a Saturday and 2026-03-01 a Sunday.
		{name: "two years, every level", from: "2024-03-15T06:00:00Z", to: "2026-03-15T06:00:00Z",
			want: Reads{
				Years: []int64{year("2025")},
				Months: []int64{month("2024-04"), month("2024-05"), month("2024-06"), month("2024-07"), month("2024-08"),
					month("2024-09"), month("2024-10"), month("2024-11"), month("2024-12"), month("2026-01"), month("2026-02")},
				Weeks: []int64{bucket.WeekOf(dayOf("2024-03-18")), bucket.WeekOf(dayOf("2024-03-25")), bucket.WeekOf(dayOf("2026-03-02"))},
				Days:  append(days("2024-03-16", "2024-03-18"), append([]int64{dayOf("2026-03-01")}, days("2026-03-09", "2026-03-15")...)...),
				Hours: []HourSpan{{Day: dayOf("2024-03-15"), From: 6, To: 24}, {Day: dayOf("2026-03-15"), From: 0, To: 6}},
			}},
		{name: "before the epoch", from: "1968-12-31T23:00:00Z", to: "1970-02-01T00:00:00Z",
			want: Reads{Years: []int64{year("1969")}, Months: []int64{month("1970-01")}, Hours: []HourSpan{{Day: dayOf("1968-12-31"), From: 23, To: 24}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to := h(tt.from), h(tt.to)
			got := Cover(from, to)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Cover(%s, %s) =\n %+v\nwant\n %+v", tt.from, tt.to, got, tt.want)
			}
			if err := checkCover(from, to, got); err != nil {
				t.Error(err)
			}
		})
	}
}

// The month and year arithmetic agrees with the calendar for every day of four centuries,
// leap years (and 2100, which is none) included.
func TestMonthAndYearOfDays(t *testing.T) {
	for d := dayOf("1900-01-01"); d < dayOf("2300-01-01"); d++ {
		tm := HourTime(d * 24)
		m, y := bucket.MonthOf(d), bucket.YearOf(d)
		if want := int64(tm.Year()-1970)*12 + int64(tm.Month()-1); m != want {
			t.Fatalf("%s: month %d, want %d", tm.Format(time.DateOnly), m, want)
		}
		if first := HourTime(bucket.FirstDayOfMonth(m) * 24); first.Day() != 1 || first.Month() != tm.Month() || first.Year() != tm.Year() {
			t.Fatalf("%s: month starts %s", tm.Format(time.DateOnly), first.Format(time.DateOnly))
		}
		if first := HourTime(bucket.FirstDayOfYear(y) * 24); first.YearDay() != 1 || first.Year() != tm.Year() {
			t.Fatalf("%s: year starts %s", tm.Format(time.DateOnly), first.Format(time.DateOnly))
		}
	}
}
