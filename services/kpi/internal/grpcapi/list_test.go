package grpcapi

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

const listAgents = 250

func listAgentID(i int) string {
	return fmt.Sprintf("agent %03d.%s", i, []string{"ü", "x", "✓"}[i%3])
}

// assignedOf is agent i's assigned count: many ties, so ordering must break them by agent_id.
func assignedOf(i int) int64 { return int64(i % 17) }

// listFixture writes 250 agents with varied figures two hours before t0; agents i%3 == 0 are
// credited for team "t0".
func listFixture(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	b := querytest.NewBuilder(tenant)
	hour := window.HourOf(t0) - 2
	for i := range listAgents {
		id := listAgentID(i)
		teamID := ""
		if i%3 == 0 {
			teamID = "t0"
		}
		b.Index(id, teamID, hour)
		s := bucket.Scope{Kind: bucket.Agent, ID: id}
		b.Add(s, hour, bucket.Assigned.Field(), assignedOf(i))
		b.Add(s, hour, bucket.AssignedNowResolved.Field(), int64(i%5))
		b.Add(s, hour, bucket.Resolutions.Field(), int64(1+i%4))
		b.Add(s, hour, bucket.OneTouch.Field(), int64(i%2))
		b.Add(s, hour, bucket.CSATCount.Field(), int64(i%6))
		b.Add(s, hour, bucket.CSATScoreSum.Field(), int64((i%6)*(1+i%5)))
		b.Add(s, hour, bucket.CSATPositive.Field(), int64(i%3))
		b.Add(s, hour, bucket.SLAMet.Field(), int64(i%7))
		b.Add(s, hour, bucket.SLABreached.Field(), int64(i%4))
		for j := range i % 3 {
			centi := int64((i*937 + j*411) % 10001)
			b.Add(s, hour, bucket.QACount.Field(), 1)
			b.Add(s, hour, bucket.QAScoreSum.Field(), centi)
			b.Add(s, hour, bucket.BinField(bucket.QAScore, bucket.QABin(centi)), 1)
			if (i+j)%4 == 0 {
				b.Add(s, hour, bucket.QAAutoFails.Field(), 1)
			}
		}
		offered := int64(i % 9)
		b.Add(s, hour, bucket.CallsOffered.Field(), offered)
		b.Add(s, hour, bucket.CallsAnswered.Field(), offered-int64(i%2))
		b.Add(s, hour, bucket.CallsAbandoned.Field(), int64(i%2))
		b.Add(s, hour, bucket.CallsInServiceLevel.Field(), offered/2)
		for j := range i % 3 {
			asa := float64(1 + (i*11+j*5)%90)
			b.Add(s, hour, bucket.CallAnswerCount.Field(), 1)
			b.Add(s, hour, bucket.CallAnswerSumMillis.Field(), int64(asa*1000))
			b.Add(s, hour, bucket.BinField(bucket.CallSpeedOfAnswer, hist.Bin(asa)), 1)
			aht := float64(60 * (1 + (i*3+j*7)%30))
			b.Add(s, hour, bucket.CallHandleCount.Field(), 1)
			b.Add(s, hour, bucket.CallHandleSumMillis.Field(), int64(aht*1000))
			b.Add(s, hour, bucket.BinField(bucket.CallHandleTime, hist.Bin(aht)), 1)
		}
		for j := range 1 + i%4 {
			secs := float64(30 * (1 + (i*7+j*13)%40))
			b.Add(s, hour, bucket.FirstCount.Field(), 1)
			b.Add(s, hour, bucket.FirstSumMillis.Field(), int64(secs*1000))
			b.Add(s, hour, bucket.BinField(bucket.FirstResponse, hist.Bin(secs)), 1)
		}
	}
	if _, err := b.Flush(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
}

// protoKeys read the ordered figure from the answer, independently of the server's own keys.
var protoKeys = map[string]func(k *ticketpulsev1.Kpis) float64{
	"assigned":                      func(k *ticketpulsev1.Kpis) float64 { return float64(k.GetAssigned()) },
	"resolutions":                   func(k *ticketpulsev1.Kpis) float64 { return float64(k.GetResolutions()) },
	"resolution_rate":               (*ticketpulsev1.Kpis).GetResolutionRate,
	"reopen_rate":                   (*ticketpulsev1.Kpis).GetReopenRate,
	"one_touch_rate":                (*ticketpulsev1.Kpis).GetOneTouchRate,
	"csat_count":                    func(k *ticketpulsev1.Kpis) float64 { return float64(k.GetCsatCount()) },
	"csat_mean":                     (*ticketpulsev1.Kpis).GetCsatMean,
	"csat_percent":                  (*ticketpulsev1.Kpis).GetCsatPercent,
	"first_response_mean":           func(k *ticketpulsev1.Kpis) float64 { return k.GetFirstResponse().GetMeanSeconds() },
	"first_response_p50":            func(k *ticketpulsev1.Kpis) float64 { return k.GetFirstResponse().GetP50Seconds() },
	"first_response_p90":            func(k *ticketpulsev1.Kpis) float64 { return k.GetFirstResponse().GetP90Seconds() },
	"next_response_p90":             func(k *ticketpulsev1.Kpis) float64 { return k.GetNextResponse().GetP90Seconds() },
	"resolution_p90":                func(k *ticketpulsev1.Kpis) float64 { return k.GetResolution().GetP90Seconds() },
	"sla_first_response_compliance": (*ticketpulsev1.Kpis).GetSlaFirstResponseCompliance,
	"qa_score_count":                func(k *ticketpulsev1.Kpis) float64 { return float64(k.GetQaScore().GetCount()) },
	"qa_score_mean":                 func(k *ticketpulsev1.Kpis) float64 { return k.GetQaScore().GetMean() },
	"qa_score_p50":                  func(k *ticketpulsev1.Kpis) float64 { return k.GetQaScore().GetP50() },
	"qa_score_p90":                  func(k *ticketpulsev1.Kpis) float64 { return k.GetQaScore().GetP90() },
	"qa_auto_fail_rate":             (*ticketpulsev1.Kpis).GetQaAutoFailRate,
	"calls_offered":                 func(k *ticketpulsev1.Kpis) float64 { return float64(k.GetCallsOffered()) },
	"calls_answered":                func(k *ticketpulsev1.Kpis) float64 { return float64(k.GetCallsAnswered()) },
	"call_abandon_rate":             (*ticketpulsev1.Kpis).GetCallAbandonRate,
	"call_service_level":            (*ticketpulsev1.Kpis).GetCallServiceLevel,
	"call_speed_of_answer_mean":     func(k *ticketpulsev1.Kpis) float64 { return k.GetCallSpeedOfAnswer().GetMeanSeconds() },
	"call_speed_of_answer_p90":      func(k *ticketpulsev1.Kpis) float64 { return k.GetCallSpeedOfAnswer().GetP90Seconds() },
	"call_handle_time_mean":         func(k *ticketpulsev1.Kpis) float64 { return k.GetCallHandleTime().GetMeanSeconds() },
	"call_handle_time_p90":          func(k *ticketpulsev1.Kpis) float64 { return k.GetCallHandleTime().GetP90Seconds() },
}

func TestOrderNamesAreAllTested(t *testing.T) {
	for _, n := range OrderNames {
		if _, ok := protoKeys[n]; !ok && n != "agent_id" {
			t.Errorf("order_by %q has no test key", n)
		}
	}
	if len(OrderNames) != len(protoKeys)+1 {
		t.Errorf("%d order names, %d test keys", len(OrderNames), len(protoKeys))
	}
}

// listAll pages through a listing and checks each page's invariants.
func listAll(t *testing.T, c ticketpulsev1.KpiServiceClient, req *ticketpulsev1.ListAgentKpisRequest) ([]*ticketpulsev1.AgentKpis, *ticketpulsev1.ResolvedWindow) {
	t.Helper()
	req = proto.Clone(req).(*ticketpulsev1.ListAgentKpisRequest)
	var all []*ticketpulsev1.AgentKpis
	var first *ticketpulsev1.ResolvedWindow
	for pages := 0; ; pages++ {
		if pages > listAgents+1 {
			t.Fatal("pagination does not end")
		}
		resp, err := c.ListAgentKpis(context.Background(), req)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		size := int(cmp.Or(req.GetPageSize(), DefaultPageSize))
		if n := len(resp.GetAgents()); n > size || (n < size && resp.GetNextPageToken() != "") {
			t.Fatalf("page %d holds %d agents with page size %d and next token %q", pages, n, size, resp.GetNextPageToken())
		}
		if first == nil {
			first = resp.GetWindow()
		} else if !proto.Equal(first, resp.GetWindow()) {
			t.Fatalf("page %d window %v, first page's %v", pages, resp.GetWindow(), first)
		}
		all = append(all, resp.GetAgents()...)
		if int(resp.GetTotalSize()) < len(all) {
			t.Fatalf("total_size %d, but %d agents seen", resp.GetTotalSize(), len(all))
		}
		if resp.GetNextPageToken() == "" {
			if int(resp.GetTotalSize()) != len(all) {
				t.Fatalf("total_size %d, %d agents listed", resp.GetTotalSize(), len(all))
			}
			return all, first
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

func TestListAgentKpisPagination(t *testing.T) {
	rdb := testenv.Redis(t)
	listFixture(t, rdb)
	trips := &querytest.RoundTrips{}
	rdb.AddHook(trips)
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	day := rolling("24h", "")

	var everyone, team []string
	for i := range listAgents {
		everyone = append(everyone, listAgentID(i))
		if i%3 == 0 {
			team = append(team, listAgentID(i))
		}
	}
	slices.Sort(everyone)
	slices.Sort(team)
	byAssignedDesc := slices.Clone(everyone)
	slices.SortStableFunc(byAssignedDesc, func(a, b string) int {
		var ia, ib int
		fmt.Sscanf(a, "agent %d", &ia)
		fmt.Sscanf(b, "agent %d", &ib)
		return cmp.Compare(assignedOf(ib), assignedOf(ia))
	})
	reversed := slices.Clone(everyone)
	slices.Reverse(reversed)

	tests := []struct {
		name     string
		team     string
		orderBy  string
		pageSize int32
		// want is the exact expected order where the test can compute it from the fixture alone.
		want []string
	}{
		{name: "default order and size", want: everyone},
		{name: "agent_id in pages of 7", orderBy: "agent_id", pageSize: 7, want: everyone},
		{name: "agent_id desc", orderBy: "agent_id desc", pageSize: 100, want: reversed},
		{name: "assigned desc, ties by agent_id", orderBy: "assigned desc", pageSize: 33, want: byAssignedDesc},
		{name: "one page of everything", orderBy: "assigned desc", pageSize: 1000, want: byAssignedDesc},
		{name: "team filter", team: "t0", orderBy: "agent_id", pageSize: 10, want: team},
		{name: "csat_mean", orderBy: "csat_mean", pageSize: 64},
		{name: "first_response_p90 desc", orderBy: "first_response_p90 desc", pageSize: 50},
		{name: "team by compliance", team: "t0", orderBy: "sla_first_response_compliance desc", pageSize: 9},
	}
	for _, name := range OrderNames {
		tests = append(tests, struct {
			name     string
			team     string
			orderBy  string
			pageSize int32
			want     []string
		}{name: "every name: " + name, orderBy: name, pageSize: 120})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, w := listAll(t, c, &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, TeamId: tt.team, Window: day, OrderBy: tt.orderBy, PageSize: tt.pageSize})
			ids := make([]string, len(got))
			for i, a := range got {
				ids[i] = a.GetAgentId()
			}
			wantSet := everyone
			if tt.team != "" {
				wantSet = team
			}
			if sorted := slices.Sorted(slices.Values(ids)); !slices.Equal(sorted, wantSet) {
				t.Fatalf("listed %d agents, want each of the %d exactly once", len(ids), len(wantSet))
			}
			if tt.want != nil && !slices.Equal(ids, tt.want) {
				t.Errorf("order:\n got  %q\n want %q", head(ids), head(tt.want))
			}
			o, _ := parseOrder(tt.orderBy, "agent_id")
			key := protoKeys[o.name]
			for i := 1; i < len(got) && key != nil; i++ {
				a, b := got[i-1], got[i]
				ka, kb := key(a.GetKpis()), key(b.GetKpis())
				inOrder := ka < kb
				if o.desc {
					inOrder = ka > kb
				}
				if !inOrder && !(ka == kb && a.GetAgentId() < b.GetAgentId()) {
					t.Fatalf("%s (%v) before %s (%v) in %q order", a.GetAgentId(), ka, b.GetAgentId(), kb, o)
				}
			}
			if !w.GetFrom().AsTime().Equal(mustTime("2026-11-23T14:00:00Z")) {
				t.Errorf("window %v", w)
			}
		})
	}
	t.Run("figures match GetAgentKpis", func(t *testing.T) {
		got, _ := listAll(t, c, &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: day, OrderBy: "csat_percent desc", PageSize: 40})
		for _, a := range got[:20] {
			one, err := c.GetAgentKpis(context.Background(), &ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: a.GetAgentId(), Window: day})
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(one.GetAgent(), a) {
				t.Fatalf("listed %v, GetAgentKpis says %v", a, one.GetAgent())
			}
		}
	})
	t.Run("round trips per page", func(t *testing.T) {
		before := trips.Count()
		if _, err := c.ListAgentKpis(context.Background(), &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: rolling("30d", ""), OrderBy: "first_response_p50"}); err != nil {
			t.Fatal(err)
		}
		// The agents' index, every agent's totals and hours, and the hours of days on which an
		// agent had no figures (the rollup derives no totals for them).
		if n := trips.Count() - before; n < 2 || n > 3 {
			t.Errorf("%d round trips, want 2 or 3 (the agents' index, then every agent's buckets)", n)
		}
	})
}

func head(s []string) []string { return s[:min(len(s), 12)] }

func TestPageTokenPinsTheWindow(t *testing.T) {
	rdb := testenv.Redis(t)
	listFixture(t, rdb)
	clk := &clock{t: t0}
	c := serve(t, query.NewReader(rdb), clk.now)
	req := &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: rolling("1h", ""), OrderBy: "assigned desc", PageSize: 100}
	// The figures are two hours back: 1h covers them only while the clock is at t0 - 1h.
	clk.advance(-time.Hour)
	first, err := c.ListAgentKpis(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetTotalSize() != listAgents || first.GetAgents()[0].GetKpis().GetAssigned() != 16 {
		t.Fatalf("first page: total %d, top assigned %d", first.GetTotalSize(), first.GetAgents()[0].GetKpis().GetAssigned())
	}
	clk.advance(3 * time.Hour)
	req.PageToken = first.GetNextPageToken()
	second, err := c.ListAgentKpis(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(second.GetWindow(), first.GetWindow()) {
		t.Errorf("second page window %v, first page %v", second.GetWindow(), first.GetWindow())
	}
	if second.GetTotalSize() != listAgents || len(second.GetAgents()) != 100 || second.GetAgents()[0].GetKpis().GetAssigned() == 0 {
		t.Errorf("second page: total %d, %d agents, first with assigned %d; want the pinned window's figures",
			second.GetTotalSize(), len(second.GetAgents()), second.GetAgents()[0].GetKpis().GetAssigned())
	}
	req.PageToken = ""
	fresh, err := c.ListAgentKpis(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if proto.Equal(fresh.GetWindow(), first.GetWindow()) {
		t.Errorf("a new listing kept the old window %v", fresh.GetWindow())
	}
}

func TestPageTokenRejected(t *testing.T) {
	rdb := testenv.Redis(t)
	listFixture(t, rdb)
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()
	base := &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: rolling("24h", ""), OrderBy: "assigned desc", PageSize: 10}
	first, err := c.ListAgentKpis(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	tok := first.GetNextPageToken()
	if tok == "" {
		t.Fatal("no next page token")
	}
	fp := fingerprint(tenant, string(bucket.Agent)+":", order{name: "assigned", desc: true}, base.GetWindow())
	rw, err := window.Resolve(base.GetWindow(), t0)
	if err != nil {
		t.Fatal(err)
	}
	forged := func(p pageToken) string { p.Fingerprint = fp; return encodeToken(p) }
	with := func(f func(r *ticketpulsev1.ListAgentKpisRequest)) *ticketpulsev1.ListAgentKpisRequest {
		r := proto.Clone(base).(*ticketpulsev1.ListAgentKpisRequest)
		r.PageToken = tok
		f(r)
		return r
	}
	tests := []struct {
		name string
		req  *ticketpulsev1.ListAgentKpisRequest
	}{
		{name: "other tenant", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) { r.Tenant = "globex" })},
		{name: "other team", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) { r.TeamId = "t0" })},
		{name: "other order", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) { r.OrderBy = "assigned" })},
		{name: "other window", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) { r.Window = rolling("7d", "") })},
		{name: "other zone", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) { r.Window = rolling("24h", "Europe/Berlin") })},
		{name: "truncated", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) { r.PageToken = tok[:len(tok)/2] })},
		{name: "not base64", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) { r.PageToken = "%%%" })},
		{name: "base64 of garbage", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) {
			r.PageToken = base64.RawURLEncoding.EncodeToString([]byte("{not json"))
		})},
		{name: "too long", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) { r.PageToken = strings.Repeat("A", maxTokenLen+1) })},
		{name: "negative offset", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) {
			r.PageToken = forged(pageToken{Offset: -5, FromHour: rw.FromHour, ToHour: rw.ToHour})
		})},
		{name: "empty window", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) {
			r.PageToken = forged(pageToken{Offset: 10, FromHour: rw.ToHour, ToHour: rw.ToHour})
		})},
		{name: "window too long", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) {
			r.PageToken = forged(pageToken{Offset: 10, FromHour: rw.ToHour - window.MaxHours - 1, ToHour: rw.ToHour})
		})},
		{name: "window beyond year 9999", req: with(func(r *ticketpulsev1.ListAgentKpisRequest) {
			r.PageToken = forged(pageToken{Offset: 10, FromHour: window.MaxHour, ToHour: window.MaxHour + 5})
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ListAgentKpis(ctx, tt.req)
			if got := badRequest(t, err); !slices.Equal(got, []string{"page_token"}) {
				t.Errorf("violations %q, want page_token", got)
			}
		})
	}
	t.Run("other page size is fine", func(t *testing.T) {
		resp, err := c.ListAgentKpis(ctx, with(func(r *ticketpulsev1.ListAgentKpisRequest) { r.PageSize = 25 }))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetAgents()) != 25 || resp.GetAgents()[0].GetAgentId() == first.GetAgents()[0].GetAgentId() {
			t.Errorf("page of %d starting at %q", len(resp.GetAgents()), resp.GetAgents()[0].GetAgentId())
		}
	})
	t.Run("offset past the end is an empty last page", func(t *testing.T) {
		resp, err := c.ListAgentKpis(ctx, with(func(r *ticketpulsev1.ListAgentKpisRequest) {
			r.PageToken = forged(pageToken{Offset: 10_000, FromHour: rw.FromHour, ToHour: rw.ToHour})
		}))
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetAgents()) != 0 || resp.GetNextPageToken() != "" || resp.GetTotalSize() != listAgents {
			t.Errorf("got %d agents, next %q, total %d", len(resp.GetAgents()), resp.GetNextPageToken(), resp.GetTotalSize())
		}
	})
}

func TestListEmptyTenant(t *testing.T) {
	c := serve(t, query.NewReader(testenv.Redis(t)), func() time.Time { return t0 })
	resp, err := c.ListAgentKpis(context.Background(), &ticketpulsev1.ListAgentKpisRequest{Tenant: "nobody", Window: rolling("30d", ""), OrderBy: "csat_mean desc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetAgents()) != 0 || resp.GetTotalSize() != 0 || resp.GetNextPageToken() != "" || resp.GetWindow() == nil {
		t.Errorf("got %v", resp)
	}
}

// Teams are listed like agents: every team active in the window, ordered, paginated, with the
// figures GetTeamKpis gives, and a page token of one listing is refused by the other.
func TestListTeamKpis(t *testing.T) {
	rdb := testenv.Redis(t)
	b := querytest.NewBuilder(tenant)
	hour := window.HourOf(t0) - 2
	const teams = 130
	teamID := func(i int) string { return fmt.Sprintf("team %03d · %s", i, []string{"EU", "US"}[i%2]) }
	for i := range teams {
		b.Index("", teamID(i), hour)
		b.Add(bucket.Scope{Kind: bucket.Team, ID: teamID(i)}, hour, bucket.Resolutions.Field(), int64(1+i%9))
	}
	b.Index("", "idle team", hour-24*40) // active only before the window
	if _, err := b.Flush(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()

	var got []*ticketpulsev1.TeamKpis
	token := ""
	for page := 0; ; page++ {
		resp, err := c.ListTeamKpis(ctx, &ticketpulsev1.ListTeamKpisRequest{Tenant: tenant, Window: rolling("30d", ""),
			OrderBy: "resolutions desc", PageSize: 50, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetTotalSize() != teams {
			t.Fatalf("total_size %d, want %d", resp.GetTotalSize(), teams)
		}
		got = append(got, resp.GetTeams()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(got) != teams {
		t.Fatalf("listed %d teams, want %d", len(got), teams)
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		ra, rb := a.GetKpis().GetResolutions(), b.GetKpis().GetResolutions()
		if ra < rb || (ra == rb && a.GetTeamId() >= b.GetTeamId()) {
			t.Fatalf("%q (%d) listed before %q (%d)", a.GetTeamId(), ra, b.GetTeamId(), rb)
		}
	}
	one, err := c.GetTeamKpis(ctx, &ticketpulsev1.GetTeamKpisRequest{Tenant: tenant, TeamId: got[0].GetTeamId(), Window: rolling("30d", "")})
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(one.GetKpis(), got[0].GetKpis()) {
		t.Fatalf("listed %v, GetTeamKpis says %v", got[0].GetKpis(), one.GetKpis())
	}

	first, err := c.ListTeamKpis(ctx, &ticketpulsev1.ListTeamKpisRequest{Tenant: tenant, Window: rolling("30d", ""), PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetTeams()[0].GetTeamId() != teamID(0) {
		t.Errorf("default order starts with %q, want team_id order", first.GetTeams()[0].GetTeamId())
	}
	_, err = c.ListAgentKpis(ctx, &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: rolling("30d", ""), PageSize: 10, PageToken: first.GetNextPageToken()})
	if fields := badRequest(t, err); !slices.Contains(fields, "page_token") {
		t.Errorf("a team listing's token used for agents: fields %v, want page_token", fields)
	}
	_, err = c.ListTeamKpis(ctx, &ticketpulsev1.ListTeamKpisRequest{Tenant: tenant, Window: rolling("30d", ""), OrderBy: "agent_id"})
	if fields := badRequest(t, err); !slices.Contains(fields, "order_by") {
		t.Errorf("order_by agent_id for teams: fields %v, want order_by", fields)
	}
}

// Queues are listed like teams: every queue with calls in the window (ids that need escaping
// included), ordered by a call figure, paginated, with the figures GetQueueKpis gives; a team
// listing's page token is refused by the queue listing and the other way round.
func TestListQueueKpis(t *testing.T) {
	rdb := testenv.Redis(t)
	b := querytest.NewBuilder(tenant)
	hour := window.HourOf(t0) - 2
	const queues = 130
	queueID := func(i int) string { return fmt.Sprintf("queue %03d: {%s}", i, []string{"EU", "ünï"}[i%2]) }
	for i := range queues {
		s := bucket.Scope{Kind: bucket.Queue, ID: queueID(i)}
		b.IndexQueue(queueID(i), hour)
		b.Add(s, hour, bucket.CallsOffered.Field(), 10)
		b.Add(s, hour, bucket.CallsAbandoned.Field(), int64(i%7))
	}
	b.IndexQueue("idle queue", hour-24*40) // calls only before the window
	b.Index("", "a team", hour)            // teams are not queues
	if _, err := b.Flush(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()

	var got []*ticketpulsev1.QueueKpis
	token := ""
	for page := 0; ; page++ {
		resp, err := c.ListQueueKpis(ctx, &ticketpulsev1.ListQueueKpisRequest{Tenant: tenant, Window: rolling("30d", ""),
			OrderBy: "call_abandon_rate desc", PageSize: 50, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetTotalSize() != queues {
			t.Fatalf("total_size %d, want %d", resp.GetTotalSize(), queues)
		}
		got = append(got, resp.GetQueues()...)
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if page > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(got) != queues {
		t.Fatalf("listed %d queues, want %d", len(got), queues)
	}
	for i := 1; i < len(got); i++ {
		a, b := got[i-1], got[i]
		ra, rb := a.GetKpis().GetCallAbandonRate(), b.GetKpis().GetCallAbandonRate()
		if ra < rb || (ra == rb && a.GetQueueId() >= b.GetQueueId()) {
			t.Fatalf("%q (%v) listed before %q (%v)", a.GetQueueId(), ra, b.GetQueueId(), rb)
		}
	}
	for _, q := range []*ticketpulsev1.QueueKpis{got[0], got[len(got)-1]} {
		one, err := c.GetQueueKpis(ctx, &ticketpulsev1.GetQueueKpisRequest{Tenant: tenant, QueueId: q.GetQueueId(), Window: rolling("30d", "")})
		if err != nil {
			t.Fatal(err)
		}
		if one.GetQueueId() != q.GetQueueId() || !proto.Equal(one.GetKpis(), q.GetKpis()) || one.GetKpis().GetCallsOffered() != 10 {
			t.Fatalf("listed %q %v, GetQueueKpis says %q %v", q.GetQueueId(), q.GetKpis(), one.GetQueueId(), one.GetKpis())
		}
	}

	first, err := c.ListQueueKpis(ctx, &ticketpulsev1.ListQueueKpisRequest{Tenant: tenant, Window: rolling("30d", ""), PageSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetQueues()[0].GetQueueId() != queueID(0) {
		t.Errorf("default order starts with %q, want queue_id order", first.GetQueues()[0].GetQueueId())
	}
	_, err = c.ListTeamKpis(ctx, &ticketpulsev1.ListTeamKpisRequest{Tenant: tenant, Window: rolling("30d", ""), PageSize: 10, PageToken: first.GetNextPageToken()})
	if fields := badRequest(t, err); !slices.Contains(fields, "page_token") {
		t.Errorf("a queue listing's token used for teams: fields %v, want page_token", fields)
	}
	teams, err := c.ListTeamKpis(ctx, &ticketpulsev1.ListTeamKpisRequest{Tenant: tenant, Window: rolling("30d", "")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListQueueKpis(ctx, &ticketpulsev1.ListQueueKpisRequest{Tenant: tenant, Window: rolling("30d", ""), PageToken: encodeToken(pageToken{
		Offset: 1, Fingerprint: fingerprint(tenant, string(bucket.Team)+":", order{name: "team_id"}, rolling("30d", ""))})})
	if fields := badRequest(t, err); !slices.Contains(fields, "page_token") {
		t.Errorf("a team listing's token used for queues: fields %v, want page_token", fields)
	}
	if len(teams.GetTeams()) != 1 {
		t.Errorf("teams %v, want only the one team: queues are not teams", teams.GetTeams())
	}
}
