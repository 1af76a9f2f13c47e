package store

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// roundTrips counts a client's round trips: one per command sent alone, one per pipeline.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) Count() int64                                { return r.n.Load() }
func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// keyLookups is how many key lookups Redis made since the last call (its keyspace hits and misses).
func keyLookups(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	ctx := context.Background()
	info, err := rdb.Info(ctx, "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\r\n") {
		for _, f := range []string{"keyspace_hits:", "keyspace_misses:"} {
			if v, ok := strings.CutPrefix(line, f); ok {
				x, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				n += x
			}
		}
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// An agent idle for most of the ten-year window: the rollup writes no empty totals before its
// first figures, and the window reads the same figures as from data written before the mark
// existed (every idle period's empty totals, which still read correctly), in as many round trips
// and with no more key lookups, from fewer keys.
// It counts one server's key lookups (INFO stats), so it runs on one server whatever
// TICKETPULSE_TEST_REDIS says.
func TestIdleAgentsTenYearWindowReadsNoMoreKeys(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.RedisSingle(t)
	now := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	w := NewWriter(rdb, sla, 0, quiet)
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	for _, tenant := range []string{"acme", "old"} {
		if _, err := w.Write(ctx, []Ticket{{Tenant: tenant, ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	// The old release wrote no mark.
	oldKeys, err := rdb.Keys(ctx, "tp:{old:*}:ff").Result()
	if err != nil || len(oldKeys) == 0 {
		t.Fatalf("fixture: marks of tenant old %v (%v)", oldKeys, err)
	}
	if err := rdb.Del(ctx, oldKeys...).Err(); err != nil {
		t.Fatal(err)
	}
	if first, err := rdb.Get(ctx, bucket.FirstKey("acme", ana)).Int64(); err != nil || first != t0.Unix()/86400 {
		t.Fatalf("ana's first-figures mark %d (%v), want %d", first, err, t0.Unix()/86400)
	}
	rollup := NewRollup(rdb, 0)
	rollup.now = func() time.Time { return now }
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, rdb)
	count := func(tenant string) int {
		keys, err := rdb.Keys(ctx, "tp:{"+tenant+":a:ana}:*t:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if n, old := count("acme"), count("old"); n >= old-100 {
		t.Errorf("ana has %d totals keys, against %d with every idle period's empty totals", n, old)
	}

	trips := &roundTrips{}
	rdb.AddHook(trips)
	from, to := now.AddDate(-10, 0, 0).Unix()/3600, now.Unix()/3600
	read := func(tenant string, cacheBytes int) (*bucket.Totals, int64, int64) {
		t.Helper()
		r := query.NewReaderCache(rdb, cacheBytes)
		if _, err := r.Totals(ctx, tenant, []bucket.Scope{ana}, from, to); err != nil { // loads the script
			t.Fatal(err)
		}
		keyLookups(t, rdb)
		before := trips.Count()
		got, err := r.Totals(ctx, tenant, []bucket.Scope{ana}, from, to)
		if err != nil {
			t.Fatal(err)
		}
		return got[0], trips.Count() - before, keyLookups(t, rdb)
	}
	got, trips1, lookups := read("acme", 0)
	want, oldTrips, oldLookups := read("old", 0)
	if got.C[bucket.Assigned] != 1 || !reflect.DeepEqual(got, want) {
		t.Errorf("ten years of ana: %v, from the old layout %v; want 1 assigned in both", got.C, want.C)
	}
	// (The days of the current month that have no figures have no totals, in both: a second
	// round trip reads their hours.)
	if trips1 != oldTrips {
		t.Errorf("%d round trips, against %d with every idle period's empty totals", trips1, oldTrips)
	}
	if lookups > oldLookups || lookups == 0 {
		t.Errorf("%d key lookups, against %d with every idle period's empty totals", lookups, oldLookups)
	}
	// A replica that keeps decoded totals keeps the periods before the first figures as empty
	// too: the next read asks only whether the scope's generation stands.
	_, _, warm := read("acme", query.DefaultCacheBytes)
	_, _, oldWarm := read("old", query.DefaultCacheBytes)
	if warm > oldWarm {
		t.Errorf("%d key lookups by a replica that read the window before, against %d with every idle period's empty totals", warm, oldWarm)
	}
}

// A late event far before a scope's first figures lowers its mark in the same step as it lands,
// so the very next read counts it; the rollup then derives the periods between the new and the
// old mark, and the window is read in as many round trips as before.
func TestLateEventBeforeTheFirstFiguresIsCounted(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	now := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	w := NewWriter(rdb, sla, 0, quiet)
	rollup := NewRollup(rdb, 0)
	rollup.now = func() time.Time { return now }
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	trips := &roundTrips{}
	rdb.AddHook(trips)
	r := query.NewReader(rdb)
	from, to := now.AddDate(-10, 0, 0).Unix()/3600, now.Unix()/3600
	assigned := func(stage string, want, wantTrips int64) int64 {
		t.Helper()
		before := trips.Count()
		got, err := r.Totals(ctx, "acme", []bucket.Scope{ana, {Kind: bucket.Team, ID: "billing"}}, from, to)
		if err != nil {
			t.Fatal(err)
		}
		for i, tot := range got {
			if tot.C[bucket.Assigned] != want {
				t.Errorf("%s: scope %d: %d assigned, want %d", stage, i, tot.C[bucket.Assigned], want)
			}
		}
		n := trips.Count() - before
		if wantTrips > 0 && n != wantTrips {
			t.Errorf("%s: %d round trips, want %d", stage, n, wantTrips)
		}
		return n
	}
	trips0 := assigned("before", 1, 0)
	late := time.Date(2018, 2, 7, 10, 0, 0, 0, time.UTC)
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-2", Events: life("T-2", "ana", "billing", -int(t0.Sub(late)/time.Minute))}}); err != nil {
		t.Fatal(err)
	}
	if first, err := rdb.Get(ctx, bucket.FirstKey("acme", ana)).Int64(); err != nil || first != late.Unix()/86400 {
		t.Fatalf("ana's mark after the late event: %d (%v), want %d", first, err, late.Unix()/86400)
	}
	checkTotals(t, rdb)
	assigned("late event, not rolled up", 2, 0) // read from the days and hours of 2018
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	checkTotals(t, rdb)
	for m := bucket.MonthOf(late.Unix() / 86400); m < bucket.MonthOf(t0.Unix()/86400); m++ {
		if rdb.Exists(ctx, bucket.MonthTotalsKey("acme", ana, m)).Val() != 1 {
			t.Fatalf("month %d, between the new and the old first figures, has no totals", m)
		}
	}
	assigned("rolled up", 2, trips0)
}
