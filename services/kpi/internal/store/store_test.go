package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	t0    = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC) // last year's tickets: a backfill
)

func sla(string) contrib.SLA { return contrib.DefaultSLA() }

func e(id string, typ tpv1.EventType, minutes int, f func(*contrib.Event)) contrib.Event {
	ev := contrib.Event{Key: contrib.KeyOf(id), Type: typ, AtMillis: t0.Add(time.Duration(minutes) * time.Minute).UnixMilli()}
	if f != nil {
		f(&ev)
	}
	return ev
}

// life is one ticket: created by a customer, assigned to agent in team, replied, solved, rated.
func life(ticket, agent, team string, start int) []contrib.Event {
	p := func(s string) string { return ticket + "/" + s }
	return []contrib.Event{
		e(p("c"), tpv1.EventType_EVENT_TYPE_TICKET_CREATED, start, func(ev *contrib.Event) {
			ev.Actor, ev.ActorID, ev.Team = tpv1.ActorKind_ACTOR_KIND_CUSTOMER, "cu", team
		}),
		e(p("a"), tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, start+1, func(ev *contrib.Event) { ev.Assignee = agent }),
		e(p("r"), tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, start+20, func(ev *contrib.Event) {
			ev.Actor, ev.ActorID, ev.Public = tpv1.ActorKind_ACTOR_KIND_AGENT, agent, 2
		}),
		e(p("s"), tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, start+90, func(ev *contrib.Event) {
			ev.Status = tpv1.TicketStatus_TICKET_STATUS_SOLVED
		}),
		e(p("q"), tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, start+200, func(ev *contrib.Event) { ev.Score = 4 }),
	}
}

// buckets dumps every KPI bucket and index key (not ticket states or marks).
func buckets(t *testing.T, rdb redis.UniversalClient) map[string]map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]map[string]string{}
	keys := testenv.Keys(t, rdb, "tp:*")
	for _, k := range keys {
		switch {
		case strings.Contains(k, ":t:"), strings.Contains(k, ":m:"), strings.Contains(k, ":dt:"), strings.Contains(k, ":wt:"),
			strings.Contains(k, ":mt:"), strings.Contains(k, ":yt:"),
			strings.HasSuffix(k, ":topack"), strings.HasSuffix(k, ":toseal"), strings.HasSuffix(k, ":tomonth"), strings.HasSuffix(k, ":toyear"),
			strings.HasSuffix(k, ":resolved"), strings.HasSuffix(k, "}:ff"):
			// Ticket state, marks, the rollup's totals and its queues (see checkTotals), the
			// compactor's resolved tickets, the first-figures marks (any delta ever applied lowers
			// one, so out-of-order deliveries may leave it lower; checkTotals checks it is not
			// after any figures).
			continue
		case strings.Contains(k, ":ix}"):
			m, _ := rdb.SMembers(ctx, k).Result()
			out[k] = map[string]string{}
			for _, v := range m {
				out[k][v] = "1"
			}
		default:
			out[k], _ = rdb.HGetAll(ctx, k).Result()
			// An hour hash the rollup packed holds the same fields.
			if packed, ok := out[k][bucket.PackedHoursField]; ok {
				delete(out[k], bucket.PackedHoursField)
				if err := bucket.EachPackedHours(packed, func(hh int, f, v string) error {
					f = bucket.HourField(hh, f)
					if _, dup := out[k][f]; dup {
						return fmt.Errorf("field %s both packed and not", f)
					}
					out[k][f] = v
					return nil
				}); err != nil {
					t.Fatalf("%s: %v", k, err)
				}
			}
		}
	}
	return out
}

// checkTotals fails unless every day, week, month and year totals key equals the sum of its hours.
func checkTotals(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	keys := testenv.Keys(t, rdb, "tp:*")
	for _, k := range keys {
		var prefix string
		var days []int64
		if i := strings.LastIndex(k, ":h:"); i >= 0 && !strings.Contains(k, ":ix}") {
			// No figures before the scope's first-figures mark.
			day, _ := strconv.ParseInt(k[i+3:], 10, 64)
			if first, err := rdb.Get(ctx, k[:i]+":ff").Int64(); err == nil && first > day && rdb.Exists(ctx, k).Val() == 1 {
				t.Fatalf("%s has figures before the scope's first-figures mark, day %d", k, first)
			}
			continue
		}
		if i := strings.LastIndex(k, ":dt:"); i >= 0 {
			day, _ := strconv.ParseInt(k[i+4:], 10, 64)
			prefix, days = k[:i], []int64{day}
		} else if i := strings.LastIndex(k, ":wt:"); i >= 0 {
			week, _ := strconv.ParseInt(k[i+4:], 10, 64)
			prefix = k[:i]
			for d := bucket.FirstDayOfWeek(week); d < bucket.FirstDayOfWeek(week)+7; d++ {
				days = append(days, d)
			}
		} else if i := strings.LastIndex(k, ":mt:"); i >= 0 {
			month, _ := strconv.ParseInt(k[i+4:], 10, 64)
			prefix = k[:i]
			for d := bucket.FirstDayOfMonth(month); d < bucket.FirstDayOfMonth(month+1); d++ {
				days = append(days, d)
			}
		} else if i := strings.LastIndex(k, ":yt:"); i >= 0 {
			year, _ := strconv.ParseInt(k[i+4:], 10, 64)
			prefix = k[:i]
			for d := bucket.FirstDayOfYear(year); d < bucket.FirstDayOfYear(year+1); d++ {
				days = append(days, d)
			}
		} else {
			continue
		}
		packed, err := rdb.Get(ctx, k).Result()
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		got, want := bucket.NewTotals(), bucket.NewTotals()
		if err := got.AddPacked(packed); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		// One round trip for the hours of a key: a year has 365 of them.
		pipe := rdb.Pipeline()
		hours := make([]*redis.MapStringStringCmd, len(days))
		for i, d := range days {
			hours[i] = pipe.HGetAll(ctx, prefix+":h:"+strconv.FormatInt(d, 10))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for _, h := range hours {
			if err := want.AddHourHash(h.Val(), 0, 24); err != nil {
				t.Fatal(err)
			}
		}
		if got.C != want.C || !maps.Equal(got.H[0], want.H[0]) || !maps.Equal(got.H[1], want.H[1]) || !maps.Equal(got.H[2], want.H[2]) {
			t.Fatalf("%s = %q, but its hours sum to %v", k, packed, want)
		}
	}
}

func dayTotals(t *testing.T, rdb redis.UniversalClient, s bucket.Scope, at time.Time) *bucket.Totals {
	t.Helper()
	tot := bucket.NewTotals()
	h, err := rdb.HGetAll(context.Background(), bucket.HourKey("acme", s, at.Unix()/86400)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := tot.AddHourHash(h, 0, 24); err != nil {
		t.Fatal(err)
	}
	return tot
}

func TestWriteCountsAndIsIdempotent(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	batch := []Ticket{
		{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana@example.com", "billing", 0)},
		{Tenant: "acme", ID: "T-2", Events: life("T-2", "ana@example.com", "billing", 5)},
	}
	res, err := w.Write(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.NewEvents != 10 || res.Duplicates != 0 {
		t.Fatalf("new %d dup %d, want 10 and 0", res.NewEvents, res.Duplicates)
	}
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana@example.com"}
	tot := dayTotals(t, rdb, ana, t0)
	checks := map[bucket.Counter]int64{
		bucket.FirstCount: 2, bucket.FirstSumMillis: 2 * 20 * 60_000, bucket.Resolutions: 2,
		bucket.Assigned: 2, bucket.AssignedNowResolved: 2, bucket.CSATCount: 2, bucket.CSATPositive: 2,
		bucket.SLAMet: 2, bucket.OneTouch: 2,
	}
	for c, want := range checks {
		if tot.C[c] != want {
			t.Errorf("%s = %d, want %d", c.Field(), tot.C[c], want)
		}
	}
	if got := dayTotals(t, rdb, bucket.Scope{Kind: bucket.Team, ID: "billing"}, t0).C[bucket.Resolutions]; got != 2 {
		t.Errorf("team resolutions = %d, want 2", got)
	}
	before := buckets(t, rdb)

	res, err = w.Write(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if res.NewEvents != 0 || res.Duplicates != 10 {
		t.Fatalf("second write: new %d dup %d, want 0 and 10", res.NewEvents, res.Duplicates)
	}
	if after := buckets(t, rdb); !equalDump(before, after) {
		t.Fatalf("a duplicate delivery changed the buckets:\n%s", dumpDiff(after, before))
	}
	// Pending deltas are cleared once applied.
	if f, _ := rdb.HKeys(ctx, TicketKey("acme", "T-1")).Result(); !sameFields(f, "v", "s", "t") {
		t.Fatalf("ticket hash has fields %q, want v, s and t only", f)
	}
}

func equalDump(a, b map[string]map[string]string) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]string) bool { return maps.Equal(x, y) })
}

// dumpDiff describes how got differs from want, key by key.
func dumpDiff(got, want map[string]map[string]string) string {
	var b strings.Builder
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			fmt.Fprintf(&b, "missing %s\n", k)
			continue
		}
		for f, v := range w {
			if g[f] != v {
				fmt.Fprintf(&b, "%s %s: got %q want %q\n", k, f, g[f], v)
			}
		}
		for f, v := range g {
			if _, ok := w[f]; !ok {
				fmt.Fprintf(&b, "%s %s: extra %q\n", k, f, v)
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "extra key %s\n", k)
		}
	}
	return b.String()
}

// withoutIndex drops the listing index: it only ever grows (an agent credited in an intermediate
// state stays listed, with zero figures), so it is compared as a superset instead.
func withoutIndex(d map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for k, v := range d {
		if !strings.Contains(k, ":ix}") {
			out[k] = v
		}
	}
	return out
}

func indexCovers(got, want map[string]map[string]string) bool {
	for k, w := range want {
		if !strings.Contains(k, ":ix}") {
			continue
		}
		for m := range w {
			if _, ok := got[k][m]; !ok {
				return false
			}
		}
	}
	return true
}

var errCrash = errors.New("simulated crash")

// A writer that dies after any step, followed by the redelivery of the same batch to a fresh writer,
// ends with exactly the buckets of an uninterrupted write.
func TestCrashBetweenStepsDoesNotDoubleCount(t *testing.T) {
	batch := []Ticket{
		{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)},
		{Tenant: "acme", ID: "T-2", Events: life("T-2", "bob", "tech", 30)},
	}
	rdb := testenv.Redis(t)
	ctx := context.Background()
	if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	want := buckets(t, rdb)

	for _, step := range []string{StepStored, StepApplied} {
		t.Run("after "+step, func(t *testing.T) {
			rdb := testenv.Redis(t)
			crashing := NewWriter(rdb, sla, 0, quiet)
			crashing.SetHook(func(s string) error {
				if s == step {
					return errCrash
				}
				return nil
			})
			if _, err := crashing.Write(ctx, batch); !errors.Is(err, errCrash) {
				t.Fatalf("want the simulated crash, got %v", err)
			}
			if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, batch); err != nil {
				t.Fatal(err)
			}
			if got := buckets(t, rdb); !equalDump(got, want) {
				t.Fatalf("after crash and redelivery:\n%s", dumpDiff(got, want))
			}
		})
	}
}

// A redelivery that shares a scope with new work: in one apply of the scope, the new ticket's
// deltas land once and those applied before the crash are not counted again.
func TestRedeliveryBesideNewWorkInOneScope(t *testing.T) {
	ctx := context.Background()
	first := []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}
	both := append(first, Ticket{Tenant: "acme", ID: "T-2", Events: life("T-2", "ana", "billing", 20)})
	rdb := testenv.Redis(t)
	if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, both); err != nil {
		t.Fatal(err)
	}
	want := buckets(t, rdb)

	rdb = testenv.Redis(t)
	crashing := NewWriter(rdb, sla, 0, quiet)
	crashing.SetHook(func(s string) error {
		if s == StepApplied {
			return errCrash
		}
		return nil
	})
	if _, err := crashing.Write(ctx, first); !errors.Is(err, errCrash) {
		t.Fatalf("want the simulated crash, got %v", err)
	}
	res, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, both)
	if err != nil {
		t.Fatal(err)
	}
	if res.NewEvents != len(both[1].Events) {
		t.Fatalf("new events %d, want T-2's %d", res.NewEvents, len(both[1].Events))
	}
	if got := buckets(t, rdb); !equalDump(got, want) {
		t.Fatalf("after crash and a batch with new work in the same scope:\n%s", dumpDiff(got, want))
	}
}

// The stalled writer case: writer A stored and applied but has not cleared; writer B finishes the
// same pending deltas and clears them; then A's late apply must not count them again.
func TestLateApplyOfClearedDeltasIsANoOp(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	batch := []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}
	if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	want := buckets(t, rdb)

	testenv.Flush(t, rdb)
	a := NewWriter(rdb, sla, 0, quiet)
	stop := errors.New("stalled")
	a.SetHook(func(s string) error {
		if s == StepStored {
			return stop
		}
		return nil
	})
	if _, err := a.Write(ctx, batch); !errors.Is(err, stop) {
		t.Fatal(err)
	}
	// Keep what A had in hand, as a stalled process would.
	todo := []*work{{t: &batch[0], space: "acme", primary: true, key: TicketKey("acme", "T-1")}}
	if _, err := a.read(ctx, todo, nil); err != nil {
		t.Fatal(err)
	}
	if len(todo[0].pending) != 1 {
		t.Fatalf("want one pending entry, got %d", len(todo[0].pending))
	}
	if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, batch); err != nil { // B
		t.Fatal(err)
	}
	if err := a.apply(ctx, todo, &Result{Changed: map[string]map[bucket.Scope]struct{}{}}); err != nil { // A wakes up
		t.Fatal(err)
	}
	if got := buckets(t, rdb); !equalDump(got, want) {
		t.Fatalf("late apply changed the figures:\n%s", dumpDiff(got, want))
	}
}

// Random histories split into random batches, with duplicates, crashes and two concurrent writers,
// end with the buckets of one clean in-order write.
func TestRandomDeliveriesConverge(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	r := rand.New(rand.NewPCG(3, 4))
	agents := []string{"ana", "bob", "chen wu", "dé.{x}"}
	teams := []string{"billing", "tech"}
	var all []Ticket
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("T-%d", i)
		evs := life(id, agents[r.IntN(len(agents))], teams[r.IntN(2)], r.IntN(60*24*10))
		if r.IntN(3) == 0 { // reopened and re-solved by someone else
			p := func(s string) string { return id + "/" + s }
			evs = append(evs,
				e(p("o"), tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 400, func(ev *contrib.Event) { ev.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN }),
				e(p("a2"), tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, 401, func(ev *contrib.Event) { ev.Assignee = agents[r.IntN(len(agents))] }),
				e(p("s2"), tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 500, func(ev *contrib.Event) { ev.Status = tpv1.TicketStatus_TICKET_STATUS_SOLVED }))
		}
		all = append(all, Ticket{Tenant: "acme", ID: id, Events: evs})
	}
	if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, all); err != nil {
		t.Fatal(err)
	}
	want := buckets(t, rdb)
	testenv.Flush(t, rdb)

	// Flatten into single-event deliveries, duplicate some, shuffle.
	type delivery struct {
		ticket int
		ev     contrib.Event
	}
	var ds []delivery
	for i, tk := range all {
		for _, ev := range tk.Events {
			ds = append(ds, delivery{i, ev})
			if r.IntN(4) == 0 {
				ds = append(ds, delivery{i, ev})
			}
		}
	}
	r.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })

	var wg sync.WaitGroup
	errc := make(chan error, 3)
	// A rollup races the writers, with a clock that has every day ended, so late changes keep
	// hitting totals it has just derived.
	writing := make(chan struct{})
	rollup := NewRollup(rdb, 0)
	rollup.now = func() time.Time { return time.Now().AddDate(1, 0, 0) }
	rollup.packAbove = 0 // every ended day's hours packed, and unpacked by the late writes
	rolled := make(chan RollupResult, 1)
	go func() {
		var total RollupResult
		defer func() { rolled <- total }()
		for {
			n, err := rollup.Pass(ctx)
			if err != nil {
				errc <- err
				return
			}
			total.Days += n.Days
			total.Weeks += n.Weeks
			total.Months += n.Months
			total.Years += n.Years
			select {
			case <-writing:
				return
			default:
			}
		}
	}()
	for worker := 0; worker < 2; worker++ {
		part := ds[worker*len(ds)/2 : (worker+1)*len(ds)/2]
		seed := uint64(worker)
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 9))
			w := NewWriter(rdb, sla, 0, quiet)
			for len(part) > 0 {
				n := 1 + r.IntN(min(len(part), 12))
				byTicket := map[int][]contrib.Event{}
				for _, d := range part[:n] {
					byTicket[d.ticket] = append(byTicket[d.ticket], d.ev)
				}
				var batch []Ticket
				for i, evs := range byTicket {
					batch = append(batch, Ticket{Tenant: "acme", ID: all[i].ID, Events: evs})
				}
				crashAt := []string{"", "", StepStored, StepApplied}[r.IntN(4)]
				w.SetHook(func(s string) error {
					if s == crashAt {
						return errCrash
					}
					return nil
				})
				if _, err := w.Write(ctx, batch); err != nil && !errors.Is(err, errCrash) {
					errc <- err
					return
				} else if err != nil {
					continue // redelivered: the same batch again
				}
				part = part[n:]
			}
		}()
	}
	wg.Wait()
	close(writing)
	during := <-rolled
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if during.Days == 0 || during.Weeks == 0 || during.Months == 0 || during.Years == 0 {
		t.Errorf("the rollup derived %+v while the writers ran; the race was not exercised", during)
	}
	checkTotals(t, rdb)
	// What the writers changed after the rollup's last pass is queued: one more pass derives it.
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{bucket.ToPackKey("acme"), bucket.ToSealKey("acme"), bucket.ToMonthKey("acme"), bucket.ToYearKey("acme")} {
		if left, _ := rdb.SCard(ctx, key).Result(); left != 0 {
			t.Errorf("%d periods still queued in %s after the last rollup", left, key)
		}
	}
	checkTotals(t, rdb)
	// And every day with figures has its totals, and so have its month and year.
	hours := testenv.Keys(t, rdb, "tp:*:h:*")
	for _, h := range hours {
		i := strings.LastIndex(h, ":h:")
		if rdb.Exists(ctx, h[:i]+":dt:"+h[i+3:]).Val() != 1 {
			t.Errorf("%s has no day totals after the last rollup", h)
		}
		day, _ := strconv.ParseInt(h[i+3:], 10, 64)
		for _, k := range []string{h[:i] + ":mt:" + strconv.FormatInt(bucket.MonthOf(day), 10), h[:i] + ":yt:" + strconv.FormatInt(bucket.YearOf(day), 10)} {
			if rdb.Exists(ctx, k).Val() != 1 {
				t.Errorf("%s has no totals %s after the last rollup", h, k)
			}
		}
	}
	got := buckets(t, rdb)
	if !equalDump(withoutIndex(got), withoutIndex(want)) {
		t.Fatalf("random deliveries diverged:\n%s", dumpDiff(withoutIndex(got), withoutIndex(want)))
	}
	if !indexCovers(got, want) {
		t.Fatal("listing index lost an agent or team")
	}
}

func TestStateCodecRoundTrip(t *testing.T) {
	evs := life("T-1", "ana", "billing", 0)
	c := contrib.Compute(evs, contrib.DefaultSLA())
	b := encodeState(ticketState{Events: evs, Applied: c.Values})
	got, err := decodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Events) != len(evs) || !maps.Equal(got.Applied, c.Values) {
		t.Fatalf("round trip lost data")
	}
	for i := range evs {
		if got.Events[i] != evs[i] {
			t.Fatalf("event %d: got %+v want %+v", i, got.Events[i], evs[i])
		}
	}
	t.Logf("state of a 5-event ticket: %d bytes", len(b))
	for n := 0; n < len(b); n++ {
		if _, err := decodeState(b[:n]); err == nil && n < len(b)-1 {
			// A truncated blob must never decode into something else silently.
			t.Fatalf("truncated state (%d of %d bytes) decoded without error", n, len(b))
		}
	}
}

func FuzzDecodeState(f *testing.F) {
	evs := life("T-1", "ana", "billing", 0)
	f.Add(encodeState(ticketState{Events: evs, Applied: contrib.Compute(evs, contrib.DefaultSLA()).Values}))
	f.Add([]byte{1, 0, 0, 0})
	f.Add(encodeTombstone([]uint32{1, 2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeState(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same thing.
		again, err := decodeState(encodeState(s))
		if err != nil || len(again.Events) != len(s.Events) || !maps.Equal(again.Applied, s.Applied) ||
			again.Compacted != s.Compacted || !slices.Equal(again.Seen, s.Seen) {
			t.Fatalf("re-encoding changed the state: %v", err)
		}
	})
}

func TestRetentionExpiresBucketsAfterTheirPeriod(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now().UTC()
	// The recent ticket lives yesterday from 10:00 to 13:20 UTC: a day that has ended whatever
	// the time the test runs (a ticket of a few hours ago may straddle midnight, and its day may
	// not have ended).
	recentDay := now.Unix()/86400 - 1
	recentStart := time.Unix(recentDay*86400+10*3600, 0)
	recent := Ticket{Tenant: "acme", ID: "T-new", Events: nil}
	for _, ev := range life("T-new", "ana", "billing", 0) {
		ev.AtMillis += recentStart.UnixMilli() - t0.UnixMilli()
		recent.Events = append(recent.Events, ev)
	}
	old := Ticket{Tenant: "acme", ID: "T-old", Events: life("T-old", "bob", "billing", 0)} // June 2025
	w := NewWriter(rdb, sla, 30*24*time.Hour, quiet)
	if _, err := w.Write(ctx, []Ticket{recent, old}); err != nil {
		t.Fatal(err)
	}
	bob := bucket.Scope{Kind: bucket.Agent, ID: "bob"}
	if n, _ := rdb.Exists(ctx, bucket.HourKey("acme", bob, t0.Unix()/86400)).Result(); n != 0 {
		t.Errorf("a bucket older than the retention was kept")
	}
	anaDay := bucket.HourKey("acme", bucket.Scope{Kind: bucket.Agent, ID: "ana"}, recentDay)
	ttl, err := rdb.TTL(ctx, anaDay).Result()
	if err != nil || ttl < 29*24*time.Hour || ttl > 32*24*time.Hour {
		t.Errorf("recent day bucket TTL = %v (%v), want about 30 days past the day's end", ttl, err)
	}
	// Totals the rollup derives expire with their hours.
	if _, err := NewRollup(rdb, 30*24*time.Hour).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, bucket.DayTotalsKey("acme", bob, t0.Unix()/86400)).Result(); n != 0 {
		t.Errorf("totals of a day older than the retention were derived")
	}
	key := bucket.DayTotalsKey("acme", bucket.Scope{Kind: bucket.Agent, ID: "ana"}, recentDay)
	if ttl, err := rdb.TTL(ctx, key).Result(); err != nil || ttl < 29*24*time.Hour || ttl > 32*24*time.Hour {
		t.Errorf("day totals TTL = %v (%v), want about 30 days past the day's end", ttl, err)
	}
	// billing has figures since June 2025, so its idle last week gets (empty) totals; ana's first
	// figures are yesterday's, so its last week gets none unless yesterday was in it.
	lastWeek := bucket.WeekOf(now.Unix()/86400) - 1
	if bucket.WeekOf(recentDay) > lastWeek {
		if n, _ := rdb.Exists(ctx, bucket.WeekTotalsKey("acme", bucket.Scope{Kind: bucket.Agent, ID: "ana"}, lastWeek)).Result(); n != 0 {
			t.Error("a week before the agent's first figures got totals")
		}
	}
	weekKey := bucket.WeekTotalsKey("acme", bucket.Scope{Kind: bucket.Team, ID: "billing"}, lastWeek)
	if ttl, err := rdb.TTL(ctx, weekKey).Result(); err != nil || ttl < 22*24*time.Hour || ttl > 31*24*time.Hour {
		t.Errorf("last week's totals TTL = %v (%v), want 30 days past the week's end", ttl, err)
	}
	// The day's listing index expires with its buckets; the list of every agent ever seen does not.
	idx := bucket.AgentsKey("acme", recentDay)
	if ttl, err := rdb.TTL(ctx, idx).Result(); err != nil || ttl < 29*24*time.Hour || ttl > 32*24*time.Hour {
		t.Errorf("day index TTL = %v (%v), want about 30 days past the day's end", ttl, err)
	}
	if ttl, _ := rdb.TTL(ctx, bucket.AllAgentsKey("acme")).Result(); ttl != -1 {
		t.Errorf("TTL of the all-agents set = %v, want none", ttl)
	}
	// Without retention buckets are kept forever.
	testenv.Flush(t, rdb)
	if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, []Ticket{old}); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rdb.TTL(ctx, bucket.HourKey("acme", bob, t0.Unix()/86400)).Result(); ttl != -1 {
		t.Errorf("TTL without retention = %v, want none", ttl)
	}
	if _, err := NewRollup(rdb, 0).Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rdb.TTL(ctx, bucket.DayTotalsKey("acme", bob, t0.Unix()/86400)).Result(); ttl != -1 {
		t.Errorf("TTL of day totals without retention = %v, want none", ttl)
	}
}

// The write path adds to the hourly detail only; the rollup derives the totals of ended days and
// weeks from it. A late event deletes the totals it makes stale in the same atomic step and queues
// them again, so totals that exist always equal their hours.
func TestRollupTotalsEqualTheirHours(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	rollup := NewRollup(rdb, 0)
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	day := t0.Unix() / 86400
	week := bucket.WeekOf(day)
	dayKey, weekKey := bucket.DayTotalsKey("acme", ana, day), bucket.WeekTotalsKey("acme", ana, week)
	hoursOf := func(days ...int64) *bucket.Totals {
		tot := bucket.NewTotals()
		for _, d := range days {
			h, _ := rdb.HGetAll(ctx, bucket.HourKey("acme", ana, d)).Result()
			if err := tot.AddHourHash(h, 0, 24); err != nil {
				t.Fatal(err)
			}
		}
		return tot
	}
	weekDays := func() []int64 {
		first := bucket.FirstDayOfWeek(week)
		return []int64{first, first + 1, first + 2, first + 3, first + 4, first + 5, first + 6}
	}
	totals := func(key string) *bucket.Totals {
		packed, err := rdb.Get(ctx, key).Result()
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		tot := bucket.NewTotals()
		if err := tot.AddPacked(packed); err != nil {
			t.Fatal(err)
		}
		return tot
	}
	equal := func(a, b *bucket.Totals) bool {
		return a.C == b.C && maps.Equal(a.H[0], b.H[0]) && maps.Equal(a.H[1], b.H[1]) && maps.Equal(a.H[2], b.H[2])
	}
	queued := func(key string, member int64) bool {
		got, _ := rdb.SMembers(ctx, key).Result()
		return slices.Contains(got, strconv.FormatInt(member, 10))
	}

	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, dayKey, weekKey).Result(); n != 0 {
		t.Fatal("the write path wrote totals")
	}
	if !queued(bucket.ToPackKey("acme"), day) || !queued(bucket.ToSealKey("acme"), week) {
		t.Fatal("the day and week written to were not queued for the rollup")
	}
	n, err := rollup.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ana, billing and the unassigned figures each had the day; every scope gets the week.
	if n.Days < 2 || n.Weeks < 3 {
		t.Fatalf("rollup wrote %+v, want at least 2 days and 3 weeks", n)
	}
	if got := totals(dayKey); !equal(got, hoursOf(day)) || got.C[bucket.Assigned] != 1 {
		t.Fatalf("day totals %v differ from the day's hours %v", got.C, hoursOf(day).C)
	}
	if got := totals(weekKey); !equal(got, hoursOf(weekDays()...)) || got.C[bucket.Assigned] != 1 {
		t.Fatalf("week totals %v differ from its hours %v", got.C, hoursOf(weekDays()...).C)
	}
	if queued(bucket.ToPackKey("acme"), day) || queued(bucket.ToSealKey("acme"), week) {
		t.Fatal("the rolled up day and week are still queued")
	}
	if again, err := rollup.Pass(ctx); err != nil || again.Days != 0 || again.Weeks != 0 {
		t.Fatalf("a second pass wrote %+v (%v), want nothing", again, err)
	}

	// Late events: a reopen of T-1 on its day and a new ticket the next day, same week.
	if _, err := w.Write(ctx, []Ticket{
		{Tenant: "acme", ID: "T-1", Events: []contrib.Event{
			e("T-1/o", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 300, func(ev *contrib.Event) { ev.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN }),
		}},
		{Tenant: "acme", ID: "T-2", Events: life("T-2", "ana", "billing", 60*24)},
	}); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, dayKey, weekKey).Result(); n != 0 {
		t.Fatal("totals made stale by late events were kept")
	}
	if !queued(bucket.ToPackKey("acme"), day) || !queued(bucket.ToSealKey("acme"), week) {
		t.Fatal("the day and week changed late were not queued again")
	}
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := totals(dayKey); !equal(got, hoursOf(day)) || got.C[bucket.Reopens] != 1 {
		t.Fatalf("after late events the day totals %v differ from its hours %v", got.C, hoursOf(day).C)
	}
	if got := totals(weekKey); !equal(got, hoursOf(weekDays()...)) || got.C[bucket.Assigned] != 2 || got.C[bucket.Reopens] != 1 {
		t.Fatalf("after late events the week totals %v differ from its hours %v", got.C, hoursOf(weekDays()...).C)
	}
	// A replayed batch applies nothing, so it leaves the totals alone.
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-2", Events: life("T-2", "ana", "billing", 60*24)}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, dayKey, weekKey).Result(); n != 2 {
		t.Fatal("a duplicate delivery deleted totals")
	}
}

// The current day and week are not rolled up before they end, whatever the write path queued.
func TestRollupWaitsForTheEndOfTheDayAndWeek(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	rollup := NewRollup(rdb, 0)
	now := time.Now().UTC()
	today := now.Unix() / 86400
	tk := Ticket{Tenant: "acme", ID: "T-now"}
	for _, ev := range life("T-now", "ana", "billing", 0) {
		ev.AtMillis += now.Truncate(24*time.Hour).UnixMilli() - t0.UnixMilli()
		tk.Events = append(tk.Events, ev)
	}
	if _, err := w.Write(ctx, []Ticket{tk}); err != nil {
		t.Fatal(err)
	}
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	if n, _ := rdb.Exists(ctx, bucket.DayTotalsKey("acme", ana, today), bucket.WeekTotalsKey("acme", ana, bucket.WeekOf(today))).Result(); n != 0 {
		t.Fatal("today's or this week's totals were derived before they ended")
	}
	got, _ := rdb.SMembers(ctx, bucket.ToPackKey("acme")).Result()
	if !slices.Contains(got, strconv.FormatInt(today, 10)) {
		t.Fatalf("today was taken off the queue before it ended: %v", got)
	}
	// A day later (by the rollup's clock) it is rolled up.
	rollup.now = func() time.Time { return now.Add(24 * time.Hour) }
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, bucket.DayTotalsKey("acme", ana, today)).Result(); n != 1 {
		t.Fatal("yesterday's totals were not derived")
	}
}

// Idle weeks of known agents inside the lookback get empty totals too, so a 30-day read never
// falls back to days because an agent had a quiet week.
func TestRollupSealsIdleRecentWeeks(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	rollup := NewRollup(rdb, 0)
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	lastEnded := bucket.WeekOf(time.Now().UTC().Unix()/86400) - 1
	for _, s := range []bucket.Scope{{Kind: bucket.Agent, ID: "ana"}, {Kind: bucket.Team, ID: "billing"}, {Kind: bucket.Unassigned}} {
		for wk := lastEnded - SealLookback + 1; wk <= lastEnded; wk++ {
			if got, err := rdb.Get(ctx, bucket.WeekTotalsKey("acme", s, wk)).Result(); err != nil || got != bucket.Pack(nil) {
				t.Fatalf("week %d of %v: totals %q (%v), want empty ones", wk, s, got, err)
			}
		}
		if rdb.Exists(ctx, bucket.WeekTotalsKey("acme", s, lastEnded+1)).Val() != 0 {
			t.Fatalf("the current week of %v was sealed", s)
		}
	}
	// A new agent appears: the next pass seals the lookback for them as well.
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-2", Events: life("T-2", "zoe", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	n, err := rollup.Pass(ctx)
	if err != nil || n.Weeks < SealLookback {
		t.Fatalf("second pass wrote %+v (%v), want at least %d weeks", n, err, SealLookback)
	}
	if !(rdb.Exists(ctx, bucket.WeekTotalsKey("acme", bucket.Scope{Kind: bucket.Agent, ID: "zoe"}, lastEnded)).Val() == 1) {
		t.Fatal("the new agent's weeks were not sealed")
	}
}

// Packed totals keep every digit of large sums (Lua formats numbers with 14 significant digits
// unless told otherwise) and negative ones, and a day with no figures gets no totals.
func TestTotalsKeepLargeAndNegativeSums(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	rollup := NewRollup(rdb, 0)
	ana, bo := bucket.Scope{Kind: bucket.Agent, ID: "ana"}, bucket.Scope{Kind: bucket.Agent, ID: "bo"}
	const day = 20000
	hours := bucket.HourKey("acme", ana, day)
	if err := rdb.HSet(ctx, hours, "01|rs", "4503599627370000", "02|rs", "1000", "03|cs", "-7", "04|as", "1", "05|as", "-1").Err(); err != nil {
		t.Fatal(err)
	}
	n, err := rollup.derive(ctx, "acme", []bucket.Scope{ana, bo}, 0, 0, func(s bucket.Scope) []string {
		return []string{bucket.DayTotalsKey("acme", s, day), bucket.HourKey("acme", s, day)}
	})
	if err != nil || n != 1 {
		t.Fatalf("derived %d (%v), want 1", n, err)
	}
	if got := rdb.Get(ctx, bucket.DayTotalsKey("acme", ana, day)).Val(); got != "v1 cs=-7 rs=4503599627371000" && got != "v1 rs=4503599627371000 cs=-7" {
		t.Errorf("packed %q, want cs=-7 and rs=4503599627371000, and nothing for as (it sums to 0)", got)
	}
	if rdb.Exists(ctx, bucket.DayTotalsKey("acme", bo, day)).Val() != 0 {
		t.Error("a day without figures got totals")
	}
}

// packedTotals reads a totals key; missing is an error.
func packedTotals(t *testing.T, rdb redis.UniversalClient, key string) *bucket.Totals {
	t.Helper()
	packed, err := rdb.Get(context.Background(), key).Result()
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	tot := bucket.NewTotals()
	if err := tot.AddPacked(packed); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return tot
}

// derivedTotals reads the packed totals key of scope s (in tenant acme) of a period ending on unix
// day end; a missing one must end on or before the scope's first figures, and is empty.
func derivedTotals(t *testing.T, rdb redis.UniversalClient, s bucket.Scope, key string, end int64) *bucket.Totals {
	t.Helper()
	if rdb.Exists(context.Background(), key).Val() == 1 {
		return packedTotals(t, rdb, key)
	}
	if !beforeFirst(t, rdb, s, end) {
		t.Fatalf("%s: not derived, and its period ends after the scope's first figures", key)
	}
	return bucket.NewTotals()
}

// beforeFirst says whether a period of scope s (in tenant acme) ending on unix day end ends on or
// before the scope's first figures.
func beforeFirst(t *testing.T, rdb redis.UniversalClient, s bucket.Scope, end int64) bool {
	t.Helper()
	first, err := rdb.Get(context.Background(), bucket.FirstKey("acme", s)).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	return err == nil && first >= end
}

func totalsEqual(a, b *bucket.Totals) bool {
	return a.C == b.C && maps.Equal(a.H[0], b.H[0]) && maps.Equal(a.H[1], b.H[1]) && maps.Equal(a.H[2], b.H[2])
}

// Property: over random histories spread across more than two years, written in random batches
// with late changes after a rollup, every month's totals equal the sum of its days' totals and
// every year's the sum of its months', for every scope, and a late change makes them stale (and
// queued) until the next pass derives them again.
func TestRollupMonthsAndYearsEqualTheirDays(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	for seed := uint64(1); seed <= 3; seed++ {
		testenv.Flush(t, rdb)
		r := rand.New(rand.NewPCG(seed, 11))
		w := NewWriter(rdb, sla, 0, quiet)
		rollup := NewRollup(rdb, 0)
		rollup.now = func() time.Time { return t0.AddDate(4, 0, 0) }
		agents := []string{"ana", "bob", "chen wu"}
		teams := []string{"billing", "tech"}
		var tickets []Ticket
		for i := range 60 {
			id := fmt.Sprintf("T-%d-%d", seed, i)
			// Up to 800 days from t0 (June 2025): three calendar years, leap year 2028 not
			// reached, 2026 and 2027 whole.
			tickets = append(tickets, Ticket{Tenant: "acme", ID: id, Events: life(id, agents[r.IntN(3)], teams[r.IntN(2)], r.IntN(60*24*800))})
		}
		half := len(tickets) / 2
		for start := 0; start < half; {
			n := 1 + r.IntN(8)
			if _, err := w.Write(ctx, tickets[start:min(start+n, half)]); err != nil {
				t.Fatal(err)
			}
			start += n
		}
		if _, err := rollup.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		check := func(stage string) {
			t.Helper()
			checkTotals(t, rdb)
			scopes := []bucket.Scope{{Kind: bucket.Unassigned}}
			for _, a := range agents {
				scopes = append(scopes, bucket.Scope{Kind: bucket.Agent, ID: a})
			}
			for _, g := range teams {
				scopes = append(scopes, bucket.Scope{Kind: bucket.Team, ID: g})
			}
			first, last := bucket.YearOf(t0.Unix()/86400), bucket.YearOf(t0.Unix()/86400+801)
			for _, s := range scopes {
				if rdb.Exists(ctx, bucket.HourKey("acme", s, t0.Unix()/86400-1)).Val() == 1 {
					t.Fatal("fixture: figures before t0")
				}
				for y := first; y <= last; y++ {
					year := bucket.NewTotals()
					for m := bucket.FirstMonthOfYear(y); m < bucket.FirstMonthOfYear(y+1); m++ {
						month := bucket.NewTotals()
						pipe := rdb.Pipeline()
						type dayCmds struct {
							totals *redis.StringCmd
							hours  *redis.IntCmd
						}
						var cmds []dayCmds
						for d := bucket.FirstDayOfMonth(m); d < bucket.FirstDayOfMonth(m+1); d++ {
							cmds = append(cmds, dayCmds{pipe.Get(ctx, bucket.DayTotalsKey("acme", s, d)), pipe.Exists(ctx, bucket.HourKey("acme", s, d))})
						}
						_, _ = pipe.Exec(ctx) // missing day totals answer redis.Nil, checked below
						for i, c := range cmds {
							packed, err := c.totals.Result()
							switch {
							case errors.Is(err, redis.Nil):
								if c.hours.Val() == 1 {
									t.Fatalf("%s: %v day %d has figures but no totals", stage, s, bucket.FirstDayOfMonth(m)+int64(i))
								}
							case err != nil:
								t.Fatal(err)
							default:
								if err := month.AddPacked(packed); err != nil {
									t.Fatal(err)
								}
							}
						}
						if got := derivedTotals(t, rdb, s, bucket.MonthTotalsKey("acme", s, m), bucket.FirstDayOfMonth(m+1)); !totalsEqual(got, month) {
							t.Fatalf("%s: %v month %d = %v, its days sum to %v", stage, s, m, got.C, month.C)
						}
						year.Merge(month)
					}
					if got := derivedTotals(t, rdb, s, bucket.YearTotalsKey("acme", s, y), bucket.FirstDayOfYear(y+1)); !totalsEqual(got, year) {
						t.Fatalf("%s: %v year %d = %v, its months sum to %v", stage, s, y, got.C, year.C)
					}
				}
			}
		}
		check("first pass")

		// Late: the other half, and a reopen of an already rolled-up ticket.
		late := tickets[half:]
		old := tickets[0]
		late = append(late, Ticket{Tenant: "acme", ID: old.ID, Events: []contrib.Event{
			e(old.ID+"/o", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, int(time.UnixMilli(old.Events[0].AtMillis).Sub(t0)/time.Minute)+300,
				func(ev *contrib.Event) { ev.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN }),
		}})
		if _, err := w.Write(ctx, late); err != nil {
			t.Fatal(err)
		}
		day := old.Events[0].AtMillis / 86_400_000
		for _, key := range []string{bucket.ToMonthKey("acme"), bucket.ToYearKey("acme")} {
			want := strconv.FormatInt(bucket.MonthOf(day), 10)
			if key == bucket.ToYearKey("acme") {
				want = strconv.FormatInt(bucket.YearOf(day), 10)
			}
			if !rdb.SIsMember(ctx, key, want).Val() {
				t.Fatalf("the period of a late change is not queued in %s", key)
			}
		}
		checkTotals(t, rdb) // totals that survived the late writes still equal their hours
		if _, err := rollup.Pass(ctx); err != nil {
			t.Fatal(err)
		}
		check("after late changes")
	}
}

// Every scope the tenant ever had gets month and year totals over the whole lookback (ten
// years) from its first figures on, empty ones for idle periods, so a long window reads one key
// per year or month (and answers those before the first figures as empty); a scope that appears
// later gets its own, a late event before a scope's first figures gets it the periods between,
// and a pass with nothing new derives nothing.
func TestRollupSealsIdleMonthsAndYears(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	now := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC)
	today := now.Unix() / 86400
	thisMonth, thisYear := bucket.MonthOf(today), bucket.YearOf(today)
	rollup := NewRollup(rdb, 0)
	rollup.now = func() time.Time { return now }
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	n, err := rollup.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// lookback counts the months and years of the lookback that end after the scope's first
	// figures (all of them without a mark).
	lookback := func(s bucket.Scope) (months, years int) {
		for m := thisMonth - MonthLookback; m < thisMonth; m++ {
			if !beforeFirst(t, rdb, s, bucket.FirstDayOfMonth(m+1)) {
				months++
			}
		}
		for y := thisYear - YearLookback; y < thisYear; y++ {
			if !beforeFirst(t, rdb, s, bucket.FirstDayOfYear(y+1)) {
				years++
			}
		}
		return months, years
	}
	// ana and billing: from June 2 2025, when they got their first figures, 17 months and 1 year
	// each; the unassigned figures, which got none (so no mark), the whole lookback.
	if m, y := lookback(bucket.Scope{Kind: bucket.Agent, ID: "ana"}); m != 17 || y != 1 {
		t.Fatalf("ana's lookback after its first figures: %d months and %d years, want 17 and 1", m, y)
	}
	if n.Months != 2*17+MonthLookback || n.Years != 2*1+YearLookback {
		t.Errorf("first pass wrote %+v, want %d months and %d years", n, 2*17+MonthLookback, 2*1+YearLookback)
	}
	sealed := func(s bucket.Scope) {
		t.Helper()
		for m := thisMonth - MonthLookback; m < thisMonth; m++ {
			if got := rdb.Exists(ctx, bucket.MonthTotalsKey("acme", s, m)).Val(); got == 1 == beforeFirst(t, rdb, s, bucket.FirstDayOfMonth(m+1)) {
				t.Fatalf("%v: month %d derived %v, want only after the first figures", s, m, got == 1)
			}
		}
		for y := thisYear - YearLookback; y < thisYear; y++ {
			if got := rdb.Exists(ctx, bucket.YearTotalsKey("acme", s, y)).Val(); got == 1 == beforeFirst(t, rdb, s, bucket.FirstDayOfYear(y+1)) {
				t.Fatalf("%v: year %d derived %v, want only after the first figures", s, y, got == 1)
			}
		}
		if rdb.Exists(ctx, bucket.MonthTotalsKey("acme", s, thisMonth), bucket.YearTotalsKey("acme", s, thisYear)).Val() != 0 {
			t.Fatalf("%v: the current month or year was derived", s)
		}
	}
	ana, bob := bucket.Scope{Kind: bucket.Agent, ID: "ana"}, bucket.Scope{Kind: bucket.Agent, ID: "bob"}
	sealed(ana)
	sealed(bucket.Scope{Kind: bucket.Team, ID: "billing"})
	if got := packedTotals(t, rdb, bucket.YearTotalsKey("acme", ana, thisYear-1)); got.C[bucket.Assigned] != 1 {
		t.Errorf("ana's year of the ticket: assigned %d, want 1", got.C[bucket.Assigned])
	}
	if again, err := rollup.Pass(ctx); err != nil || again.Months != 0 || again.Years != 0 {
		t.Fatalf("a pass with nothing new wrote %+v (%v)", again, err)
	}
	// A new agent, on a day of an idle month (2019): its own lookback, and for billing, the other
	// scope it changed, the periods between its new first figures and its old ones.
	billing := bucket.Scope{Kind: bucket.Team, ID: "billing"}
	billingMonths, billingYears := lookback(billing)
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-2", Events: life("T-2", "bob", "billing", -60*24*365*6)}}); err != nil {
		t.Fatal(err)
	}
	n, err = rollup.Pass(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bobMonths, bobYears := lookback(bob)
	nowMonths, nowYears := lookback(billing)
	if bobMonths < 70 || nowMonths-billingMonths < 50 {
		t.Fatalf("fixture: bob has %d months after his first figures, billing %d more than before", bobMonths, nowMonths-billingMonths)
	}
	if n.Months != bobMonths+nowMonths-billingMonths || n.Years != bobYears+nowYears-billingYears {
		t.Errorf("pass after a new agent wrote %+v, want %d months and %d years", n, bobMonths+nowMonths-billingMonths, bobYears+nowYears-billingYears)
	}
	sealed(bob)
	sealed(billing)
	if again, err := rollup.Pass(ctx); err != nil || again.Months != 0 || again.Years != 0 {
		t.Fatalf("a pass with nothing new wrote %+v (%v)", again, err)
	}
	checkTotals(t, rdb)

	// With a retention, idle periods whose totals would already have expired are skipped.
	testenv.Flush(t, rdb)
	rollup = NewRollup(rdb, 90*24*time.Hour)
	rollup.now = func() time.Time { return now }
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-3", Events: life("T-3", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if rdb.Exists(ctx, bucket.MonthTotalsKey("acme", ana, thisMonth-1)).Val() != 1 || rdb.Exists(ctx, bucket.MonthTotalsKey("acme", ana, thisMonth-12)).Val() != 0 {
		t.Error("with a 90-day retention, want last month's totals and none of a year ago")
	}
}

// A year older than the lookback that gets figures (a backfill of 2012) is derived with its months.
func TestRollupDerivesOldYearsWithTheirMonths(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	rollup := NewRollup(rdb, 0)
	rollup.now = func() time.Time { return time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC) }
	at := -int(t0.Sub(time.Date(2012, 3, 5, 10, 0, 0, 0, time.UTC)) / time.Minute)
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", at)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := rollup.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	day := time.Date(2012, 3, 5, 0, 0, 0, 0, time.UTC).Unix() / 86400
	year := packedTotals(t, rdb, bucket.YearTotalsKey("acme", ana, bucket.YearOf(day)))
	if year.C[bucket.Assigned] != 1 {
		t.Fatalf("2012 totals: assigned %d, want 1", year.C[bucket.Assigned])
	}
	for m := bucket.FirstMonthOfYear(bucket.YearOf(day)); m < bucket.FirstMonthOfYear(bucket.YearOf(day)+1); m++ {
		// The months before the first figures (January and February) are empty, with no key.
		before := m < bucket.MonthOf(day)
		if got := rdb.Exists(ctx, bucket.MonthTotalsKey("acme", ana, m)).Val(); got == 1 == before || before != beforeFirst(t, rdb, ana, bucket.FirstDayOfMonth(m+1)) {
			t.Fatalf("month %d of 2012: derived %v, want %v", m, got == 1, !before)
		}
	}
	checkTotals(t, rdb)
}
