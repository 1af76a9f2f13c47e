package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// sameFields reports whether got holds exactly the fields want, in any order.
func sameFields(got []string, want ...string) bool {
	got = slices.DeleteFunc(slices.Clone(got), func(f string) bool { return isStatePiece(f) || isRowPiece(f) })
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

// isRowPiece reports whether f holds a piece of the ticket's drill-down row ("r", "r1", ...).
func isRowPiece(f string) bool {
	if f == "r" {
		return true
	}
	if len(f) < 2 || f[0] != 'r' {
		return false
	}
	_, err := strconv.Atoi(f[1:])
	return err == nil
}

// isStatePiece reports whether f is one of the pieces "s1", "s2", ... a state longer than one
// piece is stored in after "s" (see stateChunks).
func isStatePiece(f string) bool {
	if len(f) < 2 || f[0] != 's' {
		return false
	}
	_, err := strconv.Atoi(f[1:])
	return err == nil
}

// simClock is a clock tests move by hand.
type simClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *simClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *simClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const quietFor = 7 * 24 * time.Hour

type compactEnv struct {
	rdb    redis.UniversalClient
	w      *Writer
	c      *Compactor
	clock  *simClock
	reader *sdkmetric.ManualReader
	log    *testenv.LogBuffer
}

// newCompactEnv is a writer and a compactor (batch per tenant per pass) sharing a simulated clock,
// a log and metrics.
func newCompactEnv(t *testing.T, batch int) *compactEnv {
	t.Helper()
	env := &compactEnv{rdb: testenv.Redis(t), clock: &simClock{t: t0.Add(24 * time.Hour)}, log: &testenv.LogBuffer{}}
	env.reader = sdkmetric.NewManualReader()
	m, err := NewMetrics(sdkmetric.NewMeterProvider(sdkmetric.WithReader(env.reader)).Meter("test"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(env.log, nil))
	env.w = NewWriter(env.rdb, sla, 0, log)
	env.w.SetClock(env.clock.now)
	env.w.SetMetrics(m)
	env.w.SetFileResolved(true)
	env.c = NewCompactor(env.rdb, env.w, quietFor, batch, log)
	env.c.SetClock(env.clock.now)
	return env
}

func (env *compactEnv) write(t *testing.T, tickets ...Ticket) Result {
	t.Helper()
	res, err := env.w.Write(context.Background(), tickets)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (env *compactEnv) pass(t *testing.T) CompactResult {
	t.Helper()
	res, err := env.c.Pass(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// counters returns the value of every counter recorded.
func (env *compactEnv) counters(t *testing.T) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := env.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, p := range sum.DataPoints {
					out[m.Name] += p.Value
				}
			}
		}
	}
	return out
}

func (env *compactEnv) state(t *testing.T, ticket string) (ticketState, map[string]string) {
	t.Helper()
	h, err := env.rdb.HGetAll(context.Background(), TicketKey("acme", ticket)).Result()
	if err != nil {
		t.Fatal(err)
	}
	blob, _ := stateBlob(h)
	st, err := decodeState([]byte(blob))
	if err != nil {
		t.Fatalf("ticket %s: %v", ticket, err)
	}
	return st, h
}

func (env *compactEnv) resolvedSet(t *testing.T) []string {
	t.Helper()
	ids, err := env.rdb.ZRange(context.Background(), ResolvedKey("acme"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// withIDs is a ticket of events whose ids are given.
func withIDs(ticket string, ids []string, evs []contrib.Event) Ticket {
	return Ticket{Tenant: "acme", ID: ticket, Events: evs, IDs: ids}
}

// lifeIDs are the event ids life gives ticket.
func lifeIDs(ticket string) []string {
	var ids []string
	for _, s := range []string{"c", "a", "r", "s", "q"} {
		ids = append(ids, ticket+"/"+s)
	}
	return ids
}

func TestCompactionKeepsKPIsAndCatchesDuplicatesAndLateEvents(t *testing.T) {
	env := newCompactEnv(t, 100)
	solved := life("T-1", "ana", "billing", 0)
	open := life("T-2", "bob", "billing", 10)[:3] // replied, never solved
	env.write(t, withIDs("T-1", lifeIDs("T-1"), solved), withIDs("T-2", lifeIDs("T-2")[:3], open))
	if got := env.resolvedSet(t); !slices.Equal(got, []string{"T-1"}) {
		t.Fatalf("resolved tickets %q, want [T-1]", got)
	}
	before := buckets(t, env.rdb)

	// Not quiet yet: nothing is compacted.
	env.clock.add(quietFor - time.Second)
	if res := env.pass(t); res != (CompactResult{}) {
		t.Fatalf("pass before the quiet period: %+v, want nothing done", res)
	}
	if st, _ := env.state(t, "T-1"); st.Compacted {
		t.Fatal("T-1 compacted before it was quiet")
	}

	env.clock.add(time.Second)
	if res := env.pass(t); res != (CompactResult{Compacted: 1}) {
		t.Fatalf("pass after the quiet period: %+v, want 1 compacted", res)
	}
	st, h := env.state(t, "T-1")
	if !st.Compacted || len(st.Events) != 0 || len(st.Applied) != 0 {
		t.Fatalf("T-1 state after compaction: %+v, want a tombstone", st)
	}
	want := make([]uint32, 0, len(solved))
	for _, ev := range solved {
		want = append(want, fingerprint(ev.Key))
	}
	slices.Sort(want)
	if !slices.Equal(st.Seen, want) {
		t.Fatalf("tombstone fingerprints %x, want %x", st.Seen, want)
	}
	if enc, _ := env.rdb.ObjectEncoding(context.Background(), TicketKey("acme", "T-1")).Result(); enc != "listpack" {
		t.Fatalf("tombstone hash encoded as %q, want listpack", enc)
	}
	if f := mapsKeys(h); !sameFields(f, "v", "s") || h["v"] != "2" {
		t.Fatalf("tombstone hash %q version %s, want fields v and s at version 2", f, h["v"])
	}
	if _, ok := h["r"]; !ok {
		t.Fatal("compaction dropped the ticket's drill-down row")
	}
	if st, _ := env.state(t, "T-2"); st.Compacted {
		t.Fatal("the open ticket T-2 was compacted")
	}
	if got := env.resolvedSet(t); len(got) != 0 {
		t.Fatalf("resolved tickets after compaction %q, want none", got)
	}
	if after := buckets(t, env.rdb); !equalDump(before, after) {
		t.Fatalf("compaction changed the KPIs:\n%s", dumpDiff(after, before))
	}

	// A redelivery of every event: duplicates, nothing logged.
	res := env.write(t, withIDs("T-1", lifeIDs("T-1"), solved))
	if res.NewEvents != 0 || res.Duplicates != 5 || res.TooLate != 0 {
		t.Fatalf("redelivery: %+v, want 5 duplicates", res)
	}
	if strings.Contains(env.log.String(), "too late") {
		t.Fatalf("a duplicate was logged as too late:\n%s", env.log)
	}

	// Genuinely new events: a reopen and a second rating. Not applied, counted, logged.
	reopen := e("T-1/reopen", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 500, func(ev *contrib.Event) {
		ev.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN
	})
	rerate := e("T-1/q2", tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, 600, func(ev *contrib.Event) { ev.Score = 1 })
	late := withIDs("T-1", []string{"T-1/reopen", "T-1/q2", "T-1/c"}, []contrib.Event{reopen, rerate, solved[0]})
	res = env.write(t, late)
	if res.NewEvents != 0 || res.Duplicates != 1 || res.TooLate != 2 {
		t.Fatalf("late events: %+v, want 2 too late and 1 duplicate", res)
	}
	if after := buckets(t, env.rdb); !equalDump(before, after) {
		t.Fatalf("a late event changed the KPIs:\n%s", dumpDiff(after, before))
	}
	logged := env.log.String()
	for _, id := range []string{"T-1/reopen", "T-1/q2"} {
		line := `level=WARN msg="event too late: its ticket was compacted, so it is not applied; a rebuild from TICKETS applies it" tenant=acme ticket=T-1 event_id=` + id
		if !strings.Contains(logged, line) {
			t.Fatalf("log lacks %q:\n%s", line, logged)
		}
	}
	if n := strings.Count(logged, "too late"); n != 2 {
		t.Fatalf("%d too-late lines, want 2:\n%s", n, logged)
	}
	if got := env.resolvedSet(t); len(got) != 0 {
		t.Fatalf("a late reopen filed the tombstone again: %q", got)
	}

	// Their redelivery is a duplicate: each late event is counted once.
	res = env.write(t, late)
	if res.Duplicates != 3 || res.TooLate != 0 {
		t.Fatalf("late events redelivered: %+v, want 3 duplicates", res)
	}
	if n := strings.Count(env.log.String(), "too late"); n != 2 {
		t.Fatalf("%d too-late lines after the redelivery, want still 2", n)
	}
	if after := buckets(t, env.rdb); !equalDump(before, after) {
		t.Fatalf("a redelivered late event changed the KPIs:\n%s", dumpDiff(after, before))
	}
	got := env.counters(t)
	wantCounters := map[string]int64{"kpi_tickets_compacted_total": 1, "kpi_events_too_late_total": 2, "kpi_tombstone_duplicates_total": 5 + 1 + 3}
	for name, n := range wantCounters {
		if got[name] != n {
			t.Errorf("%s = %d, want %d", name, got[name], n)
		}
	}
	// Nothing more to do.
	env.clock.add(30 * quietFor)
	if res := env.pass(t); res != (CompactResult{}) {
		t.Fatalf("pass with nothing left: %+v", res)
	}
}

func mapsKeys(h map[string]string) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	return out
}

// A ticket reopened before it is quiet leaves the resolved set; solved again, it is compacted a
// quiet period after its last change.
func TestReopenedTicketIsNotCompacted(t *testing.T) {
	env := newCompactEnv(t, 100)
	evs := life("T-1", "ana", "billing", 0)
	env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: evs})
	env.clock.add(quietFor / 2)
	reopen := e("T-1/reopen", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 300, func(ev *contrib.Event) {
		ev.Status = tpv1.TicketStatus_TICKET_STATUS_OPEN
	})
	env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: []contrib.Event{reopen}})
	if got := env.resolvedSet(t); len(got) != 0 {
		t.Fatalf("resolved tickets after the reopen %q, want none", got)
	}
	env.clock.add(quietFor)
	if res := env.pass(t); res != (CompactResult{}) {
		t.Fatalf("pass: %+v, want nothing done for an open ticket", res)
	}
	resolve := e("T-1/s2", tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, 400, func(ev *contrib.Event) {
		ev.Status = tpv1.TicketStatus_TICKET_STATUS_CLOSED
	})
	env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: []contrib.Event{resolve}})
	env.clock.add(quietFor - time.Second)
	if res := env.pass(t); res.Compacted != 0 {
		t.Fatalf("compacted %d tickets a second before the quiet period ended", res.Compacted)
	}
	env.clock.add(time.Second)
	if res := env.pass(t); res.Compacted != 1 {
		t.Fatalf("compacted %d tickets, want the closed one", res.Compacted)
	}
}

// A ticket that gets an event between the compactor's read and its compare-and-set is skipped,
// and compacted a quiet period later.
func TestCompactionSkipsTicketChangedSinceRead(t *testing.T) {
	env := newCompactEnv(t, 100)
	evs := life("T-1", "ana", "billing", 0)
	env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: evs[:4]})
	env.clock.add(quietFor)
	rating := Ticket{Tenant: "acme", ID: "T-1", Events: evs[4:]}
	env.c.hook = func() {
		env.c.hook = nil
		if res := env.write(t, rating); res.NewEvents != 1 {
			t.Errorf("rating written during the pass: %+v", res)
		}
	}
	if res := env.pass(t); res != (CompactResult{Skipped: 1}) {
		t.Fatalf("pass: %+v, want the changed ticket skipped", res)
	}
	st, _ := env.state(t, "T-1")
	if st.Compacted || len(st.Events) != 5 {
		t.Fatalf("T-1 after the skipped compaction: compacted %v, %d events, want the 5 events", st.Compacted, len(st.Events))
	}
	// It stays filed, by the time of its last change.
	if got := env.resolvedSet(t); !slices.Equal(got, []string{"T-1"}) {
		t.Fatalf("resolved tickets %q, want [T-1]", got)
	}
	want := buckets(t, env.rdb)
	env.clock.add(quietFor - time.Second)
	if res := env.pass(t); res.Compacted != 0 {
		t.Fatalf("compacted %d before the rating had been quiet for the period", res.Compacted)
	}
	env.clock.add(time.Second)
	if res := env.pass(t); res.Compacted != 1 {
		t.Fatalf("compacted %d, want 1", res.Compacted)
	}
	if got := buckets(t, env.rdb); !equalDump(want, got) {
		t.Fatalf("compaction changed the KPIs:\n%s", dumpDiff(got, want))
	}
}

// Pending deltas a crashed write left (and whose redelivery has not come yet) are applied before
// the ticket is compacted, exactly once.
func TestCompactionFinishesPendingDeltasFirst(t *testing.T) {
	env := newCompactEnv(t, 100)
	evs := life("T-1", "ana", "billing", 0)
	env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: evs})
	want := buckets(t, env.rdb)
	testenv.Flush(t, env.rdb)

	env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: evs[:4]}) // solved
	crash := errors.New("crash")
	env.w.SetHook(func(step string) error {
		if step == StepStored {
			return crash
		}
		return nil
	})
	if _, err := env.w.Write(context.Background(), []Ticket{{Tenant: "acme", ID: "T-1", Events: evs[4:]}}); !errors.Is(err, crash) {
		t.Fatalf("write of the rating: %v, want the crash", err)
	}
	env.w.SetHook(nil)
	if _, h := env.state(t, "T-1"); !hasPending(h) {
		t.Fatal("the crashed write left no pending deltas")
	}
	env.clock.add(quietFor)
	if res := env.pass(t); res != (CompactResult{Finished: 1}) {
		t.Fatalf("first pass: %+v, want the pending deltas finished first", res)
	}
	st, h := env.state(t, "T-1")
	if st.Compacted || hasPending(h) {
		t.Fatalf("after the first pass: compacted %v, pending %v; want the deltas applied, not yet compacted", st.Compacted, hasPending(h))
	}
	if res := env.pass(t); res != (CompactResult{Compacted: 1}) {
		t.Fatalf("second pass: %+v, want 1 compacted", res)
	}
	if got := buckets(t, env.rdb); !equalDump(want, got) {
		t.Fatalf("KPIs after compacting a ticket with pending deltas:\n%s", dumpDiff(got, want))
	}
	// The redelivery of the crashed batch then meets the tombstone: a duplicate.
	if res := env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: evs[4:]}); res.Duplicates != 1 || res.TooLate != 0 {
		t.Fatalf("redelivery: %+v, want 1 duplicate", res)
	}
	if got := buckets(t, env.rdb); !equalDump(want, got) {
		t.Fatalf("KPIs after the redelivery:\n%s", dumpDiff(got, want))
	}
}

// Each pass compacts at most a batch per tenant; the rest wait for the next passes, and a new
// compactor (a restart) carries on where the last stopped.
func TestCompactionIsBoundedPerPassAndRestartSafe(t *testing.T) {
	env := newCompactEnv(t, 3)
	var tickets []Ticket
	for i := range 7 {
		id := fmt.Sprintf("T-%d", i)
		tickets = append(tickets, Ticket{Tenant: "acme", ID: id, Events: life(id, "ana", "billing", i*10)})
	}
	env.write(t, tickets...)
	want := buckets(t, env.rdb)
	env.clock.add(quietFor)
	if res := env.pass(t); res != (CompactResult{Compacted: 3, More: true}) {
		t.Fatalf("first pass: %+v, want 3 compacted and more to do", res)
	}
	// A restart: a new writer and compactor on the same Redis.
	log := slog.New(slog.NewTextHandler(env.log, nil))
	env.w = NewWriter(env.rdb, sla, 0, log)
	env.w.SetClock(env.clock.now)
	env.w.SetFileResolved(true)
	env.c = NewCompactor(env.rdb, env.w, quietFor, 3, log)
	env.c.SetClock(env.clock.now)
	// A crash between a compaction and the update of the resolved set leaves a tombstone filed.
	if err := env.rdb.ZAdd(context.Background(), ResolvedKey("acme"), redis.Z{Score: 0, Member: "T-0"}).Err(); err != nil {
		t.Fatal(err)
	}
	if res := env.pass(t); res != (CompactResult{Compacted: 2, More: true}) {
		t.Fatalf("second pass: %+v, want 2 compacted (and the stale entry dropped), more to do", res)
	}
	if res := env.pass(t); res != (CompactResult{Compacted: 2}) {
		t.Fatalf("third pass: %+v, want the last 2 compacted", res)
	}
	if res := env.pass(t); res != (CompactResult{}) {
		t.Fatalf("fourth pass: %+v, want nothing", res)
	}
	for _, tk := range tickets {
		if st, _ := env.state(t, tk.ID); !st.Compacted {
			t.Fatalf("%s not compacted", tk.ID)
		}
	}
	if got := buckets(t, env.rdb); !equalDump(want, got) {
		t.Fatalf("KPIs after compacting:\n%s", dumpDiff(got, want))
	}
	// Redelivered after the restart, everything is a duplicate.
	res := env.write(t, tickets...)
	if res.Duplicates != 35 || res.NewEvents != 0 || res.TooLate != 0 {
		t.Fatalf("redelivery: %+v, want 35 duplicates", res)
	}
}

// Without a compactor, nothing is filed: the set would only grow.
func TestWriterFilesNothingWithoutCompaction(t *testing.T) {
	rdb := testenv.Redis(t)
	w := NewWriter(rdb, sla, 0, quiet)
	if _, err := w.Write(context.Background(), []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}}); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Exists(context.Background(), ResolvedKey("acme")).Result(); err != nil || n != 0 {
		t.Fatalf("resolved set exists (%d, %v), want none without compaction", n, err)
	}
}

// A filed ticket whose state cannot be decoded is logged, skipped and filed again for later, so it
// holds no batch up; a filed ticket that is gone is dropped from the set.
func TestCompactionSkipsUnreadableAndMissingTickets(t *testing.T) {
	env := newCompactEnv(t, 100)
	ctx := context.Background()
	env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)})
	if err := env.rdb.HSet(ctx, TicketKey("acme", "T-1"), "s", "\x09garbage").Err(); err != nil {
		t.Fatal(err)
	}
	if err := env.rdb.ZAdd(ctx, ResolvedKey("acme"), redis.Z{Score: 1, Member: "T-gone"}).Err(); err != nil {
		t.Fatal(err)
	}
	env.clock.add(quietFor)
	if res := env.pass(t); res != (CompactResult{Skipped: 1}) {
		t.Fatalf("pass: %+v, want the unreadable ticket skipped", res)
	}
	line := `level=WARN msg="compaction: unreadable ticket state" tenant=acme ticket=T-1 err="corrupt ticket state: format version 9"`
	if !strings.Contains(env.log.String(), line) {
		t.Fatalf("log lacks %q:\n%s", line, env.log)
	}
	zs, err := env.rdb.ZRangeWithScores(ctx, ResolvedKey("acme"), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(zs) != 1 || zs[0].Member != "T-1" || int64(zs[0].Score) != env.clock.now().Unix() {
		t.Fatalf("resolved set %+v, want only T-1 filed again at now", zs)
	}
	// Not due again until a quiet period later.
	if res := env.pass(t); res != (CompactResult{}) {
		t.Fatalf("second pass: %+v, want nothing", res)
	}
}

func TestCompactionReportsRedisErrors(t *testing.T) {
	env := newCompactEnv(t, 100)
	env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)})
	env.clock.add(quietFor)
	if err := env.rdb.HSet(context.Background(), TicketKey("acme", "T-1"), "v", "x").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := env.c.Pass(context.Background())
	if want := `compact tenant acme: ticket T-1 version "x": strconv.ParseInt: parsing "x": invalid syntax`; err == nil || err.Error() != want {
		t.Fatalf("pass: %v, want %s", err, want)
	}
	closed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	closed.Close()
	c := NewCompactor(closed, env.w, quietFor, 10, quiet)
	if _, err := c.Pass(context.Background()); err == nil || err.Error() != "list tenants: redis: client is closed" {
		t.Fatalf("pass on a closed client: %v, want list tenants: redis: client is closed", err)
	}
}

// A ticket time the writer cannot read fails the batch, naming the ticket.
func TestWriteRefusesUnreadableTicketTime(t *testing.T) {
	env := newCompactEnv(t, 100)
	env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)[:2]})
	if err := env.rdb.HSet(context.Background(), TicketKey("acme", "T-1"), "t", "soon").Err(); err != nil {
		t.Fatal(err)
	}
	_, err := env.w.Write(context.Background(), []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)[2:]}})
	if want := `ticket tp:{acme:t:T-1} time "soon": strconv.ParseInt: parsing "soon": invalid syntax`; err == nil || err.Error() != want {
		t.Fatalf("write: %v, want %s", err, want)
	}
}

// Each Redis step of a pass names itself in its error.
func TestCompactionStepErrors(t *testing.T) {
	const wrongType = "WRONGTYPE Operation against a key holding the wrong kind of value"
	tests := []struct {
		name  string
		spoil func(t *testing.T, env *compactEnv)
		want  string
	}{
		{"resolved set", func(t *testing.T, env *compactEnv) {
			env.rdb.Del(context.Background(), ResolvedKey("acme"))
			env.rdb.Set(context.Background(), ResolvedKey("acme"), "x", 0)
		}, "compact tenant acme: list quiet tickets: " + wrongType},
		{"ticket", func(t *testing.T, env *compactEnv) {
			env.rdb.Del(context.Background(), TicketKey("acme", "T-1"))
			env.rdb.Set(context.Background(), TicketKey("acme", "T-1"), "x", 0)
		}, "compact tenant acme: read quiet tickets: " + wrongType},
		{"pending deltas", func(t *testing.T, env *compactEnv) {
			env.rdb.HSet(context.Background(), TicketKey("acme", "T-1"), "p9", "\x07")
		}, "compact tenant acme: finish pending deltas: ticket tp:{acme:t:T-1} pending 9: corrupt ticket state: format version 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newCompactEnv(t, 100)
			env.write(t, Ticket{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)})
			env.clock.add(quietFor)
			tt.spoil(t, env)
			if _, err := env.c.Pass(context.Background()); err == nil || err.Error() != tt.want {
				t.Fatalf("pass: %v, want %s", err, tt.want)
			}
		})
	}
}

// The resolved set is written with the clearing of pending deltas; an error there fails the batch
// (its redelivery files the ticket again).
func TestWriteReportsResolvedSetError(t *testing.T) {
	env := newCompactEnv(t, 100)
	env.rdb.Set(context.Background(), ResolvedKey("acme"), "x", 0)
	_, err := env.w.Write(context.Background(), []Ticket{{Tenant: "acme", ID: "T-1", Events: life("T-1", "ana", "billing", 0)}})
	if want := "clear pending deltas: WRONGTYPE Operation against a key holding the wrong kind of value"; err == nil || err.Error() != want {
		t.Fatalf("write: %v, want %s", err, want)
	}
}
