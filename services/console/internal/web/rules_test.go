package web

import (
	"strings"
	"testing"
	"time"
)

// A custom what-if range is of local days in the form's zone: east and west of UTC, across
// both DST changes, and bounded in days rather than hours.
func TestSimulateRange(t *testing.T) {
	now := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name, from, to, tz string
		wantFrom, wantTo   string
		wantErr            string
	}{
		{"UTC by default", "2026-03-01", "2026-03-02", "", "2026-03-01T00:00:00Z", "2026-03-03T00:00:00Z", ""},
		{"east: Tokyo", "2026-03-01", "2026-03-01", "Asia/Tokyo", "2026-02-28T15:00:00Z", "2026-03-01T15:00:00Z", ""},
		{"west: New York", "2026-03-01", "2026-03-01", "America/New_York", "2026-03-01T05:00:00Z", "2026-03-02T05:00:00Z", ""},
		{"east, DST starts: a 23-hour day", "2026-03-29", "2026-03-29", "Europe/Berlin", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", ""},
		{"west, DST ends: a 25-hour day", "2026-11-01", "2026-11-01", "America/Los_Angeles", "2026-11-01T07:00:00Z", "2026-11-02T08:00:00Z", ""},
		{"31 days across a DST change", "2026-03-01", "2026-03-31", "Europe/Berlin", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z", ""},
		{"32 days", "2026-03-01", "2026-04-01", "Europe/Berlin", "", "", "to: the range is longer than 31 days"},
		{"to before from", "2026-03-02", "2026-03-01", "Asia/Tokyo", "", "", "to: 2026-03-01 is before from 2026-03-02"},
		{"unknown zone", "2026-03-01", "2026-03-01", "Mars/Olympus", "", "", `tz: "Mars/Olympus" is not an IANA time zone name`},
		{"Local is the server's zone", "2026-03-01", "2026-03-01", "Local", "", "", `tz: "Local"`},
		{"bad date", "2026-02-30", "2026-03-01", "Asia/Tokyo", "", "", `from: "2026-02-30" is not a date`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := simulateRange("custom", tt.from, tt.to, tt.tz, now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, want := r.GetFrom().AsTime(), utc(tt.wantFrom); !got.Equal(want) {
				t.Errorf("from %s, want %s", got, want)
			}
			if got, want := r.GetTo().AsTime(), utc(tt.wantTo); !got.Equal(want) {
				t.Errorf("to %s, want %s", got, want)
			}
		})
	}
	// The rolling ranges end now, whatever the zone.
	r, err := simulateRange("24h", "", "", "Asia/Tokyo", now)
	if err != nil || !r.GetTo().AsTime().Equal(now) || !r.GetFrom().AsTime().Equal(now.Add(-24*time.Hour)) {
		t.Errorf("24h: %v %v", r, err)
	}
}

func FuzzSimulateRange(f *testing.F) {
	f.Add("custom", "2026-03-29", "2026-03-29", "Europe/Berlin")
	f.Add("custom", "2026-11-01", "2026-11-30", "America/Los_Angeles")
	f.Add("custom", "0001-01-01", "9999-12-31", "")
	f.Add("7d", "", "", "Asia/Kolkata")
	f.Add("custom", "2026-01-01", "2026-01-01", "../../etc/passwd")
	f.Add("custom", "2026-03-02", "2026-03-01", "")
	f.Add("1y", "", "", "")
	now := time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, name, from, to, tz string) {
		r, err := simulateRange(name, from, to, tz, now)
		if err != nil {
			return
		}
		start, end := r.GetFrom().AsTime(), r.GetTo().AsTime()
		// At most 31 days of up to 25 hours, and never empty.
		if !end.After(start) || end.Sub(start) > 31*25*time.Hour {
			t.Fatalf("range %q..%q in %q: %s to %s", from, to, tz, start, end)
		}
	})
}
