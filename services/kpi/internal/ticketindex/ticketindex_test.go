package ticketindex_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/ticketindex"
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
	// t0 is on the minute: real exports have minute-precision times, so ties are common.
	t0 = time.Date(2025, 6, 2, 9, 0, 0, 0, time.UTC)
)

// Ids with odd characters: they are escaped in keys, never altered.
var (
	agents  = []string{"ana", "bö b", `<script>"x"</script>/y`}
	teams   = []string{"billing", "sup port|1"}
	oddIDs  = []string{"T 1", "ü/ß", `"quoted"`, "<script>alert(1)</script>", "a|b", "~7E", "tab\tx"}
	tenant  = "acme"
	allHour = func(from, to time.Time) (int64, int64) {
		return from.Unix() / 3600, (to.Unix() + 3599) / 3600
	}
)

func ev(id string, typ tpv1.EventType, at time.Time, f func(*contrib.Event)) contrib.Event {
	e := contrib.Event{Key: contrib.KeyOf(id), Type: typ, AtMillis: at.UnixMilli()}
	if f != nil {
		f(&e)
	}
	return e
}

func created(id string, at time.Time, team string) contrib.Event {
	return ev(id+"/c", tpv1.EventType_EVENT_TYPE_TICKET_CREATED, at, func(e *contrib.Event) {
		e.Actor, e.ActorID, e.Team, e.Status = tpv1.ActorKind_ACTOR_KIND_CUSTOMER, "cust", team, tpv1.TicketStatus_TICKET_STATUS_NEW
		e.Priority = tpv1.Priority_PRIORITY_NORMAL
	})
}

func assigned(id string, n int, at time.Time, agent string) contrib.Event {
	return ev(fmt.Sprintf("%s/a%d", id, n), tpv1.EventType_EVENT_TYPE_TICKET_ASSIGNED, at, func(e *contrib.Event) {
		e.Actor, e.ActorID, e.Assignee = tpv1.ActorKind_ACTOR_KIND_SYSTEM, "sys", agent
	})
}

func reply(id string, n int, at time.Time, agent string) contrib.Event {
	return ev(fmt.Sprintf("%s/m%d", id, n), tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE, at, func(e *contrib.Event) {
		e.Actor, e.ActorID, e.Public = tpv1.ActorKind_ACTOR_KIND_AGENT, agent, 2
	})
}

func status(id string, n int, at time.Time, s tpv1.TicketStatus) contrib.Event {
	return ev(fmt.Sprintf("%s/s%d", id, n), tpv1.EventType_EVENT_TYPE_STATUS_CHANGED, at, func(e *contrib.Event) {
		e.Actor, e.ActorID, e.Status = tpv1.ActorKind_ACTOR_KIND_AGENT, "x", s
	})
}

func rated(id string, n int, at time.Time, score uint8) contrib.Event {
	return ev(fmt.Sprintf("%s/r%d", id, n), tpv1.EventType_EVENT_TYPE_SATISFACTION_RATED, at, func(e *contrib.Event) {
		e.Actor, e.ActorID, e.Score = tpv1.ActorKind_ACTOR_KIND_CUSTOMER, "cust", score
	})
}

const (
	solved = tpv1.TicketStatus_TICKET_STATUS_SOLVED
	open   = tpv1.TicketStatus_TICKET_STATUS_OPEN
)

// history is a tenant's tickets and what was posted.
type history struct {
	tickets map[string][]contrib.Event
	// lowRatings counts the tickets whose latest rating is at most 2.
	lowRatings int
}

// makeHistory builds n tickets over a day: various agents and teams, reassignments, reopens,
// re-ratings, unrated and unanswered tickets, many at equal times.
func makeHistory(n int, rng *rand.Rand) history {
	h := history{tickets: map[string][]contrib.Event{}}
	for i := range n {
		id := fmt.Sprintf("T-%03d", i)
		if i < len(oddIDs) {
			id = oddIDs[i]
		}
		// Minutes on a coarse grid: many tickets share their times.
		c := t0.Add(time.Duration(rng.IntN(40)*30) * time.Minute)
		a, b := agents[rng.IntN(len(agents))], agents[rng.IntN(len(agents))]
		team := teams[i%len(teams)]
		evs := []contrib.Event{created(id, c, team), assigned(id, 0, c, a)}
		if i%9 != 8 { // some are never answered
			evs = append(evs, reply(id, 0, c.Add(time.Duration(rng.IntN(6)*30)*time.Minute), a))
		}
		solveAt := c.Add(time.Duration(1+rng.IntN(8)) * time.Hour)
		if i%4 == 1 { // reassigned before the solve: the resolution goes to b
			evs = append(evs, assigned(id, 1, solveAt.Add(-time.Minute), b))
		}
		if i%7 != 6 {
			evs = append(evs, status(id, 0, solveAt, solved))
			if i%5 == 2 { // reopened and solved again
				evs = append(evs, status(id, 1, solveAt.Add(time.Hour), open), status(id, 2, solveAt.Add(2*time.Hour), solved))
			}
			if i%3 != 0 {
				score := uint8(1 + rng.IntN(5))
				evs = append(evs, rated(id, 0, solveAt.Add(3*time.Hour), score))
				if i%6 == 1 { // re-rated: the latest counts
					score = uint8(1 + rng.IntN(5))
					evs = append(evs, rated(id, 1, solveAt.Add(4*time.Hour), score))
				}
				if score <= 2 {
					h.lowRatings++
				}
			}
		}
		h.tickets[id] = evs
	}
	return h
}

// write delivers the history in shuffled batches, some events twice.
func write(t *testing.T, w *store.Writer, ks string, h history, rng *rand.Rand) {
	t.Helper()
	type one struct {
		id string
		e  contrib.Event
	}
	var all []one
	for id, evs := range h.tickets {
		for _, e := range evs {
			all = append(all, one{id, e})
			if rng.IntN(4) == 0 {
				all = append(all, one{id, e})
			}
		}
	}
	slices.SortFunc(all, func(a, b one) int {
		if a.id != b.id {
			if a.id < b.id {
				return -1
			}
			return 1
		}
		return 0
	})
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for len(all) > 0 {
		n := min(len(all), 1+rng.IntN(40))
		byTicket := map[string][]contrib.Event{}
		for _, o := range all[:n] {
			byTicket[o.id] = append(byTicket[o.id], o.e)
		}
		var batch []store.Ticket
		for id, evs := range byTicket {
			batch = append(batch, store.Ticket{Tenant: tenant, ID: id, Keyspace: ks, Events: evs})
		}
		if _, err := w.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		all = all[n:]
	}
}

func newWriter(rdb redis.UniversalClient) *store.Writer {
	return store.NewWriter(rdb, func(string) contrib.SLA { return contrib.DefaultSLA() }, 0, quiet)
}

// listAll pages through a listing and fails on a ticket listed twice.
func listAll(t *testing.T, r *ticketindex.Reader, q ticketindex.Query) []ticketindex.Row {
	t.Helper()
	var out []ticketindex.Row
	seen := map[string]bool{}
	for calls := 0; ; calls++ {
		if calls > 10_000 {
			t.Fatal("listing does not end")
		}
		page, err := r.List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Rows) > q.Limit {
			t.Fatalf("page of %d rows, limit %d", len(page.Rows), q.Limit)
		}
		for _, row := range page.Rows {
			if seen[row.ID] {
				t.Fatalf("ticket %q listed twice", row.ID)
			}
			seen[row.ID] = true
			out = append(out, row)
		}
		if page.Next == nil {
			return out
		}
		q.From = page.Next
	}
}

// figuresIn counts the figures of kind k of the rows credited to s within [from, to) hours.
func figuresIn(rows []ticketindex.Row, k contrib.FigureKind, s bucket.Scope, from, to int64) int64 {
	var n int64
	for _, r := range rows {
		for _, f := range r.Ticket.Figures {
			h := f.AtMillis / 3_600_000
			if f.Kind == k && h >= from && h < to && credited(f, s) {
				n++
			}
		}
	}
	return n
}

func credited(f contrib.Figure, s bucket.Scope) bool {
	switch s.Kind {
	case bucket.Agent:
		return f.Agent == s.ID
	case bucket.Team:
		return f.Team == s.ID
	}
	return true
}

// The rows behind a scope's window are exactly what its KPIs count: as many listed tickets with
// a first response (resolution, rating) there as the KPIs' first_response.count (resolutions,
// csat_count), the reopens add up, and the newest-first order holds across pages.
func TestRowsMatchFigures(t *testing.T) {
	rdb := testenv.Redis(t)
	rng := rand.New(rand.NewPCG(1, 2))
	h := makeHistory(150, rng)
	write(t, newWriter(rdb), "", h, rng)

	r := ticketindex.NewReader(rdb)
	q := query.NewReader(rdb)
	var scopes []bucket.Scope
	for _, a := range agents {
		scopes = append(scopes, bucket.Scope{Kind: bucket.Agent, ID: a})
	}
	for _, tm := range teams {
		scopes = append(scopes, bucket.Scope{Kind: bucket.Team, ID: tm})
	}
	day0, day1 := allHour(t0, t0.Add(36*time.Hour))
	windows := [][2]int64{{day0, day1}, {day0 + 3, day0 + 9}, {day0 + 10, day0 + 11}}
	for _, w := range windows {
		var tenantRows []ticketindex.Row
		sumFirst, sumRes, sumCSAT, sumReopens := int64(0), int64(0), int64(0), int64(0)
		for _, s := range append(scopes, bucket.Scope{Kind: bucket.Unassigned}) {
			tot, err := q.Totals(context.Background(), tenant, []bucket.Scope{s}, w[0], w[1])
			if err != nil {
				t.Fatal(err)
			}
			k := query.ToProto(tot[0])
			if s.Kind != bucket.Team {
				sumFirst += k.GetFirstResponse().GetCount()
				sumRes += k.GetResolutions()
				sumCSAT += k.GetCsatCount()
				sumReopens += k.GetReopens()
			}
			if s.Kind == bucket.Unassigned {
				continue
			}
			rows := listAll(t, r, ticketindex.Query{Keyspace: tenant, Scope: s, FromHour: w[0], ToHour: w[1], Limit: 7})
			name := fmt.Sprintf("%c %q hours %d..%d", s.Kind, s.ID, w[0]-day0, w[1]-day0)
			for kind, want := range map[contrib.FigureKind]int64{
				contrib.FirstResponseFigure: k.GetFirstResponse().GetCount(),
				contrib.ResolutionFigure:    k.GetResolutions(),
				contrib.RatingFigure:        k.GetCsatCount(),
				contrib.ReopenFigure:        k.GetReopens(),
			} {
				if got := figuresIn(rows, kind, s, w[0], w[1]); got != want {
					t.Errorf("%s: %d figures of kind %d listed, KPIs count %d", name, got, kind, want)
				}
			}
			// Each listed ticket has a figure of the scope in the window, and they come newest first.
			for i, row := range rows {
				if row.Hour < w[0] || row.Hour >= w[1] {
					t.Errorf("%s: %q listed at hour %d, outside the window", name, row.ID, row.Hour)
				}
				if i > 0 && row.Hour > rows[i-1].Hour {
					t.Errorf("%s: %q at hour %d after %q at hour %d", name, row.ID, row.Hour, rows[i-1].ID, rows[i-1].Hour)
				}
			}
			if len(rows) == 0 && w[1]-w[0] > 20 {
				t.Errorf("%s: no tickets listed", name)
			}
		}
		tenantRows = listAll(t, r, ticketindex.Query{Keyspace: tenant, Scope: bucket.Scope{Kind: bucket.Tenant}, FromHour: w[0], ToHour: w[1], Limit: 13})
		all := bucket.Scope{Kind: bucket.Tenant}
		if got := figuresIn(tenantRows, contrib.FirstResponseFigure, all, w[0], w[1]); got != sumFirst {
			t.Errorf("tenant hours %d..%d: %d first responses listed, KPIs count %d", w[0]-day0, w[1]-day0, got, sumFirst)
		}
		if got := figuresIn(tenantRows, contrib.ResolutionFigure, all, w[0], w[1]); got != sumRes {
			t.Errorf("tenant: %d resolutions listed, KPIs count %d", got, sumRes)
		}
		if got := figuresIn(tenantRows, contrib.RatingFigure, all, w[0], w[1]); got != sumCSAT {
			t.Errorf("tenant: %d ratings listed, KPIs count %d", got, sumCSAT)
		}
		if got := figuresIn(tenantRows, contrib.ReopenFigure, all, w[0], w[1]); got != sumReopens {
			t.Errorf("tenant: %d reopens listed, KPIs count %d", got, sumReopens)
		}
	}

	// The whole day, tenant-wide, filtered: the low ratings posted, every ticket once.
	two := 2
	low := listAll(t, r, ticketindex.Query{Keyspace: tenant, Scope: bucket.Scope{Kind: bucket.Tenant}, FromHour: day0, ToHour: day1, Limit: 5,
		Filter: ticketindex.Filter{MaxRating: &two}})
	if len(low) != h.lowRatings || h.lowRatings == 0 {
		t.Errorf("%d tickets rated at most 2 listed, %d posted", len(low), h.lowRatings)
	}
	every := listAll(t, r, ticketindex.Query{Keyspace: tenant, Scope: bucket.Scope{Kind: bucket.Tenant}, FromHour: day0, ToHour: day1, Limit: 1000})
	withFigure := 0
	for _, evs := range h.tickets {
		// Answered or solved: a first response or a resolution. Unanswered open ones have none.
		if slices.ContainsFunc(evs, func(e contrib.Event) bool {
			return e.Type == tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE || e.Status == solved
		}) {
			withFigure++
		}
	}
	if len(every) != withFigure || withFigure == len(h.tickets) {
		t.Errorf("%d tickets listed tenant-wide, %d of %d have a figure", len(every), withFigure, len(h.tickets))
	}
	for _, id := range oddIDs {
		if !slices.ContainsFunc(every, func(r ticketindex.Row) bool { return r.ID == id }) {
			t.Errorf("ticket %q not listed", id)
		}
	}
}
