package export

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/grpcapi"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/ticketindex"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// ticketCount is more tickets than one ListTicketKpis page holds, so the export pages.
const ticketCount = grpcapi.MaxPageSize + 150

func ev(id string, typ ticketpulsev1.EventType, at time.Time, f func(*contrib.Event)) contrib.Event {
	e := contrib.Event{Key: contrib.KeyOf(id), Type: typ, AtMillis: at.UnixMilli()}
	if f != nil {
		f(&e)
	}
	return e
}

// ticketEvents is ticket i's life, one of four shapes: answered, solved and rated; answered and
// still open; answered and solved without a rating; solved, reopened and solved again. Several
// tickets share each creation time, so the index has equal timestamps to order.
func ticketEvents(id string, i int, agent, team string, c time.Time) []contrib.Event {
	evs := []contrib.Event{
		ev(id+"c", ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED, c, func(e *contrib.Event) {
			e.Actor, e.ActorID, e.Team, e.Priority = ticketpulsev1.ActorKind_ACTOR_KIND_CUSTOMER, "cu", team, ticketpulsev1.Priority(1+i%4)
		}),
		ev(id+"a", ticketpulsev1.EventType_EVENT_TYPE_TICKET_ASSIGNED, c, func(e *contrib.Event) { e.Assignee = agent }),
	}
	frt := time.Duration(1+i%97) * time.Minute
	evs = append(evs, ev(id+"m", ticketpulsev1.EventType_EVENT_TYPE_AGENT_MESSAGE, c.Add(frt), func(e *contrib.Event) {
		e.Actor, e.ActorID, e.Public = ticketpulsev1.ActorKind_ACTOR_KIND_AGENT, agent, 2
	}))
	if i%4 == 1 {
		return evs
	}
	solved := c.Add(frt + time.Duration(1+i%13)*time.Hour)
	status := func(key string, at time.Time, st ticketpulsev1.TicketStatus) contrib.Event {
		return ev(id+key, ticketpulsev1.EventType_EVENT_TYPE_STATUS_CHANGED, at, func(e *contrib.Event) { e.Status = st })
	}
	evs = append(evs, status("s", solved, ticketpulsev1.TicketStatus_TICKET_STATUS_SOLVED))
	switch i % 4 {
	case 0:
		evs = append(evs, ev(id+"r", ticketpulsev1.EventType_EVENT_TYPE_SATISFACTION_RATED, solved.Add(time.Minute), func(e *contrib.Event) {
			e.Score = uint8(1 + i%5)
		}))
	case 3:
		evs = append(evs, status("o", solved.Add(time.Hour), ticketpulsev1.TicketStatus_TICKET_STATUS_OPEN),
			status("s2", solved.Add(2*time.Hour), ticketpulsev1.TicketStatus_TICKET_STATUS_SOLVED))
	}
	return evs
}

// ticketFixture runs the exports with the tickets export over a real Redis holding ticketCount
// tickets with odd ids, agents and teams, and the drill-down index when index is set.
func ticketFixture(t *testing.T, index bool) *fixture {
	t.Helper()
	rdb := testenv.Redis(t)
	w := store.NewWriter(rdb, func(string) contrib.SLA { return contrib.DefaultSLA() }, 0, slog.New(slog.DiscardHandler))
	w.SetTicketIndex(index)
	start := time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC)
	var batch []store.Ticket
	for i := range ticketCount {
		id := fmt.Sprintf("T-%d", i)
		if i < len(oddIDs) {
			id = oddIDs[i]
		}
		c := start.Add(time.Duration(i/3) * 20 * time.Minute)
		batch = append(batch, store.Ticket{Tenant: tenant, ID: id, Events: ticketEvents(id, i, oddIDs[i%len(oddIDs)], oddIDs[(i/2)%len(oddIDs)], c)})
		if len(batch) == 200 {
			if _, err := w.Write(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if _, err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	srv := grpcapi.NewServer(query.NewReader(rdb), func() time.Time { return now }, slog.New(slog.DiscardHandler))
	if index {
		srv.WithTickets(ticketindex.NewReader(rdb))
	}
	return serve(t, srv, func(s *grpcapi.Server) map[string]Source {
		return map[string]Source{
			"agents":  NewSeries(s, ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, func() time.Time { return now }),
			"tickets": NewTickets(s),
		}
	}, 0)
}

// ticketValues are the cells a ticket's row must hold, as the export writes them in zone.
func ticketValues(tk *ticketpulsev1.TicketKpis, zone *time.Location, csv bool) map[string]string {
	text := func(s string) string {
		if csv {
			return csvID(s)
		}
		return s
	}
	at := func(ts *timestamppb.Timestamp) string {
		if ts == nil {
			return ""
		}
		return ts.AsTime().In(zone).Format(time.RFC3339)
	}
	num := func(f *float64) string {
		if f == nil {
			return ""
		}
		return strconv.FormatFloat(*f, 'f', -1, 64)
	}
	rating := ""
	if tk.Rating != nil {
		rating = strconv.Itoa(int(tk.GetRating()))
	}
	return map[string]string{
		"tenant": tenant, "ticket_id": text(tk.GetTicketId()), "agent_id": text(tk.GetAgentId()), "team_id": text(tk.GetTeamId()),
		"status": tk.GetStatus(), "priority": tk.GetPriority(), "created_at": at(tk.GetCreatedAt()),
		"first_response_seconds": num(tk.FirstResponseSeconds), "first_response_at": at(tk.GetFirstResponseAt()),
		"resolution_seconds": num(tk.ResolutionSeconds), "resolved_at": at(tk.GetResolvedAt()),
		"reopens": strconv.Itoa(int(tk.GetReopens())), "rating": rating,
		"sla_first_response_breached": strconv.FormatBool(tk.GetSlaFirstResponseBreached()),
		"sla_next_response_breached":  strconv.FormatBool(tk.GetSlaNextResponseBreached()),
		"sla_resolution_breached":     strconv.FormatBool(tk.GetSlaResolutionBreached()),
		"updated_at":                  at(tk.GetUpdatedAt()),
	}
}

func listTickets(t *testing.T, c ticketpulsev1.KpiServiceClient, req *ticketpulsev1.ListTicketKpisRequest) []*ticketpulsev1.TicketKpis {
	t.Helper()
	var out []*ticketpulsev1.TicketKpis
	for {
		resp, err := c.ListTicketKpis(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetTickets()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return out
		}
	}
}

// Both formats read back hold, row for row and cell for cell, what ListTicketKpis answers over
// gRPC for the same window, scope and filter, read in small pages.
func TestTicketsExportMatchesGRPC(t *testing.T) {
	f := ticketFixture(t, true)
	f32 := func(x float64) *float64 { return &x }
	i32 := func(x int32) *int32 { return &x }
	tests := []struct {
		name    string
		params  url.Values
		filter  *ticketpulsev1.TicketFilter
		agent   string
		team    string
		minRows int
	}{
		{name: "every ticket", minRows: ticketCount},
		{name: "an odd agent", params: url.Values{"agent_id": {oddIDs[1]}}, agent: oddIDs[1], minRows: ticketCount / len(oddIDs)},
		{name: "an odd team", params: url.Values{"team_id": {oddIDs[8]}}, team: oddIDs[8], minRows: 10},
		{name: "slow first responses", params: url.Values{"min_first_response_seconds": {"3000.5"}},
			filter: &ticketpulsev1.TicketFilter{MinFirstResponseSeconds: f32(3000.5)}, minRows: 10},
		{name: "poor ratings", params: url.Values{"max_rating": {"2"}}, filter: &ticketpulsev1.TicketFilter{MaxRating: i32(2)}, minRows: 10},
		{name: "reopened", params: url.Values{"min_reopens": {"1"}, "min_resolution_seconds": {"7200"}},
			filter: &ticketpulsev1.TicketFilter{MinReopens: i32(1), MinResolutionSeconds: f32(7200)}, minRows: 10},
		{name: "unresolved", params: url.Values{"unresolved": {"true"}, "sla_breached": {"false"}}, filter: &ticketpulsev1.TicketFilter{Unresolved: true}, minRows: 10},
		{name: "sla breached", params: url.Values{"sla_breached": {"true"}}, filter: &ticketpulsev1.TicketFilter{SlaBreached: true}, minRows: 1},
	}
	for _, tt := range tests {
		for _, format := range []string{"csv", "parquet"} {
			t.Run(tt.name+" "+format, func(t *testing.T) {
				zone := "Europe/Berlin"
				q := url.Values{"from": {"2026-03-20"}, "to": {"2026-04-20"}, "time_zone": {zone}}
				for k, v := range tt.params {
					q[k] = v
				}
				resp, body := f.get(t, f.keys.Acme, "/v1/tenants/acme/exports/tickets."+format+"?"+q.Encode())
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="acme-tickets.`+format+`"` {
					t.Errorf("Content-Disposition %q", cd)
				}
				loc, _ := time.LoadLocation(zone)
				var tb table
				if format == "csv" {
					tb = readCSV(t, body)
				} else {
					tb = readParquetOf(t, body, loc, TicketColumns)
				}
				var wantCols []string
				for _, c := range TicketColumns {
					wantCols = append(wantCols, c.Name)
				}
				if !slices.Equal(tb.cols, wantCols) {
					t.Fatalf("columns %q\nwant %q", tb.cols, wantCols)
				}
				from, _ := instant("from", q.Get("from"), loc)
				to, _ := instant("to", q.Get("to"), loc)
				want := listTickets(t, f.grpc, &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, AgentId: tt.agent, TeamId: tt.team, Filter: tt.filter, PageSize: 7,
					Window: &ticketpulsev1.Window{TimeZone: zone, Kind: &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{From: timestamppb.New(from), To: timestamppb.New(to)}}}})
				if len(tb.rows) != len(want) || len(want) < tt.minRows {
					t.Fatalf("%d rows, ListTicketKpis %d, want at least %d", len(tb.rows), len(want), tt.minRows)
				}
				nulls := 0
				for i, tk := range want {
					for name, w := range ticketValues(tk, loc, format == "csv") {
						if tb.rows[i][name] != w {
							t.Errorf("row %d (%q) %s = %q, want %q", i, tk.GetTicketId(), name, tb.rows[i][name], w)
						}
						if w == "" {
							nulls++
						}
					}
				}
				if tt.name == "every ticket" && nulls == 0 {
					t.Error("no absent figure in the whole export: the fixture misses unanswered and unrated tickets")
				}
			})
		}
	}
}

// Odd ids come back exactly from Parquet and quoted against formulas in CSV.
func TestTicketsExportOddIDs(t *testing.T) {
	f := ticketFixture(t, true)
	q := "?from=2026-03-26&to=2026-03-28&agent_id=" + url.QueryEscape(oddIDs[0])
	for _, format := range []string{"csv", "parquet"} {
		resp, body := f.get(t, f.keys.Acme, "/v1/tenants/acme/exports/tickets."+format+q)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", format, resp.StatusCode, body)
		}
		var tb table
		if format == "csv" {
			tb = readCSV(t, body)
		} else {
			tb = readParquetOf(t, body, time.UTC, TicketColumns)
		}
		var got []string
		for _, r := range tb.rows {
			got = append(got, r["ticket_id"])
			if want := oddIDs[0]; r["agent_id"] != want {
				t.Errorf("%s: agent_id %q, want %q", format, r["agent_id"], want)
			}
		}
		// Agent oddIDs[0] has every len(oddIDs)th ticket; the first is the one named oddIDs[0].
		wantID := oddIDs[0]
		if !slices.Contains(got, wantID) {
			t.Errorf("%s: tickets %q lack %q", format, got, wantID)
		}
	}
	for _, format := range []string{"csv", "parquet"} {
		resp, body := f.get(t, f.keys.Acme, "/v1/tenants/acme/exports/tickets."+format+"?from=2026-03-26&to=2026-03-28")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d: %s", format, resp.StatusCode, body)
		}
		var tb table
		if format == "csv" {
			tb = readCSV(t, body)
		} else {
			tb = readParquetOf(t, body, time.UTC, TicketColumns)
		}
		got := map[string]bool{}
		for _, r := range tb.rows {
			got[r["ticket_id"]] = true
			for _, col := range []string{"ticket_id", "agent_id", "team_id"} {
				if format == "csv" && r[col] != "" && strings.ContainsAny(r[col][:1], "=+-@\t\r") {
					t.Errorf("csv %s %q starts with a formula character", col, r[col])
				}
			}
		}
		for _, id := range oddIDs {
			if format == "csv" {
				id = csvID(id)
			}
			if !got[id] {
				t.Errorf("%s: no row for ticket %q", format, id)
			}
		}
	}
}

// Without the index the tickets export is refused with 409 and a JSON error naming the flag,
// before any row; bad parameters of the tickets export are refused by name.
func TestTicketsExportRefusals(t *testing.T) {
	off := ticketFixture(t, false)
	resp, body := off.get(t, off.keys.Acme, "/v1/tenants/acme/exports/tickets.csv?rolling=7d")
	var r Refusal
	if resp.StatusCode != http.StatusConflict || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &r) != nil ||
		!strings.Contains(r.Reason, "-ticket-index") || r.Error != "conflict" {
		t.Errorf("index off: status %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = off.get(t, off.keys.Globex, "/v1/tenants/acme/exports/tickets.parquet?rolling=7d")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("index off, other tenant's key: status %d: %s", resp.StatusCode, body)
	}

	f := ticketFixture(t, true)
	ok := "?from=2026-03-01&to=2026-04-01"
	tests := []struct {
		name, key, path string
		wantStatus      int
		wantField       string
	}{
		{"no credential", "", "/v1/tenants/acme/exports/tickets.csv" + ok, 401, ""},
		{"other tenant's key", f.keys.Globex, "/v1/tenants/acme/exports/tickets.csv" + ok, 403, ""},
		{"key without kpis:read", f.keys.AcmeEvents, "/v1/tenants/acme/exports/tickets.parquet" + ok, 403, ""},
		{"granularity", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&granularity=day", 400, "granularity"},
		{"agent_id on agents", f.keys.Acme, "/v1/tenants/acme/exports/agents.csv" + ok + "&agent_id=x", 400, "agent_id"},
		{"max_rating on agents", f.keys.Acme, "/v1/tenants/acme/exports/agents.csv" + ok + "&max_rating=2", 400, "max_rating"},
		{"agent and team", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&agent_id=a&team_id=b", 400, "team_id"},
		{"rating 6", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&max_rating=6", 400, "max_rating"},
		{"rating text", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&max_rating=%3Cscript%3E", 400, "max_rating"},
		{"negative reopens", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&min_reopens=-1", 400, "min_reopens"},
		{"NaN seconds", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&min_first_response_seconds=NaN", 400, "min_first_response_seconds"},
		{"huge seconds", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&min_resolution_seconds=1e13", 400, "min_resolution_seconds"},
		{"yes for a boolean", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&sla_breached=yes", 400, "sla_breached"},
		{"repeated filter", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&unresolved=true&unresolved=false", 400, "unresolved"},
		{"over ten years", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv?from=2014-01-01&to=2026-01-01", 400, "to"},
		{"long agent id", f.keys.Acme, "/v1/tenants/acme/exports/tickets.csv" + ok + "&agent_id=" + strings.Repeat("a", 257), 400, "agent_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := f.get(t, tt.key, tt.path)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			var r Refusal
			if err := json.Unmarshal(body, &r); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if r.Reason == "" || r.Field != tt.wantField {
				t.Errorf("body %s: want field %q and a reason", body, tt.wantField)
			}
			if strings.Contains(string(body), "<script>") {
				t.Errorf("body %s echoes markup unescaped", body)
			}
		})
	}
}
