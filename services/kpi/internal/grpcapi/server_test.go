package grpcapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/hist"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query/querytest"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	querytest.StopLoaded()
	os.Exit(code)
}

const tenant = "acme"

var t0 = mustTime("2026-11-24T14:20:00Z")

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// clock is a settable time source for the server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// serve runs the service on a real loopback listener and returns a real client of it.
func serve(t testing.TB, r Reader, now func() time.Time) ticketpulsev1.KpiServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	NewServer(r, now, slog.New(slog.DiscardHandler)).Register(gs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		<-done
	})
	return ticketpulsev1.NewKpiServiceClient(conn)
}

func rolling(name, zone string) *ticketpulsev1.Window {
	return &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: name}, TimeZone: zone}
}

func between(from, to string) *ticketpulsev1.Window {
	return &ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{
		From: timestamppb.New(mustTime(from)), To: timestamppb.New(mustTime(to)),
	}}}
}

var (
	ana  = "ana.{x}@例え.jp"
	team = "billing: EU"
)

// figures writes a small known data set: two hours ago and three days ago, for ana, bo, the
// team and the unassigned figures.
func figures(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	recent, older := window.HourOf(t0)-2, window.HourOf(t0)-72
	type fig struct {
		s     bucket.Scope
		hour  int64
		field string
		delta int64
	}
	agent := bucket.Scope{Kind: bucket.Agent, ID: ana}
	figs := []fig{
		{agent, recent, bucket.Assigned.Field(), 2},
		{agent, recent, bucket.AssignedNowResolved.Field(), 1},
		{agent, recent, bucket.FirstCount.Field(), 3},
		{agent, recent, bucket.FirstSumMillis.Field(), 780_000},
		{agent, recent, bucket.BinField(bucket.FirstResponse, hist.Bin(60)), 1},
		{agent, recent, bucket.BinField(bucket.FirstResponse, hist.Bin(120)), 1},
		{agent, recent, bucket.BinField(bucket.FirstResponse, hist.Bin(600)), 1},
		{agent, older, bucket.Resolutions.Field(), 4},
		{agent, older, bucket.Reopens.Field(), 1},
		{agent, older, bucket.Solves.Field(), 5}, // the reopened resolution and the four that hold
		{bucket.Scope{Kind: bucket.Agent, ID: "bo"}, recent, bucket.Assigned.Field(), 7},
		{bucket.Scope{Kind: bucket.Team, ID: team}, recent, bucket.Assigned.Field(), 9},
		{bucket.Scope{Kind: bucket.Team, ID: team}, older, bucket.CSATCount.Field(), 2},
		{bucket.Scope{Kind: bucket.Team, ID: team}, older, bucket.CSATScoreSum.Field(), 9},
		{bucket.Scope{Kind: bucket.Unassigned}, older, bucket.SLABreached.Field(), 5},
	}
	for _, f := range figs {
		if err := querytest.Incr(ctx, rdb, tenant, f.s, f.hour, f.field, f.delta); err != nil {
			t.Fatal(err)
		}
	}
}

func zeroKpis() *ticketpulsev1.Kpis {
	return query.ToProto(bucket.NewTotals())
}

func TestGetKpis(t *testing.T) {
	rdb := testenv.Redis(t)
	figures(t, rdb)
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()
	agent := func(id string, w *ticketpulsev1.Window) func() (*ticketpulsev1.Kpis, *ticketpulsev1.ResolvedWindow, error) {
		return func() (*ticketpulsev1.Kpis, *ticketpulsev1.ResolvedWindow, error) {
			resp, err := c.GetAgentKpis(ctx, &ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: id, Window: w})
			if err == nil && resp.GetAgent().GetAgentId() != id {
				return nil, nil, fmt.Errorf("answer for agent %q, asked for %q", resp.GetAgent().GetAgentId(), id)
			}
			return resp.GetAgent().GetKpis(), resp.GetWindow(), err
		}
	}
	teamKpis := func(id string, w *ticketpulsev1.Window) func() (*ticketpulsev1.Kpis, *ticketpulsev1.ResolvedWindow, error) {
		return func() (*ticketpulsev1.Kpis, *ticketpulsev1.ResolvedWindow, error) {
			resp, err := c.GetTeamKpis(ctx, &ticketpulsev1.GetTeamKpisRequest{Tenant: tenant, TeamId: id, Window: w})
			if err == nil && resp.GetTeamId() != id {
				return nil, nil, fmt.Errorf("answer for team %q, asked for %q", resp.GetTeamId(), id)
			}
			return resp.GetKpis(), resp.GetWindow(), err
		}
	}
	unassigned := func(w *ticketpulsev1.Window) func() (*ticketpulsev1.Kpis, *ticketpulsev1.ResolvedWindow, error) {
		return func() (*ticketpulsev1.Kpis, *ticketpulsev1.ResolvedWindow, error) {
			resp, err := c.GetUnassignedKpis(ctx, &ticketpulsev1.GetUnassignedKpisRequest{Tenant: tenant, Window: w})
			return resp.GetKpis(), resp.GetWindow(), err
		}
	}
	with := func(f func(k *ticketpulsev1.Kpis)) *ticketpulsev1.Kpis {
		k := zeroKpis()
		f(k)
		return k
	}
	recent := with(func(k *ticketpulsev1.Kpis) {
		k.Assigned, k.AssignedNowResolved, k.ResolutionRate = 2, 1, 0.5
		k.FirstResponse = &ticketpulsev1.DurationStats{Count: 3, SumSeconds: 780, MeanSeconds: 260,
			P50Seconds: hist.Value(hist.Bin(120)), P90Seconds: hist.Value(hist.Bin(600)), P99Seconds: hist.Value(hist.Bin(600))}
	})
	week := with(func(k *ticketpulsev1.Kpis) {
		proto.Merge(k, recent)
		k.Resolutions, k.Reopens, k.Solves, k.ReopenRate = 4, 1, 5, 0.2
	})
	tests := []struct {
		name        string
		call        func() (*ticketpulsev1.Kpis, *ticketpulsev1.ResolvedWindow, error)
		want        *ticketpulsev1.Kpis
		wantFrom    string
		wantTo      string
		wantAligned bool
	}{
		{name: "agent 24h", call: agent(ana, rolling("24h", "")), want: recent,
			wantFrom: "2026-11-23T14:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
		{name: "agent 7d", call: agent(ana, rolling("7d", "")), want: week,
			wantFrom: "2026-11-18T00:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
		{name: "agent 7d in Kathmandu", call: agent(ana, rolling("7d", "Asia/Kathmandu")), want: week,
			wantFrom: "2026-11-17T18:00:00Z", wantTo: "2026-11-24T15:00:00Z", wantAligned: true},
		{name: "agent range widened to hours", call: agent(ana, between("2026-11-24T12:30:00Z", "2026-11-24T12:45:00Z")), want: recent,
			wantFrom: "2026-11-24T12:00:00Z", wantTo: "2026-11-24T13:00:00Z", wantAligned: true},
		{name: "other agent", call: agent("bo", rolling("1h", "")), want: with(func(k *ticketpulsev1.Kpis) {}),
			wantFrom: "2026-11-24T13:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
		{name: "other agent earlier", call: agent("bo", rolling("24h", "")), want: with(func(k *ticketpulsev1.Kpis) { k.Assigned = 7 }),
			wantFrom: "2026-11-23T14:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
		{name: "unknown agent gets zeros", call: agent("nobody@example.com", rolling("30d", "")), want: zeroKpis(),
			wantFrom: "2026-10-26T00:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
		{name: "agent id of 256 bytes", call: agent(strings.Repeat("é", 128), rolling("1h", "")), want: zeroKpis(),
			wantFrom: "2026-11-24T13:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
		{name: "team 7d", call: teamKpis(team, rolling("7d", "Europe/Berlin")),
			want:     with(func(k *ticketpulsev1.Kpis) { k.Assigned, k.CsatCount, k.CsatMean = 9, 2, 4.5 }),
			wantFrom: "2026-11-17T23:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
		{name: "unknown team gets zeros", call: teamKpis("nope", rolling("7d", "")), want: zeroKpis(),
			wantFrom: "2026-11-18T00:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
		{name: "unassigned 30d", call: unassigned(rolling("30d", "")), want: with(func(k *ticketpulsev1.Kpis) { k.SlaFirstResponseBreached = 5 }),
			wantFrom: "2026-10-26T00:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
		{name: "unassigned 24h", call: unassigned(rolling("24h", "")), want: zeroKpis(),
			wantFrom: "2026-11-23T14:00:00Z", wantTo: "2026-11-24T15:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, w, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(k, tt.want) {
				t.Errorf("kpis =\n %v\nwant\n %v", k, tt.want)
			}
			if !w.GetFrom().AsTime().Equal(mustTime(tt.wantFrom)) || !w.GetTo().AsTime().Equal(mustTime(tt.wantTo)) {
				t.Errorf("window [%s, %s), want [%s, %s)", w.GetFrom().AsTime().Format(time.RFC3339), w.GetTo().AsTime().Format(time.RFC3339), tt.wantFrom, tt.wantTo)
			}
			if w.GetAlignedToHour() != tt.wantAligned || (w.GetNote() != "") != tt.wantAligned {
				t.Errorf("aligned %v note %q, want aligned %v", w.GetAlignedToHour(), w.GetNote(), tt.wantAligned)
			}
		})
	}
}

// badRequest checks that err is InvalidArgument naming each field in its message and in a
// BadRequest detail, and returns the detail's fields.
func badRequest(t *testing.T, err error) []string {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		t.Fatalf("err = %v, want InvalidArgument", err)
	}
	var fields []string
	for _, d := range st.Details() {
		br, ok := d.(*errdetails.BadRequest)
		if !ok {
			continue
		}
		for _, fv := range br.GetFieldViolations() {
			fields = append(fields, fv.GetField())
			if fv.GetDescription() == "" {
				t.Errorf("violation of %s has no description", fv.GetField())
			}
			if !strings.Contains(st.Message(), fv.GetField()+": ") {
				t.Errorf("message %q does not name %s", st.Message(), fv.GetField())
			}
		}
	}
	if len(fields) == 0 {
		t.Fatalf("no BadRequest field violations in %v", st.Details())
	}
	return fields
}

func TestInvalidArgument(t *testing.T) {
	rdb := testenv.Redis(t)
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()
	day := rolling("24h", "")
	agent := func(r *ticketpulsev1.GetAgentKpisRequest) func() error {
		return func() error { _, err := c.GetAgentKpis(ctx, r); return err }
	}
	teamReq := func(r *ticketpulsev1.GetTeamKpisRequest) func() error {
		return func() error { _, err := c.GetTeamKpis(ctx, r); return err }
	}
	queueReq := func(r *ticketpulsev1.GetQueueKpisRequest) func() error {
		return func() error { _, err := c.GetQueueKpis(ctx, r); return err }
	}
	queues := func(r *ticketpulsev1.ListQueueKpisRequest) func() error {
		return func() error { _, err := c.ListQueueKpis(ctx, r); return err }
	}
	unassigned := func(r *ticketpulsev1.GetUnassignedKpisRequest) func() error {
		return func() error { _, err := c.GetUnassignedKpis(ctx, r); return err }
	}
	list := func(r *ticketpulsev1.ListAgentKpisRequest) func() error {
		return func() error { _, err := c.ListAgentKpis(ctx, r); return err }
	}
	long := strings.Repeat("x", MaxIDBytes+1)
	tests := []struct {
		name      string
		call      func() error
		wantField string
	}{
		{name: "agent: no tenant", call: agent(&ticketpulsev1.GetAgentKpisRequest{AgentId: "a", Window: day}), wantField: "tenant"},
		{name: "agent: upper-case tenant", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: "Acme", AgentId: "a", Window: day}), wantField: "tenant"},
		{name: "agent: tenant with a dot", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: "ac.me", AgentId: "a", Window: day}), wantField: "tenant"},
		{name: "agent: no agent id", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, Window: day}), wantField: "agent_id"},
		{name: "agent: agent id too long", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: long, Window: day}), wantField: "agent_id"},
		{name: "agent: no window", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a"}), wantField: "window"},
		{name: "agent: window without kind", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: &ticketpulsev1.Window{}}), wantField: "window"},
		{name: "agent: unknown rolling", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: rolling("2w", "")}), wantField: "window.rolling"},
		{name: "agent: unknown zone", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: rolling("7d", "Europe/Atlantis")}), wantField: "window.time_zone"},
		{name: "agent: range without from", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: &ticketpulsev1.Window{
			Kind: &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{To: timestamppb.New(t0)}}}}), wantField: "window.range.from"},
		{name: "agent: range without to", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: &ticketpulsev1.Window{
			Kind: &ticketpulsev1.Window_Range{Range: &ticketpulsev1.TimeRange{From: timestamppb.New(t0)}}}}), wantField: "window.range.to"},
		{name: "agent: reversed range", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: between("2026-11-02T00:00:00Z", "2026-11-01T00:00:00Z")}), wantField: "window.range.to"},
		{name: "agent: range over 10 years", call: agent(&ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: between("2016-01-01T00:00:00Z", "2026-01-01T01:00:00Z")}), wantField: "window.range.to"},
		{name: "list: range over 10 years", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: between("2016-01-01T00:00:00Z", "2026-01-01T01:00:00Z")}), wantField: "window.range.to"},
		{name: "list: unknown long rolling", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: rolling("2y", "")}), wantField: "window.rolling"},
		{name: "team: no team id", call: teamReq(&ticketpulsev1.GetTeamKpisRequest{Tenant: tenant, Window: day}), wantField: "team_id"},
		{name: "team: team id too long", call: teamReq(&ticketpulsev1.GetTeamKpisRequest{Tenant: tenant, TeamId: long, Window: day}), wantField: "team_id"},
		{name: "team: bad tenant", call: teamReq(&ticketpulsev1.GetTeamKpisRequest{Tenant: "-x", TeamId: "t", Window: day}), wantField: "tenant"},
		{name: "team: unknown rolling", call: teamReq(&ticketpulsev1.GetTeamKpisRequest{Tenant: tenant, TeamId: "t", Window: rolling("1d", "")}), wantField: "window.rolling"},
		{name: "queue: no queue id", call: queueReq(&ticketpulsev1.GetQueueKpisRequest{Tenant: tenant, Window: day}), wantField: "queue_id"},
		{name: "queue: queue id too long", call: queueReq(&ticketpulsev1.GetQueueKpisRequest{Tenant: tenant, QueueId: long, Window: day}), wantField: "queue_id"},
		{name: "queue: bad tenant", call: queueReq(&ticketpulsev1.GetQueueKpisRequest{Tenant: "a:b", QueueId: "q", Window: day}), wantField: "tenant"},
		{name: "queue: no window", call: queueReq(&ticketpulsev1.GetQueueKpisRequest{Tenant: tenant, QueueId: "q"}), wantField: "window"},
		{name: "queues: bad tenant", call: queues(&ticketpulsev1.ListQueueKpisRequest{Tenant: "", Window: day}), wantField: "tenant"},
		{name: "queues: order by team_id", call: queues(&ticketpulsev1.ListQueueKpisRequest{Tenant: tenant, Window: day, OrderBy: "team_id"}), wantField: "order_by"},
		{name: "queues: page size over 1000", call: queues(&ticketpulsev1.ListQueueKpisRequest{Tenant: tenant, Window: day, PageSize: 1001}), wantField: "page_size"},
		{name: "queues: garbage page token", call: queues(&ticketpulsev1.ListQueueKpisRequest{Tenant: tenant, Window: day, PageToken: "x"}), wantField: "page_token"},
		{name: "unassigned: bad tenant", call: unassigned(&ticketpulsev1.GetUnassignedKpisRequest{Tenant: "a b", Window: day}), wantField: "tenant"},
		{name: "unassigned: no window", call: unassigned(&ticketpulsev1.GetUnassignedKpisRequest{Tenant: tenant}), wantField: "window"},
		{name: "list: bad tenant", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: "ACME", Window: day}), wantField: "tenant"},
		{name: "list: team id too long", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, TeamId: long, Window: day}), wantField: "team_id"},
		{name: "list: no window", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant}), wantField: "window"},
		{name: "list: bad zone", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: rolling("30d", "Local")}), wantField: "window.time_zone"},
		{name: "list: unknown order", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: day, OrderBy: "happiness"}), wantField: "order_by"},
		{name: "list: order with bad direction", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: day, OrderBy: "assigned descending"}), wantField: "order_by"},
		{name: "list: order with extra words", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: day, OrderBy: "assigned desc now"}), wantField: "order_by"},
		{name: "list: negative page size", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: day, PageSize: -1}), wantField: "page_size"},
		{name: "list: page size over 1000", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: day, PageSize: 1001}), wantField: "page_size"},
		{name: "list: garbage page token", call: list(&ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: day, PageToken: "not a token!"}), wantField: "page_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := badRequest(t, tt.call()); !slices.Equal(got, []string{tt.wantField}) {
				t.Errorf("violations %q, want exactly %q", got, tt.wantField)
			}
		})
	}
}

// The limit of a window's length and the rolling windows are named exactly, so a client can tell
// how to fix its request.
func TestWindowLimitMessages(t *testing.T) {
	rdb := testenv.Redis(t)
	c := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	ctx := context.Background()
	tests := []struct {
		name string
		give *ticketpulsev1.Window
		want string
	}{
		{name: "over 10 years", give: between("2016-01-01T00:00:00Z", "2026-01-01T01:00:00Z"),
			want: "window.range.to: range from 2016-01-01T00:00:00Z to 2026-01-01T01:00:00Z is longer than 10 years: to must be at most 2026-01-01T00:00:00Z"},
		{name: "unknown rolling", give: rolling("2y", ""),
			want: `window.rolling: unknown rolling window "2y": want one of 1h, 24h, 7d, 30d, 90d, 365d, all`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.GetAgentKpis(ctx, &ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: tt.give})
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument || st.Message() != tt.want {
				t.Errorf("err = %v (%s), want InvalidArgument %q", err, st.Code(), tt.want)
			}
		})
	}
	// Exactly 10 years, and each long rolling window, are answered.
	for _, w := range []*ticketpulsev1.Window{between("2016-01-01T00:00:00Z", "2026-01-01T00:00:00Z"), rolling("90d", ""), rolling("365d", "Europe/Berlin"), rolling("all", "")} {
		if _, err := c.GetAgentKpis(ctx, &ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: w}); err != nil {
			t.Errorf("window %v: %v", w, err)
		}
	}
}

func TestInvalidArgumentNamesEveryField(t *testing.T) {
	c := serve(t, query.NewReader(testenv.Redis(t)), func() time.Time { return t0 })
	_, err := c.ListAgentKpis(context.Background(), &ticketpulsev1.ListAgentKpisRequest{
		Tenant: "BAD", Window: rolling("9d", ""), OrderBy: "nope", PageSize: 5000,
	})
	got := badRequest(t, err)
	want := []string{"tenant", "window.rolling", "order_by", "page_size"}
	if !slices.Equal(got, want) {
		t.Errorf("violations %q, want %q", got, want)
	}
}

func TestStoreFailures(t *testing.T) {
	ctx := context.Background()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens there: every read fails to connect.
	down := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { down.Close() })
	corruptRDB := testenv.Redis(t)
	if err := corruptRDB.HSet(ctx, bucket.HourKey(tenant, bucket.Scope{Kind: bucket.Agent, ID: "a"}, bucket.DayOf(window.HourOf(t0))), "14|as", "many").Err(); err != nil {
		t.Fatal(err)
	}
	unavailable := serve(t, query.NewReader(down), func() time.Time { return t0 })
	corrupt := serve(t, query.NewReader(corruptRDB), func() time.Time { return t0 })
	day := rolling("24h", "")
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{name: "agent", want: codes.Unavailable, call: func() error {
			_, err := unavailable.GetAgentKpis(ctx, &ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: day})
			return err
		}},
		{name: "team", want: codes.Unavailable, call: func() error {
			_, err := unavailable.GetTeamKpis(ctx, &ticketpulsev1.GetTeamKpisRequest{Tenant: tenant, TeamId: "t", Window: day})
			return err
		}},
		{name: "unassigned", want: codes.Unavailable, call: func() error {
			_, err := unavailable.GetUnassignedKpis(ctx, &ticketpulsev1.GetUnassignedKpisRequest{Tenant: tenant, Window: day})
			return err
		}},
		{name: "list", want: codes.Unavailable, call: func() error {
			_, err := unavailable.ListAgentKpis(ctx, &ticketpulsev1.ListAgentKpisRequest{Tenant: tenant, Window: day})
			return err
		}},
		{name: "corrupt bucket", want: codes.Internal, call: func() error {
			_, err := corrupt.GetAgentKpis(ctx, &ticketpulsev1.GetAgentKpisRequest{Tenant: tenant, AgentId: "a", Window: day})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if st := status.Convert(err); st.Code() != tt.want || st.Message() == "" {
				t.Fatalf("err = %v, want %v with the cause", err, tt.want)
			}
		})
	}
	if err := (tests[0].call()); !strings.Contains(status.Convert(err).Message(), "refused") {
		t.Errorf("unavailable message %q does not carry the cause", status.Convert(err).Message())
	}
}
