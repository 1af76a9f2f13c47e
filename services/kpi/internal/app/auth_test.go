package app

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/ticketpulse/ticketpulse/services/platform/auth"
	"github.com/ticketpulse/ticketpulse/services/platform/servicetest"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// kpiCall is one KpiService RPC on a tenant, returning what it answered in a few comparable
// words: whose figures and how many tickets they count.
type kpiCall func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error)

func figures(k *tpv1.Kpis) string {
	return fmt.Sprintf("assigned=%d resolutions=%d csat=%d", k.GetAssigned(), k.GetResolution().GetCount(), k.GetCsatCount())
}

func callFigures(k *tpv1.Kpis) string {
	return fmt.Sprintf("offered=%d abandoned=%d", k.GetCallsOffered(), k.GetCallsAbandoned())
}

// kpiCalls are every RPC of KpiService; TestKpiServiceMethodsAllCovered keeps the list whole.
var kpiCalls = map[string]kpiCall{
	"GetAgentKpis": func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error) {
		resp, err := c.GetAgentKpis(ctx, &tpv1.GetAgentKpisRequest{Tenant: tenant, AgentId: "ana", Window: w})
		return resp.GetAgent().GetAgentId() + " " + figures(resp.GetAgent().GetKpis()), err
	},
	"ListAgentKpis": func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error) {
		resp, err := c.ListAgentKpis(ctx, &tpv1.ListAgentKpisRequest{Tenant: tenant, Window: w})
		var out []string
		for _, a := range resp.GetAgents() {
			out = append(out, a.GetAgentId()+" "+figures(a.GetKpis()))
		}
		return strings.Join(out, "; "), err
	},
	"GetTeamKpis": func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error) {
		resp, err := c.GetTeamKpis(ctx, &tpv1.GetTeamKpisRequest{Tenant: tenant, TeamId: "billing", Window: w})
		return resp.GetTeamId() + " " + figures(resp.GetKpis()), err
	},
	"ListTeamKpis": func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error) {
		resp, err := c.ListTeamKpis(ctx, &tpv1.ListTeamKpisRequest{Tenant: tenant, Window: w})
		var out []string
		for _, t := range resp.GetTeams() {
			out = append(out, t.GetTeamId()+" "+figures(t.GetKpis()))
		}
		return strings.Join(out, "; "), err
	},
	"GetQueueKpis": func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error) {
		resp, err := c.GetQueueKpis(ctx, &tpv1.GetQueueKpisRequest{Tenant: tenant, QueueId: "support", Window: w})
		return resp.GetQueueId() + " " + callFigures(resp.GetKpis()), err
	},
	"ListQueueKpis": func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error) {
		resp, err := c.ListQueueKpis(ctx, &tpv1.ListQueueKpisRequest{Tenant: tenant, Window: w})
		var out []string
		for _, q := range resp.GetQueues() {
			out = append(out, q.GetQueueId()+" "+callFigures(q.GetKpis()))
		}
		return strings.Join(out, "; "), err
	},
	"GetUnassignedKpis": func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error) {
		resp, err := c.GetUnassignedKpis(ctx, &tpv1.GetUnassignedKpisRequest{Tenant: tenant, Window: w})
		return figures(resp.GetKpis()), err
	},
	"ListKpiSeries": func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error) {
		resp, err := c.ListKpiSeries(ctx, &tpv1.ListKpiSeriesRequest{Tenant: tenant, Scope: tpv1.ScopeKind_SCOPE_KIND_AGENT,
			Window: w, Granularity: tpv1.Granularity_GRANULARITY_MONTH})
		var out []string
		for _, s := range resp.GetSeries() {
			k := &tpv1.Kpis{FirstResponse: &tpv1.DurationStats{}, Resolution: &tpv1.DurationStats{}}
			for _, p := range s.GetPoints() {
				k.Assigned += p.GetKpis().GetAssigned()
				k.Resolution.Count += p.GetKpis().GetResolution().GetCount()
				k.CsatCount += p.GetKpis().GetCsatCount()
			}
			out = append(out, s.GetScopeId()+" "+figures(k))
		}
		return strings.Join(out, "; "), err
	},
	"ListTicketKpis": func(ctx context.Context, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window) (string, error) {
		resp, err := c.ListTicketKpis(ctx, &tpv1.ListTicketKpisRequest{Tenant: tenant, Window: w})
		var out []string
		for _, tk := range resp.GetTickets() {
			out = append(out, fmt.Sprintf("%s agent=%q team=%q rating=%d", tk.GetTicketId(), tk.GetAgentId(), tk.GetTeamId(), tk.GetRating()))
		}
		return strings.Join(out, "; "), err
	},
}

// The table above names every method the service registers, so a new RPC cannot go untested.
func TestKpiServiceMethodsAllCovered(t *testing.T) {
	for _, m := range tpv1.KpiService_ServiceDesc.Methods {
		if kpiCalls[m.MethodName] == nil {
			t.Errorf("KpiService/%s has no case in kpiCalls", m.MethodName)
		}
		if Spec.Access["/"+tpv1.KpiService_ServiceDesc.ServiceName+"/"+m.MethodName] != auth.KPIsRead {
			t.Errorf("KpiService/%s does not require %s", m.MethodName, auth.KPIsRead)
		}
	}
	if len(kpiCalls) != len(tpv1.KpiService_ServiceDesc.Methods) || len(tpv1.KpiService_ServiceDesc.Streams) != 0 {
		t.Errorf("kpiCalls has %d RPCs, the service %d unary and %d streaming", len(kpiCalls),
			len(tpv1.KpiService_ServiceDesc.Methods), len(tpv1.KpiService_ServiceDesc.Streams))
	}
}

// Every KpiService RPC through the running service, with every kind of credential: a refusal
// has its exact code and message, a tenant's key and an operator see that tenant's figures, and
// a key of another tenant never sees acme's.
func TestKpiServiceAuth(t *testing.T) {
	s := newStack(t)
	ts := servicetest.WriteTenants(t, nil)
	r := runKPI(t, s, ts, nil)

	// acme's figures through the real pipeline: one ticket of ana's in billing, one solved
	// without ever being assigned (the unassigned figures), and a call abandoned in queue support.
	js := ticketsJS(t, s)
	start := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	publishTicket(t, js, "T-1", start)
	publishEvents(t, js, []map[string]any{
		{"id": "T-2-c", "ticket_id": "T-2", "type": "ticket_created", "occurred_at": start.Format(time.RFC3339),
			"actor": map[string]any{"id": "cust", "kind": "customer"}, "team_id": "billing"},
		{"id": "T-2-s", "ticket_id": "T-2", "type": "status_changed", "occurred_at": start.Add(time.Hour).Format(time.RFC3339),
			"actor": map[string]any{"id": "bob", "kind": "agent"}, "status": "solved"},
		{"id": "CA-1-o", "ticket_id": "CA-1", "type": "call_offered", "occurred_at": start.Format(time.RFC3339), "actor": map[string]any{"id": "ivr", "kind": "system"},
			"call": map[string]any{"call_id": "CA-1", "direction": "inbound", "queue_id": "support"}},
		{"id": "CA-1-x", "ticket_id": "CA-1", "type": "call_abandoned", "occurred_at": start.Add(time.Minute).Format(time.RFC3339), "actor": map[string]any{"id": "ivr", "kind": "system"},
			"call": map[string]any{"call_id": "CA-1", "direction": "inbound", "queue_id": "support", "wait_seconds": 60}},
	})
	w := window(start, start.Add(24*time.Hour))
	acme := map[string]string{
		"GetAgentKpis":      "ana assigned=1 resolutions=1 csat=1",
		"ListAgentKpis":     "ana assigned=1 resolutions=1 csat=1",
		"GetTeamKpis":       "billing assigned=2 resolutions=2 csat=1",
		"ListTeamKpis":      "billing assigned=2 resolutions=2 csat=1",
		"GetQueueKpis":      "support offered=1 abandoned=1",
		"ListQueueKpis":     "support offered=1 abandoned=1",
		"GetUnassignedKpis": "assigned=0 resolutions=1 csat=0",
		"ListKpiSeries":     "ana assigned=1 resolutions=1 csat=1",
		"ListTicketKpis":    `T-1 agent="ana" team="billing" rating=5; T-2 agent="" team="billing" rating=0`,
	}
	// globex has no events: its own key reads zeros and empty lists.
	globex := map[string]string{
		"GetAgentKpis":      "ana assigned=0 resolutions=0 csat=0",
		"ListAgentKpis":     "",
		"GetTeamKpis":       "billing assigned=0 resolutions=0 csat=0",
		"ListTeamKpis":      "",
		"GetQueueKpis":      "support offered=0 abandoned=0",
		"ListQueueKpis":     "",
		"GetUnassignedKpis": "assigned=0 resolutions=0 csat=0",
		"ListKpiSeries":     "",
		"ListTicketKpis":    "",
	}
	waitFigures(t, tpv1.NewKpiServiceClient(r.DialAs(ts.Operator)), "acme", w, acme)

	unknownKey, _, err := auth.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		key      string
		tenant   string
		wantCode codes.Code
		wantMsg  string
		want     map[string]string
	}{
		{name: "no credential", tenant: "acme", wantCode: codes.Unauthenticated,
			wantMsg: "no credential: send Authorization: Bearer <key or ID token>"},
		{name: "malformed", key: "x", tenant: "acme", wantCode: codes.Unauthenticated,
			wantMsg: "malformed credential: neither an API key nor an ID token"},
		{name: "unknown key", key: unknownKey, tenant: "acme", wantCode: codes.Unauthenticated, wantMsg: "invalid credential"},
		{name: "revoked key", key: ts.AcmeRevoked, tenant: "acme", wantCode: codes.Unauthenticated, wantMsg: "revoked credential"},
		{name: "wrong tenant", key: ts.Globex, tenant: "acme", wantCode: codes.PermissionDenied,
			wantMsg: "the credential is not for this tenant"},
		{name: "wrong tenant that does not exist", key: ts.Acme, tenant: "initech", wantCode: codes.PermissionDenied,
			wantMsg: "the credential is not for this tenant"},
		{name: "missing scope", key: ts.AcmeEvents, tenant: "acme", wantCode: codes.PermissionDenied,
			wantMsg: "the credential lacks the scope kpis:read"},
		{name: "unknown tenant", key: ts.Operator, tenant: "initech", wantCode: codes.NotFound, wantMsg: "unknown tenant"},
		{name: "valid tenant key", key: ts.Acme, tenant: "acme", wantCode: codes.OK, want: acme},
		{name: "valid operator", key: ts.Operator, tenant: "acme", wantCode: codes.OK, want: acme},
		{name: "other tenant's own key", key: ts.Globex, tenant: "globex", wantCode: codes.OK, want: globex},
	}
	for _, tt := range tests {
		client := tpv1.NewKpiServiceClient(r.DialAs(tt.key))
		for method, call := range kpiCalls {
			t.Run(tt.name+"/"+method, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				got, err := call(ctx, client, tt.tenant, w)
				st := status.Convert(err)
				if st.Code() != tt.wantCode || (tt.wantCode != codes.OK && st.Message() != tt.wantMsg) {
					t.Fatalf("%s = %v %q, want %v %q", method, st.Code(), st.Message(), tt.wantCode, tt.wantMsg)
				}
				if tt.wantCode == codes.OK && got != tt.want[method] {
					t.Errorf("%s on %s = %q, want %q", method, tt.tenant, got, tt.want[method])
				}
			})
		}
	}
}

// The gRPC health check answers without a credential, so probes and load balancers need no key,
// and so does reflection (grpcurl list and describe); the KPIs next to them do not.
func TestHealthAndReflectionWithoutCredential(t *testing.T) {
	s := newStack(t)
	ts := servicetest.WriteTenants(t, nil)
	r := runKPI(t, s, ts, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := r.Dial()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health without credential = %v, %v; want SERVING", resp, err)
	}
	refl, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	listed, err := refl.Recv()
	if err != nil {
		t.Fatalf("reflection without credential: %v", err)
	}
	var names []string
	for _, svc := range listed.GetListServicesResponse().GetService() {
		names = append(names, svc.GetName())
	}
	if !slices.Contains(names, tpv1.KpiService_ServiceDesc.ServiceName) {
		t.Errorf("reflection lists %v, want %s among them", names, tpv1.KpiService_ServiceDesc.ServiceName)
	}
	refl.CloseSend()
	_, err = tpv1.NewKpiServiceClient(conn).GetUnassignedKpis(ctx, &tpv1.GetUnassignedKpisRequest{Tenant: "acme", Window: &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: "24h"}}})
	if st := status.Convert(err); st.Code() != codes.Unauthenticated || st.Message() != auth.ErrNoCredential.Error() {
		t.Errorf("GetUnassignedKpis on the same connection = %v %q, want Unauthenticated %q", st.Code(), st.Message(), auth.ErrNoCredential)
	}
}

// waitFigures polls, as the operator, until every RPC answers want on tenant, or fails after 15 s.
func waitFigures(t *testing.T, c tpv1.KpiServiceClient, tenant string, w *tpv1.Window, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var diff []string
		for method, call := range kpiCalls {
			if got, err := call(context.Background(), c, tenant, w); err != nil || got != want[method] {
				diff = append(diff, fmt.Sprintf("%s = %q, %v", method, got, err))
			}
		}
		if len(diff) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("KPIs never reached the seeded figures: %s", strings.Join(diff, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
