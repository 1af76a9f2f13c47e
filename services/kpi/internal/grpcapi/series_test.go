package grpcapi

import (
	"context"
	"fmt"
	"math/rand/v2"
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

// seriesIDs are the agents and teams of the series fixtures: ids as helpdesks send them.
var seriesIDs = []string{ana, "bo", "<script>alert(1)</script>", "=1+2, \"quoted\"\nnew line", "a/b c"}

// seriesFigures writes random figures for every id (as agent and as team) and the unassigned
// figures at random hours between from and to, and indexes them, so every period boundary of
// the tests has figures on both sides.
func seriesFigures(t testing.TB, rdb redis.UniversalClient, from, to time.Time) {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	b := querytest.NewBuilder(tenant)
	scopes := []bucket.Scope{{Kind: bucket.Unassigned}}
	for _, id := range seriesIDs {
		scopes = append(scopes, bucket.Scope{Kind: bucket.Agent, ID: id}, bucket.Scope{Kind: bucket.Team, ID: id})
	}
	for h := window.HourOf(from); h < window.HourOf(to); h++ {
		for _, s := range scopes {
			if rng.IntN(4) != 0 {
				continue
			}
			secs := int64(30 + rng.IntN(20_000))
			score := int64(1 + rng.IntN(5))
			figs := []struct {
				field string
				delta int64
			}{
				{bucket.Assigned.Field(), int64(1 + rng.IntN(3))},
				{bucket.AssignedNowResolved.Field(), int64(rng.IntN(2))},
				{bucket.FirstCount.Field(), 1},
				{bucket.FirstSumMillis.Field(), secs * 1000},
				{bucket.BinField(bucket.FirstResponse, hist.Bin(float64(secs))), 1},
				{bucket.Resolutions.Field(), int64(rng.IntN(2))},
				{bucket.Solves.Field(), 1},
				{bucket.Reopens.Field(), int64(rng.IntN(2))},
				{bucket.CSATCount.Field(), 1},
				{bucket.CSATScoreSum.Field(), score},
				{bucket.SLAMet.Field(), int64(rng.IntN(2))},
				{bucket.SLABreached.Field(), int64(rng.IntN(2))},
			}
			for _, f := range figs {
				if f.delta == 0 {
					continue
				}
				b.Add(s, h, f.field, f.delta)
			}
			switch s.Kind {
			case bucket.Agent:
				b.Index(s.ID, "", h)
			case bucket.Team:
				b.Index("", s.ID, h)
			}
		}
	}
	if _, err := b.Flush(context.Background(), rdb); err != nil {
		t.Fatal(err)
	}
}

func zoned(from, to, zone string) *ticketpulsev1.Window {
	w := between(from, to)
	w.TimeZone = zone
	return w
}

// Every point of a series equals what GetAgentKpis (GetTeamKpis, GetUnassignedKpis) answers for
// that point's range, at every granularity, over a DST change in Berlin, month boundaries and a
// zone with a :45 offset; and the periods start where the zone's calendar says.
func TestListKpiSeriesMatchesGet(t *testing.T) {
	rdb := testenv.Redis(t)
	seriesFigures(t, rdb, mustTime("2026-03-20T00:00:00Z"), mustTime("2026-05-06T00:00:00Z"))
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()
	// From local midnight March 23 (a Monday) to local midnight May 4 in Berlin: DST starts on
	// March 29 (a 23-hour day).
	berlin := zoned("2026-03-22T23:00:00Z", "2026-05-03T22:00:00Z", "Europe/Berlin")
	tests := []struct {
		name        string
		scope       ticketpulsev1.ScopeKind
		ids         []string
		window      *ticketpulsev1.Window
		gran        ticketpulsev1.Granularity
		wantPoints  int
		wantHours   map[int]int64 // hours of some points, by index
		wantAligned bool
	}{
		{name: "agents hourly over the DST change", scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, ids: seriesIDs,
			window: zoned("2026-03-28T20:00:00Z", "2026-03-30T02:00:00Z", "Europe/Berlin"), gran: ticketpulsev1.Granularity_GRANULARITY_HOUR, wantPoints: 30},
		{name: "agents daily in Berlin", scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, window: berlin, gran: ticketpulsev1.Granularity_GRANULARITY_DAY,
			wantPoints: 42, wantHours: map[int]int64{0: 24, 6: 23, 7: 24}},
		{name: "teams weekly in Berlin", scope: ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM, window: berlin, gran: ticketpulsev1.Granularity_GRANULARITY_WEEK,
			wantPoints: 6, wantHours: map[int]int64{0: 167, 1: 168}},
		{name: "agents monthly in Berlin, clipped at both ends", scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, ids: []string{"bo", ana}, window: berlin,
			gran: ticketpulsev1.Granularity_GRANULARITY_MONTH, wantPoints: 3, wantHours: map[int]int64{0: 9*24 - 1, 1: 30 * 24, 2: 3 * 24}},
		{name: "unassigned daily over a month boundary in UTC", scope: ticketpulsev1.ScopeKind_SCOPE_KIND_UNASSIGNED,
			window: zoned("2026-03-30T06:00:00Z", "2026-04-02T00:00:00Z", ""), gran: ticketpulsev1.Granularity_GRANULARITY_DAY,
			wantPoints: 3, wantHours: map[int]int64{0: 18, 1: 24, 2: 24}},
		{name: "teams monthly in UTC", scope: ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM, ids: []string{seriesIDs[3]},
			window: zoned("2026-03-01T00:00:00Z", "2026-06-01T00:00:00Z", ""), gran: ticketpulsev1.Granularity_GRANULARITY_MONTH,
			wantPoints: 3, wantHours: map[int]int64{0: 31*24 - 0, 1: 30 * 24, 2: 31 * 24}},
		{name: "agents daily in Kathmandu (+05:45)", scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, ids: []string{ana},
			window: zoned("2026-03-31T18:15:00Z", "2026-04-05T18:00:00Z", "Asia/Kathmandu"), gran: ticketpulsev1.Granularity_GRANULARITY_DAY,
			wantPoints: 5, wantHours: map[int]int64{0: 24, 4: 24}, wantAligned: true},
		{name: "agents weekly in St. John's (-02:30 in summer)", scope: ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, ids: []string{"bo"},
			window: zoned("2026-03-30T02:30:00Z", "2026-04-20T02:00:00Z", "America/St_Johns"), gran: ticketpulsev1.Granularity_GRANULARITY_WEEK,
			wantPoints: 3, wantAligned: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var series []*ticketpulsev1.KpiSeries
			var rw *ticketpulsev1.ResolvedWindow
			tok := ""
			for pages := 0; ; pages++ {
				resp, err := c.ListKpiSeries(ctx, &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: tt.scope, Ids: tt.ids,
					Window: tt.window, Granularity: tt.gran, PageSize: 2, PageToken: tok})
				if err != nil {
					t.Fatal(err)
				}
				if resp.GetGranularity() != tt.gran {
					t.Errorf("granularity %s, want %s", resp.GetGranularity(), tt.gran)
				}
				if rw != nil && !proto.Equal(rw, resp.GetWindow()) {
					t.Errorf("page %d window %v, first page %v", pages, resp.GetWindow(), rw)
				}
				rw = resp.GetWindow()
				series = append(series, resp.GetSeries()...)
				if tok = resp.GetNextPageToken(); tok == "" {
					break
				}
			}
			if rw.GetAlignedToHour() != tt.wantAligned || (rw.GetNote() != "") != tt.wantAligned {
				t.Errorf("aligned %v note %q, want aligned %v", rw.GetAlignedToHour(), rw.GetNote(), tt.wantAligned)
			}
			var wantIDs []string
			switch {
			case tt.scope == ticketpulsev1.ScopeKind_SCOPE_KIND_UNASSIGNED:
				wantIDs = []string{""}
			case tt.ids != nil:
				wantIDs = tt.ids
			default:
				wantIDs = slices.Sorted(slices.Values(seriesIDs))
			}
			var gotIDs []string
			for _, s := range series {
				gotIDs = append(gotIDs, s.GetScopeId())
			}
			if !slices.Equal(gotIDs, wantIDs) {
				t.Fatalf("series %q, want %q", gotIDs, wantIDs)
			}
			nonzero := 0
			for _, s := range series {
				pts := s.GetPoints()
				if len(pts) != tt.wantPoints {
					t.Fatalf("%q: %d points, want %d", s.GetScopeId(), len(pts), tt.wantPoints)
				}
				if !pts[0].GetFrom().AsTime().Equal(rw.GetFrom().AsTime()) || !pts[len(pts)-1].GetTo().AsTime().Equal(rw.GetTo().AsTime()) {
					t.Errorf("points span [%s, %s), window [%s, %s)", pts[0].GetFrom().AsTime(), pts[len(pts)-1].GetTo().AsTime(), rw.GetFrom().AsTime(), rw.GetTo().AsTime())
				}
				for i, p := range pts {
					if i > 0 && !p.GetFrom().AsTime().Equal(pts[i-1].GetTo().AsTime()) {
						t.Errorf("point %d starts at %s, the one before ends at %s", i, p.GetFrom().AsTime(), pts[i-1].GetTo().AsTime())
					}
					if h, ok := tt.wantHours[i]; ok {
						if got := int64(p.GetTo().AsTime().Sub(p.GetFrom().AsTime()) / time.Hour); got != h {
							t.Errorf("point %d [%s, %s) has %d hours, want %d", i, p.GetFrom().AsTime(), p.GetTo().AsTime(), got, h)
						}
					}
					want := getKpis(t, c, tt.scope, s.GetScopeId(), between(p.GetFrom().AsTime().Format(time.RFC3339), p.GetTo().AsTime().Format(time.RFC3339)))
					if !proto.Equal(p.GetKpis(), want) {
						t.Fatalf("%q point %d [%s, %s):\n %v\nGet*Kpis answers\n %v", s.GetScopeId(), i, p.GetFrom().AsTime(), p.GetTo().AsTime(), p.GetKpis(), want)
					}
					if p.GetKpis().GetAssigned() > 0 {
						nonzero++
					}
				}
			}
			if nonzero == 0 {
				t.Fatal("every point is zero: the fixture does not reach the window")
			}
		})
	}
}

// getKpis answers one scope over w with the single-window RPCs.
func getKpis(t *testing.T, c ticketpulsev1.KpiServiceClient, scope ticketpulsev1.ScopeKind, id string, w *ticketpulsev1.Window) *ticketpulsev1.Kpis {
	t.Helper()
	ctx := context.Background()
	var k *ticketpulsev1.Kpis
	var err error
	switch scope {
	case ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT:
		var r *ticketpulsev1.GetAgentKpisResponse
		r, err = c.GetAgentKpis(ctx, &ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: id, Window: w})
		k = r.GetAgent().GetKpis()
	case ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM:
		var r *ticketpulsev1.GetTeamKpisResponse
		r, err = c.GetTeamKpis(ctx, &ticketpulsev1.GetTeamKpisRequest{Tenant: tenant, TeamId: id, Window: w})
		k = r.GetKpis()
	default:
		var r *ticketpulsev1.GetUnassignedKpisResponse
		r, err = c.GetUnassignedKpis(ctx, &ticketpulsev1.GetUnassignedKpisRequest{Tenant: tenant, Window: w})
		k = r.GetKpis()
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestListKpiSeriesInvalidArgument(t *testing.T) {
	rdb := testenv.Redis(t)
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()
	agents, day := ticketpulsev1.ScopeKind_SCOPE_KIND_AGENT, ticketpulsev1.Granularity_GRANULARITY_DAY
	month := rolling("30d", "Europe/Berlin")
	many := make([]string, MaxSeriesIDs+1)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	tests := []struct {
		name       string
		give       *ticketpulsev1.ListKpiSeriesRequest
		wantFields []string
		wantText   string
	}{
		{name: "bad tenant", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: "A/B", Scope: agents, Window: month, Granularity: day}, wantFields: []string{"tenant"}},
		{name: "no scope", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Window: month, Granularity: day}, wantFields: []string{"scope"}},
		{name: "unknown scope", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: 9, Window: month, Granularity: day}, wantFields: []string{"scope"}},
		{name: "no granularity", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month}, wantFields: []string{"granularity"}},
		{name: "no window", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Granularity: day}, wantFields: []string{"window"}},
		{name: "unknown zone", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: rolling("7d", "Mars/Olympus"), Granularity: day}, wantFields: []string{"window.time_zone"}},
		{name: "too many ids", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Ids: many, Window: month, Granularity: day}, wantFields: []string{"ids"}},
		{name: "empty id", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Ids: []string{"a", ""}, Window: month, Granularity: day}, wantFields: []string{"ids[1]"}},
		{name: "repeated id", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Ids: []string{"a", "b", "a"}, Window: month, Granularity: day}, wantFields: []string{"ids[2]"}},
		{name: "id too long", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Ids: []string{strings.Repeat("é", 129)}, Window: month, Granularity: day}, wantFields: []string{"ids[0]"}},
		{name: "ids for unassigned", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: ticketpulsev1.ScopeKind_SCOPE_KIND_UNASSIGNED, Ids: []string{"a"}, Window: month, Granularity: day}, wantFields: []string{"ids"}},
		{name: "team_id for teams", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM, TeamId: "t", Window: month, Granularity: day}, wantFields: []string{"team_id"}},
		{name: "team_id for queues", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: ticketpulsev1.ScopeKind_SCOPE_KIND_QUEUE, TeamId: "t", Window: month, Granularity: day}, wantFields: []string{"team_id"}},
		{name: "team_id with ids", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, TeamId: "t", Ids: []string{"a"}, Window: month, Granularity: day}, wantFields: []string{"team_id"}},
		{name: "negative page size", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, PageSize: -1}, wantFields: []string{"page_size"}},
		{name: "page size over 1000", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, PageSize: 1001}, wantFields: []string{"page_size"}},
		{name: "page over 100,000 points", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: rolling("365d", ""), Granularity: ticketpulsev1.Granularity_GRANULARITY_HOUR, PageSize: 12},
			wantFields: []string{"page_size"}, wantText: "at most 11 series fit a page"},
		{name: "default page over 100,000 points", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: rolling("90d", ""), Granularity: ticketpulsev1.Granularity_GRANULARITY_HOUR},
			wantFields: []string{"page_size"}, wantText: "at most 46 series fit a page"},
		{name: "forged token", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, PageToken: "bm90IGEgdG9rZW4"}, wantFields: []string{"page_token"}},
		{name: "unknown kpi", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, Kpis: []string{"first_response", "csat"}},
			wantFields: []string{"kpis[1]"}, wantText: `"csat" is not a field of Kpis`},
		{name: "kpi by its JSON name", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, Kpis: []string{"firstResponse"}},
			wantFields: []string{"kpis[0]"}, wantText: `"firstResponse"`},
		{name: "kpi below the top level", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, Kpis: []string{"first_response.p90_seconds"}},
			wantFields: []string{"kpis[0]"}, wantText: `"first_response.p90_seconds"`},
		{name: "empty kpi", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, Kpis: []string{"assigned", ""}},
			wantFields: []string{"kpis[1]"}, wantText: `"" is not a field`},
		{name: "long kpi shown cut", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, Kpis: []string{strings.Repeat("é", 1000)}},
			wantFields: []string{"kpis[0]"}, wantText: strings.Repeat("é", 32) + "…"},
		{name: "repeated kpi", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, Kpis: []string{"qa_score", "assigned", "qa_score"}},
			wantFields: []string{"kpis[2]"}, wantText: `"qa_score" repeats kpis[0]`},
		{name: "too many kpis", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: agents, Window: month, Granularity: day, Kpis: kpiNames[:MaxSeriesKpis+1]},
			wantFields: []string{"kpis"}, wantText: "17 names, at most 16"},
		{name: "every bad field at once", give: &ticketpulsev1.ListKpiSeriesRequest{Tenant: "", Ids: []string{""}, PageSize: -5, Kpis: []string{"p90"}},
			wantFields: []string{"tenant", "window", "scope", "granularity", "ids[0]", "kpis[0]", "page_size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ListKpiSeries(ctx, tt.give)
			fields := badRequest(t, err)
			if !slices.Equal(fields, tt.wantFields) {
				t.Errorf("fields %q, want %q (%v)", fields, tt.wantFields, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not say %q", err, tt.wantText)
			}
		})
	}
}

// A page token only continues the request it was issued for; the page size may change.
func TestListKpiSeriesPageToken(t *testing.T) {
	rdb := testenv.Redis(t)
	seriesFigures(t, rdb, mustTime("2026-11-20T00:00:00Z"), mustTime("2026-11-24T00:00:00Z"))
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()
	req := &ticketpulsev1.ListKpiSeriesRequest{Tenant: tenant, Scope: ticketpulsev1.ScopeKind_SCOPE_KIND_TEAM,
		Window: rolling("7d", "Europe/Berlin"), Granularity: ticketpulsev1.Granularity_GRANULARITY_DAY, PageSize: 2}
	first, err := c.ListKpiSeries(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.GetSeries()) != 2 || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %d series, next %q", len(first.GetSeries()), first.GetNextPageToken())
	}
	other := proto.CloneOf(req)
	other.Granularity, other.PageToken = ticketpulsev1.Granularity_GRANULARITY_HOUR, first.GetNextPageToken()
	_, err = c.ListKpiSeries(ctx, other)
	if fields := badRequest(t, err); !slices.Equal(fields, []string{"page_token"}) {
		t.Errorf("token of a daily series used for an hourly one: fields %q", fields)
	}
	rest := proto.CloneOf(req)
	rest.PageSize, rest.PageToken = 10, first.GetNextPageToken()
	second, err := c.ListKpiSeries(ctx, rest)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(first.GetSeries()) + len(second.GetSeries()); got != len(seriesIDs) || second.GetNextPageToken() != "" {
		t.Errorf("pages hold %d series (next %q), want %d", got, second.GetNextPageToken(), len(seriesIDs))
	}
}
