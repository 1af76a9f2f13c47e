package query

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// packHoursV2 packs an hourly detail hash as the rollup does: sorted, each hour named once.
func packHoursV2(h map[string]string) string {
	fields := make([]string, 0, len(h))
	for f := range h {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	var b strings.Builder
	b.WriteString("v2")
	hour := ""
	for _, f := range fields {
		b.WriteByte(' ')
		if f[:3] == hour {
			b.WriteString(f[3:])
		} else {
			hour = f[:3]
			b.WriteString(f)
		}
		b.WriteString("=" + h[f])
	}
	return b.String()
}

// packHoursV1 packs an hourly detail hash in the older form, naming the hour in every item.
func packHoursV1(h map[string]string) string {
	s := "v1"
	for f, v := range h {
		s += " " + f + "=" + v
	}
	return s
}

// The read script's extract of some hours of a day, alone or subtracted from the day's totals,
// adds up to what bucket's own parsing of the hash gives for those hours, in every form the
// hourly detail takes (fields, packed v2, packed v1), with the same verdict on corrupt fields of
// those hours.
func TestHourExtractMatchesBucket(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	r := NewReaderCache(rdb, 0)
	rng := rand.New(rand.NewPCG(9, 10))
	day := bucket.DayOf(hourAt("2026-11-03T00:00:00Z"))
	for i := range 600 {
		salt := i%4 == 0
		form := []string{"fields", "packed v2", "packed v1"}[i%3]
		if salt {
			form = "fields"
		}
		withTotals := i%2 == 0 && !salt
		h := randomHash(rng, true, salt)
		from := rng.IntN(24)
		to := from + 1 + rng.IntN(24-from)
		s := bucket.Scope{Kind: bucket.Agent, ID: fmt.Sprintf("case %d", i)}
		hk := bucket.HourKey(tenant, s, day)
		switch form {
		case "fields":
			args := make([]any, 0, 2*len(h))
			for f, v := range h {
				args = append(args, f, v)
			}
			rdb.HSet(ctx, hk, args...)
		case "packed v2":
			rdb.HSet(ctx, hk, bucket.PackedHoursField, packHoursV2(h))
		default:
			rdb.HSet(ctx, hk, bucket.PackedHoursField, packHoursV1(h))
		}
		// The script reads the fields of the hours it is asked for, "hh|field" with two digits:
		// a field of no hour of the day is never read.
		read := map[string]string{}
		for f, v := range h {
			if len(f) > 2 && f[2] == '|' && isDigit(f[0]) && isDigit(f[1]) {
				if hh := int(f[0]-'0')*10 + int(f[1]-'0'); hh >= from && hh < to {
					read[f] = v
				}
			}
		}
		want := bucket.NewTotals()
		wantErr := want.AddHourHash(read, 0, 24)
		if withTotals && wantErr == nil {
			all := bucket.NewTotals()
			if err := all.AddHourHash(h, 0, 24); err != nil {
				t.Fatal(err)
			}
			fields := map[string]int64{}
			for c, v := range all.C {
				fields[bucket.Counter(c).Field()] = v
			}
			for d, hist := range all.H {
				for b, n := range hist {
					fields[bucket.BinField(bucket.Duration(d), b)] = n
				}
			}
			rdb.Set(ctx, bucket.DayTotalsKey(tenant, s, day), bucket.Pack(fields), 0)
		}
		got, err := r.Read(ctx, tenant, []Query{{Scope: s, FromHour: 24*day + int64(from), ToHour: 24*day + int64(to)}})
		name := fmt.Sprintf("case %d (%s, totals %v) [%d,%d) %v", i, form, withTotals, from, to, h)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s: read error %v, bucket error %v", name, err, wantErr)
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), hk) {
				t.Fatalf("%s: %v, want ErrCorrupt naming %s", name, err, hk)
			}
			continue
		}
		if !reflect.DeepEqual(got[0], want) {
			t.Fatalf("%s:\n read   %v\n bucket %v", name, got[0], want)
		}
	}
}

// Local days, weeks and months in zones east and west of UTC, over a DST change and with
// half-hour offsets, read as day totals less their offset hours (the fixture has totals for every
// day), agree with the figures summed hour by hour; so do they with the hourly detail packed, and
// read a second time from what the reader holds.
func TestZonedPeriodsMatchTheHours(t *testing.T) {
	figs, r, _ := fixture(t)
	ctx := context.Background()
	scopes := []bucket.Scope{ana, bo, billing, unassigned, {Kind: bucket.Agent, ID: "nobody"}}
	tests := []struct {
		zone     string
		from, to string
		gran     window.Granularity
	}{
		{zone: "Europe/Berlin", from: "2026-10-31T23:00:00Z", to: "2026-11-25T23:00:00Z", gran: window.Day},
		// US DST ends on November 1, 2026: a 25-hour day.
		{zone: "America/New_York", from: "2026-10-31T04:00:00Z", to: "2026-11-26T05:00:00Z", gran: window.Day},
		{zone: "America/Los_Angeles", from: "2026-10-31T07:00:00Z", to: "2026-11-26T08:00:00Z", gran: window.Day},
		{zone: "Asia/Kolkata", from: "2026-10-31T18:30:00Z", to: "2026-11-25T18:30:00Z", gran: window.Day},
		{zone: "Pacific/Kiritimati", from: "2026-10-31T10:00:00Z", to: "2026-11-25T10:00:00Z", gran: window.Day},
		{zone: "Asia/Tokyo", from: "2026-10-31T15:00:00Z", to: "2026-11-25T15:00:00Z", gran: window.Week},
		{zone: "America/St_Johns", from: "2026-10-15T02:30:00Z", to: "2026-12-01T03:30:00Z", gran: window.Month},
	}
	for _, packed := range []bool{false, true} {
		if packed {
			packFixture(t, r)
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s/packed=%v", tt.zone, tt.gran, packed), func(t *testing.T) {
				rw := window.Resolved{FromHour: window.HourOf(mustParse(t, tt.from)), ToHour: window.HourOf(mustParse(t, tt.to)), TimeZone: tt.zone}
				periods, _, err := window.Periods(rw, tt.gran)
				if err != nil {
					t.Fatal(err)
				}
				var qs []Query
				for _, s := range scopes {
					for _, p := range periods {
						qs = append(qs, Query{Scope: s, FromHour: p.FromHour, ToHour: p.ToHour})
					}
				}
				for _, read := range []string{"cold", "held"} {
					got, err := r.Read(ctx, tenant, qs)
					if err != nil {
						t.Fatal(err)
					}
					for i, q := range qs {
						if w := want(figs, q.Scope, q.FromHour, q.ToHour); !reflect.DeepEqual(got[i], w) {
							t.Fatalf("%s %v [%s, %s):\n got  %v\n want %v", read, q.Scope, window.HourTime(q.FromHour), window.HourTime(q.ToHour), got[i], w)
						}
					}
				}
			})
		}
	}
}

// packFixture packs the fixture's hourly detail as the rollup packs ended days, and drops the
// generations, as nothing else changes the detail of a day that has totals.
func packFixture(t *testing.T, r *Reader) {
	t.Helper()
	ctx := context.Background()
	keys, err := r.rdb.Keys(ctx, "tp:*:h:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("hourly detail keys: %v, %v", keys, err)
	}
	for _, k := range keys {
		h, err := r.rdb.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		r.rdb.Del(ctx, k)
		r.rdb.HSet(ctx, k, bucket.PackedHoursField, packHoursV2(h))
	}
}

func mustParse(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// A day whose hourly detail is gone while its totals are kept (the detail expired first) has no
// figures for part of it, as when its hours are read: the totals alone cannot say which hours
// they hold.
func TestPartOfADayWithoutHourlyDetailIsEmpty(t *testing.T) {
	figs, r, _ := fixture(t)
	ctx := context.Background()
	day := bucket.DayOf(hourAt("2026-11-05T00:00:00Z"))
	r.rdb.Del(ctx, bucket.HourKey(tenant, ana, day))
	for _, q := range []Query{
		{Scope: ana, FromHour: 24*day - 1, ToHour: 24*day + 23},  // a local day of UTC+1: most of day, less one hour
		{Scope: ana, FromHour: 24*day + 5, ToHour: 24*day + 30},  // UTC-5: 19 hours of day, then 6 of the next
		{Scope: ana, FromHour: 24*day + 20, ToHour: 24*day + 24}, // a few hours of day
	} {
		got, err := r.Read(ctx, tenant, []Query{q})
		if err != nil {
			t.Fatal(err)
		}
		w := want(figs, ana, q.FromHour, q.ToHour)
		w.Merge(negate(want(figs, ana, max(q.FromHour, 24*day), min(q.ToHour, 24*day+24))))
		if !reflect.DeepEqual(got[0], w) {
			t.Errorf("[%s, %s):\n got  %v\n want %v", window.HourTime(q.FromHour), window.HourTime(q.ToHour), got[0], w)
		}
	}
	if got, err := r.Read(ctx, tenant, []Query{{Scope: ana, FromHour: 24 * day, ToHour: 24*day + 24}}); err != nil || !reflect.DeepEqual(got[0], want(figs, ana, 24*day, 24*day+24)) {
		t.Errorf("the whole day from its totals: %v, %v", got, err)
	}
}

// negate is -t, so that w.Merge(negate(x)) removes x's figures from w.
func negate(t *bucket.Totals) *bucket.Totals {
	n := bucket.NewTotals()
	for i, v := range t.C {
		n.C[i] = -v
	}
	for d, h := range t.H {
		for b, c := range h {
			n.H[d].Add(b, -c)
		}
	}
	return n
}
