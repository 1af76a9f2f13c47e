package query

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	querytest.StopLoaded()
	os.Exit(code)
}

const tenant = "acme"

func hourAt(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return window.HourOf(t)
}

// figure is one delta as the write path applies it.
type figure struct {
	scope bucket.Scope
	hour  int64
	field string
	delta int64
}

var (
	ana        = bucket.Scope{Kind: bucket.Agent, ID: "ana.{x}@例え.jp"}
	bo         = bucket.Scope{Kind: bucket.Agent, ID: "bo"}
	billing    = bucket.Scope{Kind: bucket.Team, ID: "billing: EU"}
	unassigned = bucket.Scope{Kind: bucket.Unassigned}
)

// fixture writes random figures over three weeks around 2026-11 into Redis and returns them, so
// any window's expected totals can be summed independently of the cover.
func fixture(t *testing.T) ([]figure, *Reader, *querytest.RoundTrips) {
	t.Helper()
	ctx := context.Background()
	rdb := testenv.Redis(t)
	rng := rand.New(rand.NewPCG(3, 4))
	start := hourAt("2026-11-01T00:00:00Z") // a Sunday
	fields := []string{
		bucket.Assigned.Field(), bucket.Resolutions.Field(), bucket.FirstSumMillis.Field(), bucket.CSATScoreSum.Field(),
		bucket.BinField(bucket.FirstResponse, 412), bucket.BinField(bucket.Resolution, hist.ZeroBin), bucket.BinField(bucket.NextResponse, -7),
	}
	var figs []figure
	for _, s := range []bucket.Scope{ana, bo, billing, unassigned} {
		for range 300 {
			f := figure{scope: s, hour: start + rng.Int64N(24*24), field: fields[rng.IntN(len(fields))], delta: 1 + rng.Int64N(9)}
			if err := querytest.Incr(ctx, rdb, tenant, f.scope, f.hour, f.field, f.delta); err != nil {
				t.Fatal(err)
			}
			figs = append(figs, f)
		}
		// Every day of the figures has ended and been rolled up, with the weeks around them.
		if err := querytest.RolledUp(ctx, rdb, tenant, s, bucket.DayOf(start)-7, bucket.DayOf(start)+24+14); err != nil {
			t.Fatal(err)
		}
	}
	trips := &querytest.RoundTrips{}
	rdb.AddHook(trips)
	return figs, NewReader(rdb), trips
}

// resp3 is a second client of rdb's server speaking RESP3, where script replies take RESP3's
// types.
func resp3(t *testing.T, r *Reader) *Reader {
	t.Helper()
	var c redis.UniversalClient
	if cc, ok := r.rdb.(*redis.ClusterClient); ok {
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cc.Options().Addrs, Protocol: 3})
	} else {
		c = redis.NewClient(&redis.Options{Addr: r.rdb.(*redis.Client).Options().Addr, Protocol: 3})
	}
	t.Cleanup(func() { c.Close() })
	return NewReader(c)
}

func want(figs []figure, s bucket.Scope, from, to int64) *bucket.Totals {
	t := bucket.NewTotals()
	for _, f := range figs {
		if f.scope == s && f.hour >= from && f.hour < to {
			if err := t.AddField(f.field, f.delta); err != nil {
				panic(err)
			}
		}
	}
	return t
}

func TestTotals(t *testing.T) {
	figs, r, trips := fixture(t)
	tests := []struct {
		name     string
		from, to string
		// wantKeys is how many week keys, day keys and hourly hashes the window's cover reads,
		// wantMonths how many month keys.
		wantKeys   [3]int
		wantMonths int
	}{
		{name: "hours of one day", from: "2026-11-03T05:00:00Z", to: "2026-11-03T17:00:00Z", wantKeys: [3]int{0, 0, 1}},
		{name: "over midnight", from: "2026-11-03T20:00:00Z", to: "2026-11-04T04:00:00Z", wantKeys: [3]int{0, 0, 2}},
		{name: "one whole day", from: "2026-11-05T00:00:00Z", to: "2026-11-06T00:00:00Z", wantKeys: [3]int{0, 1, 0}},
		{name: "one whole week", from: "2026-11-02T00:00:00Z", to: "2026-11-09T00:00:00Z", wantKeys: [3]int{1, 0, 0}},
		{name: "hours, days, weeks, days, hours", from: "2026-11-01T07:00:00Z", to: "2026-11-20T13:00:00Z", wantKeys: [3]int{2, 4, 2}},
		{name: "everything and more", from: "2026-10-01T00:00:00Z", to: "2026-12-31T00:00:00Z", wantKeys: [3]int{3, 9, 0}, wantMonths: 2},
		{name: "the month of the figures", from: "2026-11-01T00:00:00Z", to: "2026-12-01T00:00:00Z", wantMonths: 1},
		{name: "before any data", from: "2026-10-01T00:00:00Z", to: "2026-10-20T05:00:00Z", wantKeys: [3]int{2, 5, 1}},
		{name: "empty window", from: "2026-11-03T05:00:00Z", to: "2026-11-03T05:00:00Z"},
	}
	scopes := []bucket.Scope{ana, bo, billing, unassigned, {Kind: bucket.Agent, ID: "nobody"}}
	readers := []struct {
		name string
		r    *Reader
	}{{"RESP2", r}, {"RESP3", resp3(t, r)}}
	for _, rd := range readers {
		for _, tt := range tests {
			t.Run(rd.name+"/"+tt.name, func(t *testing.T) {
				r := rd.r
				from, to := hourAt(tt.from), hourAt(tt.to)
				if c := window.Cover(from, to); [3]int{len(c.Weeks), len(c.Days), len(c.Hours)} != tt.wantKeys || len(c.Months) != tt.wantMonths {
					t.Errorf("cover %+v, want %v week, day and hourly keys and %d month keys", c, tt.wantKeys, tt.wantMonths)
				}
				before := trips.Count()
				got, err := r.Totals(context.Background(), tenant, scopes, from, to)
				if err != nil {
					t.Fatal(err)
				}
				// One; "nobody" has no totals at all, so its weeks are read from its days and its
				// days from its hours, which takes two more.
				if n := trips.Count() - before; n > 3 {
					t.Errorf("%d round trips, want at most 3", n)
				}
				if len(got) != len(scopes) {
					t.Fatalf("%d totals for %d scopes", len(got), len(scopes))
				}
				for i, s := range scopes {
					if w := want(figs, s, from, to); !reflect.DeepEqual(got[i], w) {
						t.Errorf("%v:\n got  %v\n want %v", s, got[i], w)
					}
				}
			})
		}
	}
}

// The fixture is not empty where the windows above expect figures, so a reader that returned
// zeros everywhere would fail there.
func TestFixtureHasFigures(t *testing.T) {
	figs, _, _ := fixture(t)
	w := want(figs, ana, hourAt("2026-11-01T07:00:00Z"), hourAt("2026-11-20T13:00:00Z"))
	if w.C[bucket.Assigned] == 0 || w.H[bucket.FirstResponse].Count() == 0 {
		t.Fatalf("fixture too sparse: %v", w)
	}
}

func TestReadSharesKeysAcrossQueries(t *testing.T) {
	figs, r, trips := fixture(t)
	qs := []Query{
		{Scope: ana, FromHour: hourAt("2026-11-10T13:00:00Z"), ToHour: hourAt("2026-11-10T15:00:00Z")},
		{Scope: ana, FromHour: hourAt("2026-11-09T13:00:00Z"), ToHour: hourAt("2026-11-10T15:00:00Z")},
		{Scope: ana, FromHour: hourAt("2026-11-04T00:00:00Z"), ToHour: hourAt("2026-11-10T15:00:00Z")},
		{Scope: billing, FromHour: hourAt("2026-11-01T00:00:00Z"), ToHour: hourAt("2026-11-10T15:00:00Z")},
	}
	before := trips.Count()
	got, err := r.Read(context.Background(), tenant, qs)
	if err != nil {
		t.Fatal(err)
	}
	if n := trips.Count() - before; n != 1 {
		t.Errorf("%d round trips, want 1", n)
	}
	for i, q := range qs {
		if w := want(figs, q.Scope, q.FromHour, q.ToHour); !reflect.DeepEqual(got[i], w) {
			t.Errorf("query %d %+v:\n got  %v\n want %v", i, q, got[i], w)
		}
	}
}

func TestReadFailures(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		setup   func(t *testing.T, r *Reader) error
		wantErr string
		corrupt bool
	}{
		{name: "totals of the wrong type", wantErr: "WRONGTYPE", setup: func(t *testing.T, r *Reader) error {
			return r.rdb.HSet(ctx, bucket.DayTotalsKey(tenant, ana, bucket.DayOf(hourAt("2026-11-03T00:00:00Z"))), "as", "1").Err()
		}},
		{name: "hours of the wrong type", wantErr: "WRONGTYPE", setup: func(t *testing.T, r *Reader) error {
			return r.rdb.Set(ctx, bucket.HourKey(tenant, ana, bucket.DayOf(hourAt("2026-11-04T00:00:00Z"))), "x", 0).Err()
		}},
		{name: "unknown field", wantErr: "unknown bucket field", corrupt: true, setup: func(t *testing.T, r *Reader) error {
			return r.rdb.Set(ctx, bucket.DayTotalsKey(tenant, ana, bucket.DayOf(hourAt("2026-11-03T00:00:00Z"))), "v1 nope=1", 0).Err()
		}},
		{name: "totals not packed", wantErr: "packed totals", corrupt: true, setup: func(t *testing.T, r *Reader) error {
			return r.rdb.Set(ctx, bucket.DayTotalsKey(tenant, ana, bucket.DayOf(hourAt("2026-11-03T00:00:00Z"))), "as=1", 0).Err()
		}},
		{name: "unknown field in hours read for missing totals", wantErr: "unknown bucket field", corrupt: true, setup: func(t *testing.T, r *Reader) error {
			return r.rdb.HSet(ctx, bucket.HourKey(tenant, ana, bucket.DayOf(hourAt("2026-11-03T00:00:00Z"))), "10|nope", "1").Err()
		}},
		{name: "value not a number", wantErr: "bucket field", corrupt: true, setup: func(t *testing.T, r *Reader) error {
			return r.rdb.HSet(ctx, bucket.HourKey(tenant, ana, bucket.DayOf(hourAt("2026-11-04T00:00:00Z"))), "10|as", "ten").Err()
		}},
		{name: "server gone", wantErr: "read", setup: func(t *testing.T, r *Reader) error {
			return r.rdb.Close()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(testenv.Redis(t))
			if err := tt.setup(t, r); err != nil {
				t.Fatal(err)
			}
			_, err := r.Totals(ctx, tenant, []bucket.Scope{ana}, hourAt("2026-11-02T00:00:00Z"), hourAt("2026-11-04T12:00:00Z"))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrCorrupt) != tt.corrupt {
				t.Errorf("errors.Is(%v, ErrCorrupt) = %v, want %v", err, !tt.corrupt, tt.corrupt)
			}
		})
	}
}

func TestAgents(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	idx := []struct {
		agent, team, at string
	}{
		{"ana.{x}@例え.jp", "billing: EU", "2026-11-02T10:00:00Z"},
		{"bo", "billing: EU", "2026-11-03T10:00:00Z"},
		{"bo", "support", "2026-11-05T10:00:00Z"},
		{"cy 1", "support", "2026-11-05T23:00:00Z"},
		{"ana.{x}@例え.jp", "support", "2026-11-07T01:00:00Z"},
		{"dee", "", "2026-11-08T01:00:00Z"},
	}
	for _, e := range idx {
		if err := querytest.Index(ctx, rdb, tenant, e.agent, e.team, hourAt(e.at)); err != nil {
			t.Fatal(err)
		}
	}
	// Another tenant's index is never read.
	if err := querytest.Index(ctx, rdb, "other", "zed", "support", hourAt("2026-11-05T10:00:00Z")); err != nil {
		t.Fatal(err)
	}
	r := NewReader(rdb)
	tests := []struct {
		name     string
		team     string
		from, to string
		want     []string
	}{
		{name: "all agents, all days", from: "2026-11-01T00:00:00Z", to: "2026-11-09T00:00:00Z", want: []string{"ana.{x}@例え.jp", "bo", "cy 1", "dee"}},
		{name: "all agents, two days", from: "2026-11-03T00:00:00Z", to: "2026-11-05T00:00:00Z", want: []string{"bo"}},
		{name: "partial days count whole", from: "2026-11-05T22:00:00Z", to: "2026-11-07T02:00:00Z", want: []string{"ana.{x}@例え.jp", "bo", "cy 1"}},
		{name: "team filter", team: "billing: EU", from: "2026-11-01T00:00:00Z", to: "2026-11-09T00:00:00Z", want: []string{"ana.{x}@例え.jp", "bo"}},
		{name: "other team", team: "support", from: "2026-11-05T00:00:00Z", to: "2026-11-09T00:00:00Z", want: []string{"ana.{x}@例え.jp", "bo", "cy 1"}},
		{name: "unknown team", team: "nobody", from: "2026-11-01T00:00:00Z", to: "2026-11-09T00:00:00Z", want: []string{}},
		{name: "no activity", from: "2026-12-01T00:00:00Z", to: "2026-12-09T00:00:00Z", want: []string{}},
		{name: "empty window", from: "2026-11-03T00:00:00Z", to: "2026-11-03T00:00:00Z", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Agents(ctx, tenant, tt.team, hourAt(tt.from), hourAt(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAgentsRejectsCorruptIndex(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	day := bucket.DayOf(hourAt("2026-11-03T10:00:00Z"))
	if err := rdb.SAdd(ctx, bucket.AgentsKey(tenant, day), "bad token").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := NewReader(rdb).Agents(ctx, tenant, "", day*24, day*24+24); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt for a member that is not an escaped id", err)
	}
}

// Totals the rollup has not derived yet (a week or day that has just ended, or that a late event
// changed) are read from what they are derived from: a week from its days, a day from its hours.
// The figures are the same either way; only the round trips differ.
func TestMissingTotalsAreReadFromTheirParts(t *testing.T) {
	from, to := hourAt("2026-11-02T00:00:00Z"), hourAt("2026-11-18T00:00:00Z") // two whole weeks and two days
	scopes := []bucket.Scope{ana, bo, billing, unassigned}
	week := bucket.WeekOf(bucket.DayOf(from))
	tests := []struct {
		name   string
		delete func(s bucket.Scope) []string
		trips  int64
	}{
		{name: "all derived", delete: func(bucket.Scope) []string { return nil }, trips: 1},
		{name: "a week missing", trips: 2, delete: func(s bucket.Scope) []string {
			return []string{bucket.WeekTotalsKey(tenant, s, week)}
		}},
		{name: "a day missing", trips: 2, delete: func(s bucket.Scope) []string {
			return []string{bucket.DayTotalsKey(tenant, s, bucket.DayOf(to)-1)}
		}},
		{name: "a week and some of its days missing", trips: 3, delete: func(s bucket.Scope) []string {
			first := bucket.FirstDayOfWeek(week)
			return []string{bucket.WeekTotalsKey(tenant, s, week), bucket.DayTotalsKey(tenant, s, first), bucket.DayTotalsKey(tenant, s, first+6)}
		}},
		{name: "nothing derived", trips: 3, delete: func(s bucket.Scope) []string {
			keys := []string{bucket.WeekTotalsKey(tenant, s, week), bucket.WeekTotalsKey(tenant, s, week+1)}
			for d := bucket.DayOf(from); d < bucket.DayOf(to); d++ {
				keys = append(keys, bucket.DayTotalsKey(tenant, s, d))
			}
			return keys
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			figs, r, trips := fixture(t)
			ctx := context.Background()
			for _, s := range scopes {
				if keys := tt.delete(s); len(keys) > 0 {
					if err := r.rdb.Del(ctx, keys...).Err(); err != nil {
						t.Fatal(err)
					}
				}
			}
			before := trips.Count()
			got, err := r.Totals(ctx, tenant, scopes, from, to)
			if err != nil {
				t.Fatal(err)
			}
			if n := trips.Count() - before; n != tt.trips {
				t.Errorf("%d round trips, want %d", n, tt.trips)
			}
			for i, s := range scopes {
				if w := want(figs, s, from, to); !reflect.DeepEqual(got[i], w) {
					t.Errorf("%v:\n got  %v\n want %v", s, got[i], w)
				}
			}
		})
	}
}

// A two-year window is read from year, month, week and day totals and two hourly hashes, and
// equals both the figures summed independently and the merge of the windows it splits into at
// random points; with its year and months not derived yet, the same figures come from the days.
func TestTwoYearWindowIsTheSumOfItsParts(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	rng := rand.New(rand.NewPCG(5, 6))
	start, end := hourAt("2024-02-20T00:00:00Z"), hourAt("2026-04-10T00:00:00Z")
	fields := []string{bucket.Assigned.Field(), bucket.Resolutions.Field(), bucket.FirstSumMillis.Field(),
		bucket.BinField(bucket.FirstResponse, 412), bucket.BinField(bucket.Resolution, 900), bucket.BinField(bucket.NextResponse, hist.ZeroBin)}
	scopes := []bucket.Scope{ana, billing}
	var figs []figure
	for _, s := range scopes {
		for range 400 {
			f := figure{scope: s, hour: start + rng.Int64N(end-start), field: fields[rng.IntN(len(fields))], delta: 1 + rng.Int64N(9)}
			if err := querytest.Incr(ctx, rdb, tenant, f.scope, f.hour, f.field, f.delta); err != nil {
				t.Fatal(err)
			}
			figs = append(figs, f)
		}
		if err := querytest.RolledUp(ctx, rdb, tenant, s, bucket.DayOf(start)-40, bucket.DayOf(end)+40); err != nil {
			t.Fatal(err)
		}
	}
	trips := &querytest.RoundTrips{}
	rdb.AddHook(trips)
	r := NewReader(rdb)
	from, to := hourAt("2024-03-15T06:00:00Z"), hourAt("2026-03-15T06:00:00Z")
	c := window.Cover(from, to)
	if len(c.Years) != 1 || len(c.Months) != 11 || len(c.Hours) != 2 {
		t.Fatalf("cover %+v, want a year, 11 months and two partial days", c)
	}
	check := func(name string, wantTrips int64) {
		t.Helper()
		before := trips.Count()
		got, err := r.Totals(ctx, tenant, scopes, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if n := trips.Count() - before; n != wantTrips {
			t.Errorf("%s: %d round trips, want %d", name, n, wantTrips)
		}
		for i, s := range scopes {
			w := want(figs, s, from, to)
			if w.C[bucket.Assigned] == 0 {
				t.Fatalf("fixture too sparse for %v", s)
			}
			if !reflect.DeepEqual(got[i], w) {
				t.Errorf("%s: %v:\n got  %v\n want %v", name, s, got[i], w)
			}
		}
		for range 20 {
			cuts := []int64{from, from + rng.Int64N(to-from), from + rng.Int64N(to-from), to}
			slices.Sort(cuts)
			sum := []*bucket.Totals{bucket.NewTotals(), bucket.NewTotals()}
			for j := 0; j+1 < len(cuts); j++ {
				part, err := r.Totals(ctx, tenant, scopes, cuts[j], cuts[j+1])
				if err != nil {
					t.Fatal(err)
				}
				for i := range scopes {
					sum[i].Merge(part[i])
				}
			}
			for i := range scopes {
				if !reflect.DeepEqual(sum[i], got[i]) {
					t.Fatalf("%s: %v: parts split at %v sum to\n %v\nnot\n %v", name, scopes[i], cuts, sum[i], got[i])
				}
			}
		}
	}
	check("all derived", 1)
	// Not derived yet: the year (read from its months), then also its months (read from days).
	// Deleted with the scope's totals generation, as the write path deletes stale totals.
	for _, s := range scopes {
		if err := rdb.Del(ctx, bucket.YearTotalsKey(tenant, s, c.Years[0]), bucket.GenKey(tenant, s)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	check("year missing", 2)
	for _, s := range scopes {
		for m := bucket.FirstMonthOfYear(c.Years[0]); m < bucket.FirstMonthOfYear(c.Years[0]+1); m++ {
			if err := rdb.Del(ctx, bucket.MonthTotalsKey(tenant, s, m), bucket.GenKey(tenant, s)).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	check("year and its months missing", 3)
}
