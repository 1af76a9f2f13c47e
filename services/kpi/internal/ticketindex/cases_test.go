package ticketindex_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/ticketindex"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func writeOne(t *testing.T, w *store.Writer, id string, evs ...contrib.Event) store.Result {
	t.Helper()
	res, err := w.Write(context.Background(), []store.Ticket{{Tenant: tenant, ID: id, Events: evs}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ids(rows []ticketindex.Row) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

func agentScope(id string) bucket.Scope { return bucket.Scope{Kind: bucket.Agent, ID: id} }

func day() (int64, int64) { return allHour(t0, t0.Add(24*time.Hour)) }

func list(t *testing.T, rdb redis.UniversalClient, s bucket.Scope, from, to int64) []ticketindex.Row {
	t.Helper()
	return listAll(t, ticketindex.NewReader(rdb), ticketindex.Query{Keyspace: tenant, Scope: s, FromHour: from, ToHour: to, Limit: 100})
}

// A late event that moves a figure moves the ticket's rows: an earlier reply by bob arrives after
// ana's was counted, so the first response (and the ticket) is bob's, not ana's.
func TestLateEventMovesRows(t *testing.T) {
	rdb := testenv.Redis(t)
	w := newWriter(rdb)
	from, to := day()
	writeOne(t, w, "T-1", created("T-1", t0, "billing"), assigned("T-1", 0, t0, "ana"), reply("T-1", 0, t0.Add(2*time.Hour), "ana"))
	if got := ids(list(t, rdb, agentScope("ana"), from, to)); !slices.Equal(got, []string{"T-1"}) {
		t.Fatalf("ana's tickets %q, want T-1", got)
	}
	writeOne(t, w, "T-1", reply("T-1", 1, t0.Add(30*time.Minute), "bob"))
	if got := list(t, rdb, agentScope("ana"), from, to); len(got) != 0 {
		t.Errorf("ana's tickets after bob's earlier reply arrived: %q, want none", ids(got))
	}
	rows := list(t, rdb, agentScope("bob"), from, to)
	if len(rows) != 1 || rows[0].Ticket.FirstResponseMillis != 30*60_000 || rows[0].Hour != t0.Unix()/3600 {
		t.Fatalf("bob's tickets %+v, want T-1 with a 30 min first response at 09:00", rows)
	}
	// The old hour's entry is gone, not left at zero.
	key := bucket.TicketIndexKey(tenant, agentScope("ana"), t0.Unix()/86400)
	if n := rdb.Exists(context.Background(), key).Val(); n != 0 {
		t.Errorf("ana's index day %v still exists", rdb.HGetAll(context.Background(), key).Val())
	}
}

// A ticket reassigned before its solve is listed under the agent who answered (first response)
// and the one who solved it (resolution), each in the hour of their figure; a reopen goes to the
// agent whose resolution it undid.
func TestReassignedAndReopenedTicket(t *testing.T) {
	rdb := testenv.Redis(t)
	w := newWriter(rdb)
	from, to := day()
	writeOne(t, w, "T-1",
		created("T-1", t0, "billing"), assigned("T-1", 0, t0, "ana"), reply("T-1", 0, t0.Add(10*time.Minute), "ana"),
		assigned("T-1", 1, t0.Add(time.Hour), "bob"), status("T-1", 0, t0.Add(2*time.Hour), solved),
		assigned("T-1", 2, t0.Add(3*time.Hour), "cy"), status("T-1", 1, t0.Add(4*time.Hour), open))
	h0 := t0.Unix() / 3600
	for _, tc := range []struct {
		agent string
		hour  int64
	}{{"ana", h0}, {"bob", h0 + 4}} {
		rows := list(t, rdb, agentScope(tc.agent), from, to)
		if len(rows) != 1 || rows[0].Hour != tc.hour {
			t.Errorf("%s's tickets %+v, want T-1 at hour %d", tc.agent, rows, tc.hour-h0)
		}
	}
	if rows := list(t, rdb, agentScope("cy"), from, to); len(rows) != 0 {
		t.Errorf("cy, assignee at the reopen, listed %q: the reopen is bob's", ids(rows))
	}
	// bob's only figure before the reopen is the resolution, at hour 2.
	if rows := list(t, rdb, agentScope("bob"), from, h0+3); len(rows) != 1 || rows[0].Hour != h0+2 {
		t.Errorf("bob's tickets until hour 3: %+v, want T-1 at hour 2", rows)
	}
	row := list(t, rdb, bucket.Scope{Kind: bucket.Team, ID: "billing"}, from, to)
	if len(row) != 1 || row[0].Ticket.Reopens != 1 || row[0].Ticket.ResolutionMillis != -1 || row[0].Ticket.ResolvedAt == 0 {
		t.Fatalf("billing's tickets %+v, want T-1 reopened once, no resolution time (open again)", row)
	}
	if agent, team := ticketindex.Latest(&row[0].Ticket); agent != "bob" || team != "billing" {
		t.Errorf("latest figure credited to %q/%q, want bob/billing (the reopen)", agent, team)
	}
}

// Redelivered and duplicated events never add a row twice: the index counts stay those of the
// ticket's figures.
func TestRedeliveryAddsNoRow(t *testing.T) {
	rdb := testenv.Redis(t)
	w := newWriter(rdb)
	from, to := day()
	evs := []contrib.Event{created("T-1", t0, "billing"), assigned("T-1", 0, t0, "ana"), reply("T-1", 0, t0, "ana"),
		status("T-1", 0, t0, solved), rated("T-1", 0, t0, 2)}
	writeOne(t, w, "T-1", evs...)
	key := bucket.TicketIndexKey(tenant, agentScope("ana"), t0.Unix()/86400)
	before := rdb.HGetAll(context.Background(), key).Val()
	// first response, resolution and rating, all in hour 09.
	if want := map[string]string{"09|T-1": "3"}; !mapsEqual(before, want) {
		t.Fatalf("ana's index %v, want %v", before, want)
	}
	for range 3 {
		if res := writeOne(t, w, "T-1", evs...); res.NewEvents != 0 {
			t.Fatalf("redelivery: %+v", res)
		}
	}
	// A crash after the states were stored: the redelivery applies the pending deltas once.
	w.SetHook(func(step string) error {
		if step == store.StepStored {
			return context.Canceled
		}
		return nil
	})
	if _, err := w.Write(context.Background(), []store.Ticket{{Tenant: tenant, ID: "T-1", Events: []contrib.Event{rated("T-1", 1, t0.Add(time.Minute), 1)}}}); err == nil {
		t.Fatal("the hook did not stop the write")
	}
	w.SetHook(nil)
	writeOne(t, w, "T-1", rated("T-1", 1, t0.Add(time.Minute), 1))
	writeOne(t, w, "T-1", rated("T-1", 1, t0.Add(time.Minute), 1))
	if got := rdb.HGetAll(context.Background(), key).Val(); !mapsEqual(got, before) {
		t.Errorf("ana's index after redeliveries %v, want %v", got, before)
	}
	rows := list(t, rdb, agentScope("ana"), from, to)
	if len(rows) != 1 || rows[0].Ticket.Rating != 1 {
		t.Errorf("rows %+v, want T-1 once, re-rated 1", rows)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A compacted ticket keeps its rows: its figures stay in the buckets, and so does its entry.
func TestCompactedTicketStaysListed(t *testing.T) {
	rdb := testenv.Redis(t)
	w := newWriter(rdb)
	w.SetFileResolved(true)
	now := t0.Add(time.Hour)
	w.SetClock(func() time.Time { return now })
	writeOne(t, w, "ü/ß", created("ü/ß", t0, "billing"), assigned("ü/ß", 0, t0, "ana"), reply("ü/ß", 0, t0.Add(5*time.Minute), "ana"),
		status("ü/ß", 0, t0.Add(20*time.Minute), solved), rated("ü/ß", 0, t0.Add(30*time.Minute), 1))
	from, to := day()
	before := list(t, rdb, agentScope("ana"), from, to)
	c := store.NewCompactor(rdb, w, 24*time.Hour, 100, quiet)
	now = now.Add(48 * time.Hour)
	c.SetClock(func() time.Time { return now })
	res, err := c.Pass(context.Background())
	if err != nil || res.Compacted != 1 {
		t.Fatalf("compaction: %+v %v, want 1 ticket compacted", res, err)
	}
	after := list(t, rdb, agentScope("ana"), from, to)
	if len(after) != 1 || len(before) != 1 || after[0].ID != "ü/ß" || after[0].Ticket.Rating != 1 ||
		after[0].Ticket.FirstResponseMillis != 5*60_000 || after[0].Ticket.ResolutionMillis != 20*60_000 {
		t.Fatalf("after compaction %+v, before %+v", after, before)
	}
	// A late rating of a compacted ticket is too late: the row does not change.
	if res := writeOne(t, w, "ü/ß", rated("ü/ß", 1, t0.Add(49*time.Hour), 5)); res.TooLate != 1 {
		t.Fatalf("late rating: %+v", res)
	}
	if again := list(t, rdb, agentScope("ana"), from, to); len(again) != 1 || again[0].Ticket.Rating != 1 {
		t.Errorf("after a too-late rating: %+v", again)
	}
}

// Pages walk the index with no duplicate and no gap, whatever the page size and however small
// the per-call budget (which can end a page before it is full, even empty).
func TestPagination(t *testing.T) {
	rdb := testenv.Redis(t)
	w := newWriter(rdb)
	var batch []store.Ticket
	var want []string
	for i := range 120 {
		id := "T " + strconv.Itoa(i) + []string{"", "/ü", `"`, "<b>"}[i%4]
		at := t0.Add(time.Duration(i%5) * time.Hour) // 24 tickets per hour, all at the same minute
		batch = append(batch, store.Ticket{Tenant: tenant, ID: id, Events: []contrib.Event{
			created(id, at, "billing"), assigned(id, 0, at, "ana"), reply(id, 0, at, "ana")}})
		want = append(want, id)
	}
	if _, err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	from, to := day()
	// The order: newest hour first, by escaped id within an hour.
	slices.SortFunc(want, func(a, b string) int {
		ia, _ := strconv.Atoi(trimID(a))
		ib, _ := strconv.Atoi(trimID(b))
		if ha, hb := ia%5, ib%5; ha != hb {
			return hb - ha
		}
		ea, eb := idtoken.Escape(a), idtoken.Escape(b)
		switch {
		case ea < eb:
			return -1
		case ea > eb:
			return 1
		}
		return 0
	})
	for _, tc := range []struct {
		name                string
		limit, budget, days int
	}{
		{"one per page", 1, ticketindex.MaxExamined, ticketindex.MaxDays},
		{"pages of 7", 7, ticketindex.MaxExamined, ticketindex.MaxDays},
		{"one page", 1000, ticketindex.MaxExamined, ticketindex.MaxDays},
		{"budget 5", 7, 5, ticketindex.MaxDays},
		{"budget 1", 1000, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ticketindex.NewReader(rdb)
			r.SetBounds(tc.budget, tc.days)
			got := ids(listAll(t, r, ticketindex.Query{Keyspace: tenant, Scope: agentScope("ana"), FromHour: from, ToHour: to, Limit: tc.limit}))
			if !slices.Equal(got, want) {
				t.Errorf("listed %q,\nwant %q", got, want)
			}
		})
	}
}

func trimID(id string) string {
	id = id[2:]
	for i, c := range id {
		if c < '0' || c > '9' {
			return id[:i]
		}
	}
	return id
}

// A filter that matches nothing over ten years does not scan them in one call: each call stops
// after MaxDays days and hands back where to go on.
func TestBoundedWork(t *testing.T) {
	rdb := testenv.Redis(t)
	w := newWriter(rdb)
	writeOne(t, w, "T-1", created("T-1", t0, "billing"), assigned("T-1", 0, t0, "ana"), reply("T-1", 0, t0, "ana"))
	to := t0.Unix()/3600 + 24
	from := to - 10*366*24
	r := ticketindex.NewReader(rdb)
	nine := 9
	q := ticketindex.Query{Keyspace: tenant, Scope: bucket.Scope{Kind: bucket.Tenant}, FromHour: from, ToHour: to, Limit: 10,
		Filter: ticketindex.Filter{MinReopens: &nine}}
	calls := 0
	for {
		calls++
		page, err := r.List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Rows) != 0 {
			t.Fatalf("rows %+v match no ticket", page.Rows)
		}
		if page.Next == nil {
			break
		}
		if page.Next.Hour >= func() int64 {
			if q.From == nil {
				return to
			}
			return q.From.Hour
		}() {
			t.Fatalf("call %d did not move on: %+v", calls, page.Next)
		}
		q.From = page.Next
	}
	if want := (10*366 + ticketindex.MaxDays - 1) / ticketindex.MaxDays; calls < want {
		t.Errorf("%d calls for 10 years, want at least %d (at most %d days each)", calls, want, ticketindex.MaxDays)
	}
	// A large budget of examined entries ends a call too.
	rng := rand.New(rand.NewPCG(3, 4))
	write(t, w, "", makeHistory(60, rng), rng)
	r.SetBounds(10, ticketindex.MaxDays)
	q = ticketindex.Query{Keyspace: tenant, Scope: bucket.Scope{Kind: bucket.Tenant}, FromHour: to - 48, ToHour: to + 24, Limit: 1000,
		Filter: ticketindex.Filter{MinReopens: &nine}}
	page, err := r.List(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if page.Next == nil || page.Examined > 10 {
		t.Errorf("a call examined %d entries with a budget of 10, next %+v", page.Examined, page.Next)
	}
}

// The index is built in the keyspace a rebuild writes (package generation), not the live one.
func TestIndexFollowsKeyspace(t *testing.T) {
	rdb := testenv.Redis(t)
	w := newWriter(rdb)
	if _, err := w.Write(context.Background(), []store.Ticket{{Tenant: tenant, ID: "T-1", Keyspace: tenant + "@2", Events: []contrib.Event{
		created("T-1", t0, "billing"), assigned("T-1", 0, t0, "ana"), reply("T-1", 0, t0, "ana")}}}); err != nil {
		t.Fatal(err)
	}
	from, to := day()
	r := ticketindex.NewReader(rdb)
	for ks, want := range map[string]int{tenant: 0, tenant + "@2": 1} {
		rows := listAll(t, r, ticketindex.Query{Keyspace: ks, Scope: agentScope("ana"), FromHour: from, ToHour: to, Limit: 10})
		if len(rows) != want {
			t.Errorf("keyspace %s: %d rows, want %d", ks, len(rows), want)
		}
	}
}

// The index expires with the buckets' retention.
func TestIndexExpiresWithRetention(t *testing.T) {
	rdb := testenv.Redis(t)
	w := store.NewWriter(rdb, func(string) contrib.SLA { return contrib.DefaultSLA() }, 30*24*time.Hour, quiet)
	// Recent: the day t0 falls on is past a 30-day retention, and its keys are gone at once.
	at0 := time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour)
	writeOne(t, w, "T-1", created("T-1", at0, "billing"), assigned("T-1", 0, at0, "ana"), reply("T-1", 0, at0, "ana"))
	d := at0.Unix() / 86400
	want := time.Unix((d+1)*86400, 0).Add(30 * 24 * time.Hour)
	for _, s := range []bucket.Scope{agentScope("ana"), {Kind: bucket.Team, ID: "billing"}, {Kind: bucket.Tenant}} {
		exp := rdb.ExpireTime(context.Background(), bucket.TicketIndexKey(tenant, s, d)).Val()
		hourAt := rdb.ExpireTime(context.Background(), bucket.HourKey(tenant, agentScope("ana"), d)).Val()
		if exp != time.Duration(want.Unix())*time.Second || exp != hourAt {
			t.Errorf("%c index expires at %v, want %v, as the hour detail (%v)", s.Kind, exp, want.Unix(), hourAt)
		}
	}
}
