package window

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

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
	seen := make(map[int64]int)
	addDay := func(d int64) {
		for hh := range int64(24) {
			seen[d*24+hh]++
		}
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
			seen[s.Day*24+int64(hh)]++
		}
	}
	if full := weeksOf(days); len(full) > 0 {
		return fmt.Errorf("days cover all of weeks %v, which week keys would answer", full)
	}
	for hour := from; hour < to; hour++ {
		if seen[hour] != 1 {
			return fmt.Errorf("hour %d counted %d times", hour, seen[hour])
		}
	}
	for hour, n := range seen {
		if hour < from || hour >= to {
			return fmt.Errorf("hour %d outside [%d, %d) counted %d times", hour, from, to, n)
		}
	}
	return nil
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
