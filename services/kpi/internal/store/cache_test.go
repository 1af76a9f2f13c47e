package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// A reader keeps decoded totals of ended months and years; a late event in a month that has
// ended (and been rolled up, and read) shows up in the very next read, before and after the
// rollup derives the month again, and an event in the current hour does not cost the held totals.
func TestLateEventAfterAMonthEndedShowsInTheNextRead(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	w := NewWriter(rdb, sla, 0, quiet)
	rollup := NewRollup(rdb, 0)
	now := t0.AddDate(1, 2, 0) // August 2026: June 2025 and the year 2025 have ended
	rollup.now = func() time.Time { return now }
	r := query.NewReader(rdb)
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	// The rolling year up to now: 2025's months, then 2026's, read from month totals.
	from, to := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Unix()/3600, now.Unix()/3600
	resolutions := func(stage string, want int64) {
		t.Helper()
		got, err := r.Totals(ctx, "acme", []bucket.Scope{ana}, from, to)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if n := got[0].C[bucket.Resolutions]; n != want {
			t.Fatalf("%s: %d resolutions, want %d", stage, n, want)
		}
	}
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	month := bucket.MonthOf(t0.Unix() / 86400)
	if rdb.Exists(ctx, bucket.MonthTotalsKey("acme", ana, month), bucket.YearTotalsKey("acme", ana, bucket.YearOf(t0.Unix()/86400))).Val() != 2 {
		t.Fatal("fixture: June 2025 and 2025 not rolled up")
	}
	resolutions("rolled up", 1)
	resolutions("read again", 1)
	gen := bucket.GenKey("acme", ana)
	g1 := rdb.Get(ctx, gen).Val()
	if g1 == "" {
		t.Fatal("no generation after a read")
	}

	// An event now, far from any totals: the generation stands.
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-now", Events: []contrib.Event{
		{Key: contrib.KeyOf("T-now/a"), Type: tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, AtMillis: now.Add(-time.Minute).UnixMilli(), Assignee: "ana"},
	}}}); err != nil {
		t.Fatal(err)
	}
	if g := rdb.Get(ctx, gen).Val(); g != g1 {
		t.Fatalf("generation %q after an event in the current hour, want %q kept", g, g1)
	}

	// A late ticket, solved in June 2025.
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-2", Events: life("T-2", "ana", "billing", 60*24*3)}}); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, gen).Val() != 0 {
		t.Fatal("the write path deleted stale totals but kept the generation")
	}
	resolutions("late event, not rolled up yet", 2)
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, bucket.MonthTotalsKey("acme", ana, month)).Val() != 1 {
		t.Fatal("June 2025 not derived again")
	}
	resolutions("late event, rolled up", 2)
	resolutions("late event, read again", 2)
}

// Under a retention, totals that expired may be derived again with other content, so the rollup
// drops the generation when it writes totals with an expiry.
func TestRollupWithRetentionDropsTheGeneration(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	gen := bucket.GenKey("acme", ana)
	for _, retention := range []time.Duration{0, 10 * 365 * 24 * time.Hour} {
		testenv.Flush(t, rdb)
		if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
			t.Fatal(err)
		}
		rdb.Set(ctx, gen, "g", 0)
		rollup := NewRollup(rdb, retention)
		rollup.now = func() time.Time { return t0.AddDate(0, 0, 2) }
		if _, err := rollup.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		if rdb.Exists(ctx, bucket.DayTotalsKey("acme", ana, t0.Unix()/86400)).Val() != 1 {
			t.Fatalf("retention %v: fixture: day totals not derived", retention)
		}
		kept := rdb.Exists(ctx, gen).Val() == 1
		if want := retention == 0; kept != want {
			t.Fatalf("retention %v: generation kept %v, want %v", retention, kept, want)
		}
	}
}

// A late event of an agent on a day that has ended shows up in the very next listing; a new
// event of an agent already listed does not drop the held union.
func TestLateAgentOnAnEndedDayShowsInTheNextListing(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	w := NewWriter(rdb, sla, 0, quiet)
	r := query.NewReader(rdb)
	from, to := t0.Add(-24*time.Hour).Unix()/3600, t0.Add(72*time.Hour).Unix()/3600
	agents := func(stage string, want string) {
		t.Helper()
		got, err := r.Agents(ctx, "acme", "", from, to)
		if err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if g := strings.Join(got, ","); g != want {
			t.Fatalf("%s: %s, want %s", stage, g, want)
		}
	}
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	agents("first", "ana")
	gen := bucket.IndexGenKey("acme")
	g1 := rdb.Get(ctx, gen).Val()
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-2", Events: life("T-2", "ana", "billing", 30)}}); err != nil {
		t.Fatal(err)
	}
	if g := rdb.Get(ctx, gen).Val(); g1 == "" || g != g1 {
		t.Fatalf("listing generation %q after %q and no new member: want it kept", g, g1)
	}
	agents("same agent again", "ana")
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-3", Events: life("T-3", "bob", "billing", 60)}}); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, gen).Val() != 0 {
		t.Fatal("a listing set gained a member and the listing generation was kept")
	}
	agents("late agent", "ana,bob")
	teams, err := r.Teams(ctx, "acme", from, to)
	if err != nil || strings.Join(teams, ",") != "billing" {
		t.Fatalf("teams %q, %v", teams, err)
	}
}

// A local day that is not a UTC day is read as the UTC day's totals less its offset hours, which
// the reader keeps under the generation: a late event in an offset hour, inside or outside the
// local day, shows up in the very next read, before and after the rollup derives the day again,
// with the ended days' hourly detail as fields or packed.
func TestLateEventInAnOffsetHourShowsInTheNextZonedRead(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	june2 := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC) // t0's day
	hour := func(tm time.Time) int64 { return tm.Unix() / 3600 }
	// Local days in June: Berlin is UTC+2, New York UTC-4.
	days := []struct {
		name     string
		from, to time.Time
	}{
		{"Berlin June 2", june2.Add(-2 * time.Hour), june2.Add(22 * time.Hour)},
		{"Berlin June 3", june2.Add(22 * time.Hour), june2.Add(46 * time.Hour)},
		{"New York June 1", june2.Add(-20 * time.Hour), june2.Add(4 * time.Hour)},
		{"New York June 2", june2.Add(4 * time.Hour), june2.Add(28 * time.Hour)},
		{"UTC June 2", june2, june2.Add(24 * time.Hour)},
	}
	// minutesAt is a ticket's start, in minutes from t0, for a resolution at tm (solved 90
	// minutes after it starts).
	minutesAt := func(tm time.Time) int { return int(tm.Sub(t0)/time.Minute) - 90 }
	for _, packAbove := range []int{0, PackHoursAbove} {
		t.Run(fmt.Sprintf("packAbove=%d", packAbove), func(t *testing.T) {
			rdb.FlushAll(ctx)
			w := NewWriter(rdb, sla, 0, quiet)
			rollup := NewRollup(rdb, 0)
			rollup.now = func() time.Time { return t0.AddDate(0, 0, 3) }
			rollup.packAbove = packAbove
			r, uncached := query.NewReader(rdb), query.NewReaderCache(rdb, 0)
			resolutions := func(stage string, want ...int64) {
				t.Helper()
				qs := make([]query.Query, len(days))
				for i, d := range days {
					qs[i] = query.Query{Scope: ana, FromHour: hour(d.from), ToHour: hour(d.to)}
				}
				// One window a call, as GetAgentKpis reads them, then all in one call, as a series.
				for i, q := range qs {
					got, err := r.Read(ctx, "acme", []query.Query{q})
					if err != nil {
						t.Fatalf("%s: %v", stage, err)
					}
					if n := got[0].C[bucket.Resolutions]; n != want[i] {
						t.Fatalf("%s: %s alone: %d resolutions, want %d", stage, days[i].name, n, want[i])
					}
				}
				got, err := r.Read(ctx, "acme", qs)
				if err != nil {
					t.Fatalf("%s: %v", stage, err)
				}
				plain, err := uncached.Read(ctx, "acme", qs)
				if err != nil {
					t.Fatalf("%s: %v", stage, err)
				}
				for i, d := range days {
					if n := got[i].C[bucket.Resolutions]; n != want[i] || got[i].C != plain[i].C {
						t.Fatalf("%s: %s: %d resolutions, want %d (counters %v, uncached %v)", stage, d.name, n, want[i], got[i].C, plain[i].C)
					}
				}
			}
			write := func(id string, solved time.Time) {
				t.Helper()
				if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: id, Events: life(id, "ana", "billing", minutesAt(solved))}}); err != nil {
					t.Fatal(err)
				}
			}
			// Two tickets here and one per late event, so that figures of the wrong hours would
			// not add up to the right counts.
			write("T-1", june2.Add(10*time.Hour+30*time.Minute))
			write("T-1b", june2.Add(11*time.Hour+30*time.Minute))
			if _, err := rollup.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			if rdb.Exists(ctx, bucket.DayTotalsKey("acme", ana, june2.Unix()/86400)).Val() != 1 {
				t.Fatal("fixture: June 2 not rolled up")
			}
			if packed := rdb.HExists(ctx, bucket.HourKey("acme", ana, june2.Unix()/86400), bucket.PackedHoursField).Val(); packed != (packAbove == 0) {
				t.Fatalf("fixture: June 2's hours packed %v, want %v", packed, packAbove == 0)
			}
			resolutions("rolled up", 2, 0, 0, 2, 2)
			resolutions("read again", 2, 0, 0, 2, 2)
			// Held: the read script reads no hourly detail.
			if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Read(ctx, "acme", []query.Query{{Scope: ana, FromHour: hour(days[0].from), ToHour: hour(days[0].to)},
				{Scope: ana, FromHour: hour(days[2].from), ToHour: hour(days[3].to)}}); err != nil {
				t.Fatal(err)
			}
			if stats := rdb.Info(ctx, "commandstats").Val(); strings.Contains(stats, "cmdstat_hscan") || strings.Contains(stats, "cmdstat_hget:") {
				t.Fatalf("a held read read hourly detail:\n%s", stats)
			}

			// Solved at 23:30 UTC on June 2: Berlin's June 3, New York's June 2.
			write("T-2", june2.Add(23*time.Hour+30*time.Minute))
			resolutions("late event at 23:30, not rolled up yet", 2, 1, 0, 3, 3)
			if _, err := rollup.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			resolutions("late event at 23:30, rolled up", 2, 1, 0, 3, 3)
			resolutions("late event at 23:30, read again", 2, 1, 0, 3, 3)

			// Solved at 01:30 UTC on June 2: Berlin's June 2, New York's June 1.
			write("T-3", june2.Add(90*time.Minute))
			resolutions("late event at 01:30, not rolled up yet", 3, 1, 1, 3, 4)
			if _, err := rollup.Pass(ctx); err != nil {
				t.Fatal(err)
			}
			resolutions("late event at 01:30, rolled up", 3, 1, 1, 3, 4)
			resolutions("late event at 01:30, read again", 3, 1, 1, 3, 4)
		})
	}
}
