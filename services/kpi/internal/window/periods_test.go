package window

import (
	"testing"
	"time"
)

func TestPeriods(t *testing.T) {
	at := func(s string) int64 {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return HourOf(tm)
	}
	tests := []struct {
		name        string
		give        Resolved
		gran        Granularity
		wantStarts  []string // local starts of the periods, then the end
		wantAligned bool
	}{
		{name: "hours", give: Resolved{FromHour: at("2026-03-29T00:00:00Z"), ToHour: at("2026-03-29T03:00:00Z"), TimeZone: "Europe/Berlin"}, gran: Hour,
			wantStarts: []string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00", "2026-03-29T05:00:00+02:00"}},
		{name: "days over spring DST in Berlin", give: Resolved{FromHour: at("2026-03-27T23:00:00Z"), ToHour: at("2026-03-30T22:00:00Z"), TimeZone: "Europe/Berlin"}, gran: Day,
			wantStarts: []string{"2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00", "2026-03-30T00:00:00+02:00", "2026-03-31T00:00:00+02:00"}},
		{name: "days over autumn DST in Berlin", give: Resolved{FromHour: at("2026-10-24T22:00:00Z"), ToHour: at("2026-10-26T23:00:00Z"), TimeZone: "Europe/Berlin"}, gran: Day,
			wantStarts: []string{"2026-10-25T00:00:00+02:00", "2026-10-26T00:00:00+01:00", "2026-10-27T00:00:00+01:00"}},
		{name: "weeks start on Monday, first one clipped", give: Resolved{FromHour: at("2026-11-04T10:00:00Z"), ToHour: at("2026-11-23T00:00:00Z"), TimeZone: "UTC"}, gran: Week,
			wantStarts: []string{"2026-11-04T10:00:00Z", "2026-11-09T00:00:00Z", "2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z"}},
		{name: "months, last one clipped", give: Resolved{FromHour: at("2026-01-01T00:00:00Z"), ToHour: at("2026-03-05T00:00:00Z"), TimeZone: ""}, gran: Month,
			wantStarts: []string{"2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-05T00:00:00Z"}},
		{name: "days in Kathmandu floored to hours", give: Resolved{FromHour: at("2026-03-31T18:00:00Z"), ToHour: at("2026-04-02T18:00:00Z"), TimeZone: "Asia/Kathmandu"}, gran: Day,
			// local midnight is 18:15 UTC
			wantStarts: []string{"2026-03-31T18:00:00Z", "2026-04-01T18:00:00Z", "2026-04-02T18:00:00Z"}, wantAligned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, r, err := Periods(tt.give, tt.gran)
			if err != nil {
				t.Fatal(err)
			}
			n, err := CountPeriods(tt.give, tt.gran)
			if err != nil || n != len(ps) {
				t.Errorf("CountPeriods = %d, %v; Periods has %d", n, err, len(ps))
			}
			if len(ps) != len(tt.wantStarts)-1 {
				t.Fatalf("%d periods %v, want %d", len(ps), ps, len(tt.wantStarts)-1)
			}
			for i, p := range ps {
				if i > 0 && p.FromHour != ps[i-1].ToHour {
					t.Errorf("period %d starts at %d, the one before ends at %d", i, p.FromHour, ps[i-1].ToHour)
				}
				if want := at(tt.wantStarts[i]); p.FromHour != want {
					t.Errorf("period %d starts at %s, want %s", i, HourTime(p.FromHour), tt.wantStarts[i])
				}
			}
			if ps[0].FromHour != tt.give.FromHour || ps[len(ps)-1].ToHour != tt.give.ToHour {
				t.Errorf("periods span [%d, %d), want [%d, %d)", ps[0].FromHour, ps[len(ps)-1].ToHour, tt.give.FromHour, tt.give.ToHour)
			}
			if r.AlignedToHour != tt.wantAligned || (r.Note != "") != tt.wantAligned {
				t.Errorf("aligned %v note %q, want aligned %v", r.AlignedToHour, r.Note, tt.wantAligned)
			}
		})
	}
}
