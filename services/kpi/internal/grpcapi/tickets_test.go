package grpcapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/ticketindex"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// serveTickets runs the service with its ticket index on a real loopback listener.
func serveTickets(t testing.TB, rdb redis.UniversalClient, now func() time.Time) ticketpulsev1.KpiServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	NewServer(query.NewReader(rdb), now, slog.New(slog.DiscardHandler)).WithTickets(ticketindex.NewReader(rdb)).Register(gs)
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

func tev(id string, typ ticketpulsev1.EventType, at time.Time, f func(*contrib.Event)) contrib.Event {
	e := contrib.Event{Key: contrib.KeyOf(id), Type: typ, AtMillis: at.UnixMilli()}
	f(&e)
	return e
}

// ticketLife is a ticket created at c in team billing, assigned to agent, answered after frt,
// solved after res and rated score (0: not rated).
func ticketLife(id, agent string, c time.Time, frt, res time.Duration, score uint8) []contrib.Event {
	evs := []contrib.Event{
		tev(id+"c", ticketpulsev1.EventType_EVENT_TYPE_TICKET_CREATED, c, func(e *contrib.Event) {
			e.Actor, e.ActorID, e.Team, e.Priority = ticketpulsev1.ActorKind_ACTOR_KIND_CUSTOMER, "cu", "billing", ticketpulsev1.Priority_PRIORITY_HIGH
		}),
		tev(id+"a", ticketpulsev1.EventType_EVENT_TYPE_TICKET_ASSIGNED, c, func(e *contrib.Event) { e.Assignee = agent }),
		tev(id+"m", ticketpulsev1.EventType_EVENT_TYPE_AGENT_MESSAGE, c.Add(frt), func(e *contrib.Event) {
			e.Actor, e.ActorID, e.Public = ticketpulsev1.ActorKind_ACTOR_KIND_AGENT, agent, 2
		}),
		tev(id+"s", ticketpulsev1.EventType_EVENT_TYPE_STATUS_CHANGED, c.Add(res), func(e *contrib.Event) {
			e.Status = ticketpulsev1.TicketStatus_TICKET_STATUS_SOLVED
		}),
	}
	if score > 0 {
		evs = append(evs, tev(id+"r", ticketpulsev1.EventType_EVENT_TYPE_SATISFACTION_RATED, c.Add(res+time.Minute), func(e *contrib.Event) {
			e.Score = score
		}))
	}
	return evs
}

// ListTicketKpis over a real listener: the rows of an agent's window with their figures, a
// filter, and pages that carry the window and refuse other parameters.
func TestListTicketKpis(t *testing.T) {
	rdb := testenv.Redis(t)
	w := store.NewWriter(rdb, func(string) contrib.SLA { return contrib.DefaultSLA() }, 0, slog.New(slog.DiscardHandler))
	c0 := t0.Truncate(time.Hour).Add(-6 * time.Hour)
	var batch []store.Ticket
	ids := []string{"T 1", `<script>alert("x")</script>`, "ü/ß", "T-4", "T-5"}
	for i, id := range ids {
		batch = append(batch, store.Ticket{Tenant: tenant, ID: id,
			Events: ticketLife(id, "ana é", c0, time.Duration(i+1)*10*time.Minute, time.Duration(i+1)*time.Hour, uint8(i+1))})
	}
	batch = append(batch, store.Ticket{Tenant: tenant, ID: "B-1", Events: ticketLife("B-1", "bob", c0, time.Hour, 2*time.Hour, 0)})
	if _, err := w.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: t0}
	c := serveTickets(t, rdb, clk.now)
	ctx := context.Background()
	day := rolling("24h", "")

	resp, err := c.ListTicketKpis(ctx, &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, AgentId: "ana é", Window: day})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tk := range resp.GetTickets() {
		got = append(got, tk.GetTicketId())
	}
	// Newest figure first: T-5's rating is the latest (5 h 1 min after creation).
	if want := []string{"T-5", "T-4", "ü/ß", `<script>alert("x")</script>`, "T 1"}; !slices.Equal(got, want) {
		t.Fatalf("tickets %q, want %q", got, want)
	}
	first := resp.GetTickets()[4]
	want := &ticketpulsev1.TicketKpis{
		TicketId: "T 1", AgentId: "ana é", TeamId: "billing", Status: "solved", Priority: "high",
		CreatedAt: timestamppb.New(c0), FirstResponseSeconds: proto.Float64(600), FirstResponseAt: timestamppb.New(c0.Add(10 * time.Minute)),
		ResolutionSeconds: proto.Float64(3600), ResolvedAt: timestamppb.New(c0.Add(time.Hour)), Rating: proto.Int32(1),
		UpdatedAt: timestamppb.New(c0.Add(time.Hour + time.Minute)),
	}
	if !proto.Equal(first, want) {
		t.Errorf("T 1 = %v,\nwant %v", first, want)
	}
	if resp.GetNextPageToken() != "" || !resp.GetWindow().GetTo().AsTime().Equal(t0.Truncate(time.Hour).Add(time.Hour)) {
		t.Errorf("next %q window %v", resp.GetNextPageToken(), resp.GetWindow())
	}

	// Rated at most 2 with a first response of at least 15 minutes: only the one rated 2 after 20 min.
	two, minFRT := int32(2), 15*60.0
	resp, err = c.ListTicketKpis(ctx, &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day,
		Filter: &ticketpulsev1.TicketFilter{MaxRating: &two, MinFirstResponseSeconds: &minFRT}})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetTickets()) != 1 || resp.GetTickets()[0].GetTicketId() != `<script>alert("x")</script>` {
		t.Errorf("filtered tickets %v, want the one rated 2 after 20 min", resp.GetTickets())
	}

	// Pages of two: the token pins the window while time moves on.
	var paged []string
	req := &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, TeamId: "billing", Window: day, PageSize: 2}
	for range 10 {
		resp, err := c.ListTicketKpis(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range resp.GetTickets() {
			paged = append(paged, tk.GetTicketId())
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
		clk.advance(20 * time.Hour)
	}
	if distinct := slices.Compact(slices.Sorted(slices.Values(paged))); len(paged) != 6 || len(distinct) != 6 {
		t.Errorf("billing's pages %q, want its 6 tickets once each", paged)
	}
	req.AgentId, req.TeamId = "bob", ""
	if _, err := c.ListTicketKpis(ctx, req); err == nil {
		t.Error("a token was accepted for other parameters")
	} else if f := badRequest(t, err); !slices.Equal(f, []string{"page_token"}) {
		t.Errorf("violations %q, want page_token", f)
	}
}

func TestListTicketKpisInvalidArgument(t *testing.T) {
	rdb := testenv.Redis(t)
	c := serveTickets(t, rdb, func() time.Time { return t0 })
	ctx := context.Background()
	day := rolling("24h", "")
	f := func(v float64) *float64 { return &v }
	i := func(v int32) *int32 { return &v }
	forged := func(tok ticketToken) string {
		b, _ := json.Marshal(tok)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	base := &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day}
	fp := ticketFingerprint(base)
	tests := []struct {
		name      string
		req       *ticketpulsev1.ListTicketKpisRequest
		wantField []string
	}{
		{"bad tenant", &ticketpulsev1.ListTicketKpisRequest{Tenant: "Acme", Window: day}, []string{"tenant"}},
		{"agent and team", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, AgentId: "a", TeamId: "b", Window: day}, []string{"team_id"}},
		{"agent id too long", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, AgentId: strings.Repeat("x", MaxIDBytes+1), Window: day}, []string{"agent_id"}},
		{"no window", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant}, []string{"window"}},
		{"page size over 1000", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day, PageSize: 1001}, []string{"page_size"}},
		{"negative page size", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day, PageSize: -1}, []string{"page_size"}},
		{"rating 0", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day, Filter: &ticketpulsev1.TicketFilter{MaxRating: i(0)}}, []string{"filter.max_rating"}},
		{"rating 6", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day, Filter: &ticketpulsev1.TicketFilter{MaxRating: i(6)}}, []string{"filter.max_rating"}},
		{"negative reopens", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day, Filter: &ticketpulsev1.TicketFilter{MinReopens: i(-1)}}, []string{"filter.min_reopens"}},
		{"negative seconds", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day, Filter: &ticketpulsev1.TicketFilter{MinFirstResponseSeconds: f(-1)}}, []string{"filter.min_first_response_seconds"}},
		{"NaN seconds", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day, Filter: &ticketpulsev1.TicketFilter{MinResolutionSeconds: f(math.NaN())}}, []string{"filter.min_resolution_seconds"}},
		{"infinite seconds", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day, Filter: &ticketpulsev1.TicketFilter{MinResolutionSeconds: f(math.Inf(1))}}, []string{"filter.min_resolution_seconds"}},
		{"every field", &ticketpulsev1.ListTicketKpisRequest{Tenant: "-", PageSize: 5000, Filter: &ticketpulsev1.TicketFilter{MaxRating: i(9), MinReopens: i(-2)}},
			[]string{"tenant", "window", "filter.max_rating", "filter.min_reopens", "page_size"}},
		{"garbage token", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day, PageToken: "not a token!"}, []string{"page_token"}},
		{"position outside the window", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day,
			PageToken: forged(ticketToken{Version: 1, Hour: 10, FromHour: 100, ToHour: 200, Fingerprint: fp})}, []string{"page_token"}},
		{"ticket not escaped", &ticketpulsev1.ListTicketKpisRequest{Tenant: tenant, Window: day,
			PageToken: forged(ticketToken{Version: 1, Hour: 150, Ticket: "a b", FromHour: 100, ToHour: 200, Fingerprint: fp})}, []string{"page_token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ListTicketKpis(ctx, tt.req)
			if got := badRequest(t, err); !slices.Equal(got, tt.wantField) {
				t.Errorf("violations %q, want %q", got, tt.wantField)
			}
		})
	}
	// Without a ticket index the method says so rather than answering empty.
	plain := serve(t, query.NewReader(rdb), func() time.Time { return t0 })
	if _, err := plain.ListTicketKpis(ctx, base); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("without an index: %v, want FailedPrecondition", err)
	}
}

// The page token is outside input: whatever a client sends, decoding never panics, and what it
// accepts lies inside its own window.
func FuzzTicketToken(f *testing.F) {
	fp := ticketFingerprint(&ticketpulsev1.ListTicketKpisRequest{Tenant: tenant})
	f.Add(encodeTicketToken(ticketToken{Hour: 150, Ticket: "T~201", FromHour: 100, ToHour: 200, Fingerprint: fp}))
	f.Add(encodeTicketToken(ticketToken{Hour: 99, FromHour: 100, ToHour: 200, Fingerprint: fp}))
	f.Add("")
	f.Add("eyJ2IjoxfQ")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := decodeTicketToken(s, fp)
		if err != nil {
			return
		}
		if tok.Hour < tok.FromHour || tok.Hour >= tok.ToHour || tok.FromHour >= tok.ToHour {
			t.Fatalf("accepted %+v", tok)
		}
	})
}
