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
func buckets(t *testing.T, rdb *redis.Client) map[string]map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]map[string]string{}
	keys, err := rdb.Keys(ctx, "tp:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		switch {
		case strings.Contains(k, ":t:"), strings.Contains(k, ":m:"):
			continue
		case strings.Contains(k, ":ix}"):
			m, _ := rdb.SMembers(ctx, k).Result()
			out[k] = map[string]string{}
			for _, v := range m {
				out[k][v] = "1"
			}
		default:
			out[k], _ = rdb.HGetAll(ctx, k).Result()
		}
	}
	return out
}

func dayTotals(t *testing.T, rdb *redis.Client, s bucket.Scope, at time.Time) *bucket.Totals {
	t.Helper()
	tot := bucket.NewTotals()
	h, err := rdb.HGetAll(context.Background(), bucket.DayKey("acme", s, at.Unix()/86400)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := tot.AddHash(h); err != nil {
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
	if n, _ := rdb.HLen(ctx, TicketKey("acme", "T-1")).Result(); n != 2 {
		t.Fatalf("ticket hash has %d fields, want v and s only", n)
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

	rdb.FlushAll(ctx)
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
	todo := []*work{{t: &batch[0], key: TicketKey("acme", "T-1")}}
	if err := a.read(ctx, todo); err != nil {
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
	rdb.FlushAll(ctx)

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
	errc := make(chan error, 2)
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
	close(errc)
	for err := range errc {
		t.Fatal(err)
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
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeState(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode to the same thing.
		again, err := decodeState(encodeState(s))
		if err != nil || len(again.Events) != len(s.Events) || !maps.Equal(again.Applied, s.Applied) {
			t.Fatalf("re-encoding changed the state: %v", err)
		}
	})
}

func TestRetentionExpiresBucketsAfterTheirPeriod(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	now := time.Now().UTC()
	recent := Ticket{Tenant: "acme", ID: "T-new", Events: nil}
	for _, ev := range life("T-new", "ana", "billing", 0) {
		ev.AtMillis += now.Add(-3*time.Hour).UnixMilli() - t0.UnixMilli()
		recent.Events = append(recent.Events, ev)
	}
	old := Ticket{Tenant: "acme", ID: "T-old", Events: life("T-old", "bob", "billing", 0)} // June 2025
	w := NewWriter(rdb, sla, 30*24*time.Hour, quiet)
	if _, err := w.Write(ctx, []Ticket{recent, old}); err != nil {
		t.Fatal(err)
	}
	bob := bucket.Scope{Kind: bucket.Agent, ID: "bob"}
	if n, _ := rdb.Exists(ctx, bucket.DayKey("acme", bob, t0.Unix()/86400)).Result(); n != 0 {
		t.Errorf("a bucket older than the retention was kept")
	}
	anaDay := bucket.DayKey("acme", bucket.Scope{Kind: bucket.Agent, ID: "ana"}, now.Add(-3*time.Hour).Unix()/86400)
	ttl, err := rdb.TTL(ctx, anaDay).Result()
	if err != nil || ttl < 29*24*time.Hour || ttl > 32*24*time.Hour {
		t.Errorf("recent day bucket TTL = %v (%v), want about 30 days past the day's end", ttl, err)
	}
	// The day's listing index expires with its buckets; the list of every agent ever seen does not.
	idx := bucket.AgentsKey("acme", now.Add(-3*time.Hour).Unix()/86400)
	if ttl, err := rdb.TTL(ctx, idx).Result(); err != nil || ttl < 29*24*time.Hour || ttl > 32*24*time.Hour {
		t.Errorf("day index TTL = %v (%v), want about 30 days past the day's end", ttl, err)
	}
	if ttl, _ := rdb.TTL(ctx, bucket.AllAgentsKey("acme")).Result(); ttl != -1 {
		t.Errorf("TTL of the all-agents set = %v, want none", ttl)
	}
	// Without retention buckets are kept forever.
	rdb.FlushAll(ctx)
	if _, err := NewWriter(rdb, sla, 0, quiet).Write(ctx, []Ticket{old}); err != nil {
		t.Fatal(err)
	}
	if ttl, _ := rdb.TTL(ctx, bucket.DayKey("acme", bob, t0.Unix()/86400)).Result(); ttl != -1 {
		t.Errorf("TTL without retention = %v, want none", ttl)
	}
}

// Live traffic writes no week hashes; the rollup seals a week as the sum of its days, and from
// then on every write (a backfill, a late reply) adds to the week as well, so a sealed week always
// equals its seven days.
func TestSealedWeekEqualsItsDays(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	ana := bucket.Scope{Kind: bucket.Agent, ID: "ana"}
	week := bucket.WeekOf(t0.Unix() / 86400)
	weekKey := bucket.WeekKey("acme", ana, week)
	sumOfDays := func() *bucket.Totals {
		tot := bucket.NewTotals()
		first := bucket.FirstDayOfWeek(week)
		for d := first; d < first+7; d++ {
			h, _ := rdb.HGetAll(ctx, bucket.DayKey("acme", ana, d)).Result()
			if err := tot.AddHash(h); err != nil {
				t.Fatal(err)
			}
		}
		return tot
	}
	weekTotals := func() *bucket.Totals {
		h, _ := rdb.HGetAll(ctx, weekKey).Result()
		tot := bucket.NewTotals()
		if err := tot.AddHash(h); err != nil {
			t.Fatal(err)
		}
		return tot
	}
	equal := func(a, b *bucket.Totals) bool {
		return a.C == b.C && maps.Equal(a.H[0], b.H[0]) && maps.Equal(a.H[1], b.H[1]) && maps.Equal(a.H[2], b.H[2])
	}

	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, weekKey).Result(); n != 0 {
		t.Fatal("an unsealed week was written")
	}
	if got, _ := rdb.SMembers(ctx, bucket.ToSealKey("acme")).Result(); !slices.Contains(got, strconv.FormatInt(week, 10)) {
		t.Fatalf("past week %d not queued for sealing: %v", week, got)
	}
	n, err := w.SealPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 { // ana, billing, and the unassigned scope
		t.Fatalf("sealed %d week hashes, want at least 3", n)
	}
	if got := weekTotals(); !equal(got, sumOfDays()) || got.C[bucket.Assigned] != 1 {
		t.Fatalf("sealed week %v differs from its days %v", got.C, sumOfDays().C)
	}
	if left, _ := rdb.SCard(ctx, bucket.ToSealKey("acme")).Result(); left != 0 {
		t.Fatalf("%d weeks still queued after sealing", left)
	}
	// Late events after the seal: a reopen and re-solve of T-1 and a new ticket, same week.
	if _, err := w.Write(ctx, []Ticket{
		{Tenant: "acme", ID: "T-1", Events: []contrib.Event{
			e("T-1/o", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 300, func(ev *contrib.Event) { ev.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN }),
		}},
		{Tenant: "acme", ID: "T-2", Events: life("T-2", "ana", "billing", 60*24)},
	}); err != nil {
		t.Fatal(err)
	}
	if got := weekTotals(); !equal(got, sumOfDays()) || got.C[bucket.Assigned] != 2 || got.C[bucket.Reopens] != 1 {
		t.Fatalf("after late events the week %v differs from its days %v", got.C, sumOfDays().C)
	}
	if n, err := w.SealPending(ctx); err != nil || n != 0 {
		t.Fatalf("sealing again sealed %d (%v), want 0", n, err)
	}
}

// Idle weeks of known agents inside the lookback are sealed too (empty), so a 30-day read never
// falls back to days because an agent had a quiet week.
func TestRollupSealsIdleRecentWeeks(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	w := NewWriter(rdb, sla, 0, quiet)
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.SealPending(ctx); err != nil {
		t.Fatal(err)
	}
	lastEnded := bucket.WeekOf(time.Now().UTC().Unix()/86400) - 1
	for _, s := range []bucket.Scope{{Kind: bucket.Agent, ID: "ana"}, {Kind: bucket.Team, ID: "billing"}, {Kind: bucket.Unassigned}} {
		for wk := lastEnded - SealLookback + 1; wk <= lastEnded; wk++ {
			if !rdb.HExists(ctx, bucket.WeekKey("acme", s, wk), bucket.SealedField).Val() {
				t.Fatalf("week %d of %v not sealed", wk, s)
			}
		}
		if rdb.Exists(ctx, bucket.WeekKey("acme", s, lastEnded+1)).Val() != 0 {
			t.Fatalf("the current week of %v was sealed", s)
		}
	}
	// A new agent appears: the next pass seals the lookback for them as well.
	if _, err := w.Write(ctx, []Ticket{{Tenant: "acme", ID: "T-2", Events: life("T-2", "zoe", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	n, err := w.SealPending(ctx)
	if err != nil || n < SealLookback {
		t.Fatalf("second pass sealed %d (%v), want at least %d", n, err, SealLookback)
	}
	if !rdb.HExists(ctx, bucket.WeekKey("acme", bucket.Scope{Kind: bucket.Agent, ID: "zoe"}, lastEnded), bucket.SealedField).Val() {
		t.Fatal("the new agent's weeks were not sealed")
	}
}
