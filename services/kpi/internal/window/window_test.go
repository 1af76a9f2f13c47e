package window

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func rolling(name, zone string) *ticketpulsev1.Window {
	return &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: name}, TimeZone: zone}
}

func explicit(from, to string) *ticketpulsev1.Window {
	return &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{
		From: timestamppb.New(ts(from)), To: timestamppb.New(ts(to)),
	}}}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name        string
		give        *ticketpulsev1.Window
		now         string
		wantFrom    string
		wantTo      string
		wantZone    string
		wantAligned bool
	}{
		{name: "1h mid-hour", give: rolling("1h", ""), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-11-24T13:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "UTC"},
		{name: "1h on the hour", give: rolling("1h", ""), now: "2026-11-24T14:00:00Z",
			wantFrom: "2026-11-24T13:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "UTC"},
		{name: "24h", give: rolling("24h", ""), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-11-23T14:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "UTC"},
		{name: "24h ignores a :30 zone", give: rolling("24h", "Asia/Kolkata"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-11-23T14:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "Asia/Kolkata"},
		{name: "7d UTC", give: rolling("7d", ""), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-11-18T00:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "UTC"},
		{name: "30d UTC", give: rolling("30d", "UTC"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-10-26T00:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "UTC"},
		// Berlin leaves summer time on 2026-10-25: midnight of the 21st is still CEST (+02:00).
		{name: "7d Berlin across autumn DST", give: rolling("7d", "Europe/Berlin"), now: "2026-10-27T10:00:00Z",
			wantFrom: "2026-10-20T22:00:00Z", wantTo: "2026-10-27T11:00:00Z", wantZone: "Europe/Berlin"},
		// Berlin enters summer time on 2026-03-29: midnight of the 24th is CET (+01:00).
		{name: "7d Berlin across spring DST", give: rolling("7d", "Europe/Berlin"), now: "2026-03-30T08:00:00Z",
			wantFrom: "2026-03-23T23:00:00Z", wantTo: "2026-03-30T09:00:00Z", wantZone: "Europe/Berlin"},
		// 23:30Z on the 29th is already 01:30 CEST on the 30th, so today is the 30th.
		{name: "7d Berlin local date ahead of UTC", give: rolling("7d", "Europe/Berlin"), now: "2026-03-29T23:30:00Z",
			wantFrom: "2026-03-23T23:00:00Z", wantTo: "2026-03-30T00:00:00Z", wantZone: "Europe/Berlin"},
		{name: "30d Berlin spans the change", give: rolling("30d", "Europe/Berlin"), now: "2026-11-10T12:00:00Z",
			wantFrom: "2026-10-11T22:00:00Z", wantTo: "2026-11-10T13:00:00Z", wantZone: "Europe/Berlin"},
		{name: "7d Kolkata +05:30", give: rolling("7d", "Asia/Kolkata"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-11-17T18:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "Asia/Kolkata", wantAligned: true},
		{name: "30d Kolkata +05:30", give: rolling("30d", "Asia/Kolkata"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-10-25T18:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "Asia/Kolkata", wantAligned: true},
		{name: "7d Kathmandu +05:45", give: rolling("7d", "Asia/Kathmandu"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-11-17T18:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "Asia/Kathmandu", wantAligned: true},
		{name: "7d New York -05:00", give: rolling("7d", "America/New_York"), now: "2026-11-24T03:00:00Z",
			wantFrom: "2026-11-17T05:00:00Z", wantTo: "2026-11-24T04:00:00Z", wantZone: "America/New_York"},
		{name: "range on hours", give: explicit("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-11-01T00:00:00Z", wantTo: "2026-11-02T00:00:00Z", wantZone: "UTC"},
		{name: "range widened", give: explicit("2026-11-01T10:15:00Z", "2026-11-01T12:00:00.5Z"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-11-01T10:00:00Z", wantTo: "2026-11-01T13:00:00Z", wantZone: "UTC", wantAligned: true},
		{name: "range inside one hour", give: explicit("2026-11-01T10:15:00Z", "2026-11-01T10:16:00Z"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-11-01T10:00:00Z", wantTo: "2026-11-01T11:00:00Z", wantZone: "UTC", wantAligned: true},
		{name: "range of exactly 400 days", give: explicit("2025-01-01T00:00:00Z", "2026-02-05T00:00:00Z"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2025-01-01T00:00:00Z", wantTo: "2026-02-05T00:00:00Z", wantZone: "UTC"},
		{name: "range of 401 days", give: explicit("2025-01-01T00:00:00Z", "2026-02-06T00:00:00Z"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2025-01-01T00:00:00Z", wantTo: "2026-02-06T00:00:00Z", wantZone: "UTC"},
		// Ten calendar years hold three leap days here (2028, 2032, 2036): 3653 days.
		{name: "range of exactly 10 years", give: explicit("2026-01-01T00:00:00Z", "2036-01-01T00:00:00Z"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-01-01T00:00:00Z", wantTo: "2036-01-01T00:00:00Z", wantZone: "UTC"},
		{name: "10 years from a leap day end on the 1st of March", give: explicit("2024-02-29T10:00:00Z", "2034-03-01T10:00:00Z"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2024-02-29T10:00:00Z", wantTo: "2034-03-01T10:00:00Z", wantZone: "UTC"},
		{name: "90d UTC", give: rolling("90d", ""), now: "2026-11-24T14:20:00Z",
			wantFrom: "2026-08-27T00:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "UTC"},
		{name: "365d UTC over a leap day", give: rolling("365d", ""), now: "2028-03-10T14:20:00Z",
			wantFrom: "2027-03-12T00:00:00Z", wantTo: "2028-03-10T15:00:00Z", wantZone: "UTC"},
		{name: "365d Berlin", give: rolling("365d", "Europe/Berlin"), now: "2026-11-24T14:20:00Z",
			wantFrom: "2025-11-24T23:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "Europe/Berlin"},
		{name: "all UTC", give: rolling("all", ""), now: "2026-11-24T14:20:00Z",
			wantFrom: "2017-01-01T00:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantZone: "UTC"},
		{name: "all in the last hour of a year", give: rolling("all", ""), now: "2026-12-31T23:59:59Z",
			wantFrom: "2017-01-01T00:00:00Z", wantTo: "2027-01-01T00:00:00Z", wantZone: "UTC"},
		// Already 2027 in Auckland (+13:00 in summer): the local years 2018 to 2027.
		{name: "all Auckland", give: rolling("all", "Pacific/Auckland"), now: "2026-12-31T12:00:00Z",
			wantFrom: "2017-12-31T11:00:00Z", wantTo: "2026-12-31T13:00:00Z", wantZone: "Pacific/Auckland"},
		{name: "range before the epoch", give: explicit("1969-12-31T22:30:00Z", "1970-01-01T01:00:00Z"), now: "2026-11-24T14:20:00Z",
			wantFrom: "1969-12-31T22:00:00Z", wantTo: "1970-01-01T01:00:00Z", wantZone: "UTC", wantAligned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.give, ts(tt.now))
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if from := HourTime(got.FromHour); !from.Equal(ts(tt.wantFrom)) {
				t.Errorf("from = %s, want %s", from.Format(time.RFC3339), tt.wantFrom)
			}
			if to := HourTime(got.ToHour); !to.Equal(ts(tt.wantTo)) {
				t.Errorf("to = %s, want %s", to.Format(time.RFC3339), tt.wantTo)
			}
			if got.TimeZone != tt.wantZone {
				t.Errorf("time zone = %q, want %q", got.TimeZone, tt.wantZone)
			}
			if got.AlignedToHour != tt.wantAligned || (got.Note != "") != tt.wantAligned {
				t.Errorf("aligned = %v note = %q, want aligned %v with a note", got.AlignedToHour, got.Note, tt.wantAligned)
			}
			p := got.Proto()
			if !p.GetFrom().AsTime().Equal(ts(tt.wantFrom)) || !p.GetTo().AsTime().Equal(ts(tt.wantTo)) ||
				p.GetTimeZone() != tt.wantZone || p.GetAlignedToHour() != tt.wantAligned || p.GetNote() != got.Note {
				t.Errorf("proto %v does not match %+v", p, got)
			}
		})
	}
}

// The zone's midnights, not multiples of 24 hours: a 7-day window over the spring change is
// one hour shorter, over the autumn change one hour longer.
func TestResolveDSTLength(t *testing.T) {
	tests := []struct {
		name      string
		now       string
		wantHours int64
	}{
		{name: "ordinary week", now: "2026-03-20T22:59:00Z", wantHours: 6*24 + 23 + 1},
		// 23:59 CEST on the 30th: the window 24th 00:00 CET .. 31st 00:00 CEST holds 7*24-1 hours.
		{name: "spring change", now: "2026-03-30T21:59:00Z", wantHours: 7*24 - 1},
		{name: "autumn change", now: "2026-10-27T22:59:00Z", wantHours: 7*24 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(rolling("7d", "Europe/Berlin"), ts(tt.now))
			if err != nil {
				t.Fatal(err)
			}
			if n := got.ToHour - got.FromHour; n != tt.wantHours {
				t.Errorf("window holds %d hours, want %d", n, tt.wantHours)
			}
		})
	}
}

func TestResolveRejects(t *testing.T) {
	now := ts("2026-11-24T14:20:00Z")
	withRange := func(rg *ticketpulsev1.TimeRange) *ticketpulsev1.Window {
		return &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Range{Range: rg}}
	}
	from := timestamppb.New(ts("2026-11-01T00:00:00Z"))
	tests := []struct {
		name      string
		give      *ticketpulsev1.Window
		wantField string
	}{
		{name: "missing window", give: nil, wantField: FieldWindow},
		{name: "window without kind", give: &ticketpulsev1.Window{TimeZone: "UTC"}, wantField: FieldWindow},
		{name: "unknown rolling", give: rolling("2d", ""), wantField: FieldRolling},
		{name: "empty rolling", give: rolling("", ""), wantField: FieldRolling},
		{name: "unknown zone", give: rolling("7d", "Mars/Olympus_Mons"), wantField: FieldTimeZone},
		{name: "Local zone", give: rolling("7d", "Local"), wantField: FieldTimeZone},
		{name: "unknown zone with a range", give: &ticketpulsev1.Window{Kind: explicit("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z").Kind, TimeZone: "nowhere"}, wantField: FieldTimeZone},
		{name: "range unset", give: withRange(nil), wantField: FieldFrom},
		{name: "from missing", give: withRange(&ticketpulsev1.TimeRange{To: from}), wantField: FieldFrom},
		{name: "to missing", give: withRange(&ticketpulsev1.TimeRange{From: from}), wantField: FieldTo},
		{name: "from invalid", give: withRange(&ticketpulsev1.TimeRange{From: &timestamppb.Timestamp{Seconds: 1, Nanos: -1}, To: from}), wantField: FieldFrom},
		{name: "to out of range", give: withRange(&ticketpulsev1.TimeRange{From: from, To: &timestamppb.Timestamp{Seconds: 1 << 50}}), wantField: FieldTo},
		{name: "empty range", give: explicit("2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z"), wantField: FieldTo},
		{name: "reversed range", give: explicit("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z"), wantField: FieldTo},
		{name: "longer than 10 years", give: explicit("2016-01-01T00:00:00Z", "2026-01-01T00:00:01Z"), wantField: FieldTo},
		{name: "unknown long rolling", give: rolling("2y", ""), wantField: FieldRolling},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Resolve(tt.give, now)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Resolve error = %v, want a *FieldError", err)
			}
			if fe.Field != tt.wantField || fe.Reason == "" {
				t.Errorf("field = %q (%q), want %q with a reason", fe.Field, fe.Reason, tt.wantField)
			}
			if !strings.HasPrefix(err.Error(), tt.wantField+": ") {
				t.Errorf("message %q does not name the field", err.Error())
			}
		})
	}
}

func TestRangeOverTenYearsMessage(t *testing.T) {
	_, err := Resolve(explicit("2016-02-29T12:30:00Z", "2026-03-01T12:30:00.001Z"), ts("2026-11-24T14:20:00Z"))
	want := "window.range.to: range from 2016-02-29T12:30:00Z to 2026-03-01T12:30:00.001Z is longer than 10 years: to must be at most 2026-03-01T12:30:00Z"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	_, err = Resolve(rolling("2y", ""), ts("2026-11-24T14:20:00Z"))
	want = `window.rolling: unknown rolling window "2y": want one of 1h, 24h, 7d, 30d, 90d, 365d, all`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

// Every rolling window, in every zone, at any instant, fits the longest window a range may ask
// for and the bound page tokens check.
func TestRollingWindowsFitTheLimit(t *testing.T) {
	names := append(append([]string(nil), RollingNames...), LongRollingNames...)
	for _, zone := range []string{"", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Kathmandu", "Europe/Berlin"} {
		for _, now := range []string{"2026-11-24T14:20:00Z", "2026-12-31T23:59:59Z", "2027-01-01T00:00:00Z", "2028-02-29T12:00:00Z"} {
			for _, name := range names {
				r, err := Resolve(rolling(name, zone), ts(now))
				if err != nil {
					t.Fatalf("%s %s %s: %v", name, zone, now, err)
				}
				if n := r.ToHour - r.FromHour; n <= 0 || n > MaxHours {
					t.Errorf("%s %s %s: %d hours, want 1..%d", name, zone, now, n, MaxHours)
				}
				if HourTime(r.FromHour).AddDate(MaxYears, 0, 0).Add(time.Hour).Before(HourTime(r.ToHour)) {
					t.Errorf("%s %s %s: [%s, %s) longer than %d years", name, zone, now,
						HourTime(r.FromHour).Format(time.RFC3339), HourTime(r.ToHour).Format(time.RFC3339), MaxYears)
				}
			}
		}
	}
}

func TestNoteNamesTheAlignment(t *testing.T) {
	got, err := Resolve(rolling("7d", "Asia/Kathmandu"), ts("2026-11-24T14:20:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got.Note, "2026-11-18T00:00:00+05:45") || !strings.Contains(got.Note, "2026-11-17T23:45:00+05:45") {
		t.Errorf("note %q should name local midnight and the hour used", got.Note)
	}
}
