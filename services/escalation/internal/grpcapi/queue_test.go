package grpcapi

import (
	"context"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/engine"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/rulesfile"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

// queueRules give two tenants a queue rule and acme a team rule on the same metric, so a team
// whose id is a queue's id has an escalation the queue filter must leave out.
const queueRules = `tenants:
  acme:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
    quality_rules:
      - {name: queue-abandons, kind: kpi, scope: queue, metric: call_abandon_rate, window: 1h, above: 10%, min_sample: 20, escalation: leads}
      - {name: team-abandons, kind: kpi, scope: team, metric: call_abandon_rate, window: 1h, above: 10%, min_sample: 20, escalation: leads}
  globex:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
    quality_rules:
      - {name: queue-abandons, kind: kpi, scope: queue, metric: call_abandon_rate, window: 1h, above: 10%, min_sample: 20, escalation: leads}
`

// ListEscalations with queue_id lists the escalations of that queue only: not another queue's,
// not a team's of the same id, not another tenant's. The escalations are opened by the real
// engine from queue snapshots, stored in a real Redis, published to a real NATS, and listed
// through a real gRPC listener. The queue id holds what could break a hash tag or a subject.
func TestListEscalationsByQueue(t *testing.T) {
	ctx := context.Background()
	rdb := testenv.Redis(t)
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Escalations(1))
	cfg, err := rulesfile.Parse("rules.yaml", []byte(queueRules))
	if err != nil {
		t.Fatal(err)
	}
	rules := &atomic.Pointer[rulesfile.Config]{}
	rules.Store(cfg)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	store := escalationstore.New(rdb, time.Hour)
	eng := engine.New(rdb, store, timers.New(rdb, timers.Options{Lease: time.Second}), js, rules, func() time.Time { return now },
		engine.Options{TicketRetention: time.Hour}, quiet)

	const sales, support = "sales: {EU} ünï", "support"
	abandoning := &tpv1.Kpis{CallsOffered: 40, CallsAbandoned: 6, CallAbandonRate: 0.15}
	for _, s := range []struct{ tenant, scope, id string }{
		{"acme", "queue", sales},
		{"acme", "queue", support},
		{"acme", "team", sales},
		{"globex", "queue", sales},
	} {
		snap := &tpv1.KpiSnapshot{Tenant: s.tenant, Scope: s.scope, Id: s.id, ComputedAt: timestamppb.New(now),
			Windows: map[string]*tpv1.Kpis{"1h": abandoning}}
		if err := eng.Snapshot(ctx, snap); err != nil {
			t.Fatalf("judge %s %s %q: %v", s.tenant, s.scope, s.id, err)
		}
		now = now.Add(time.Second)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	NewServer(store, eng, js, Options{}, quiet).Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := tpv1.NewEscalationServiceClient(conn)

	tests := []struct {
		name string
		give *tpv1.ListEscalationsRequest
		// want are the escalations listed, as "<rule> <subject kind> <subject id>", newest first.
		want []string
	}{
		{"every escalation of acme", &tpv1.ListEscalationsRequest{Tenant: "acme"},
			[]string{"team-abandons team " + sales, "queue-abandons queue " + support, "queue-abandons queue " + sales}},
		{"one queue", &tpv1.ListEscalationsRequest{Tenant: "acme", QueueId: sales}, []string{"queue-abandons queue " + sales}},
		{"another queue", &tpv1.ListEscalationsRequest{Tenant: "acme", QueueId: support}, []string{"queue-abandons queue " + support}},
		{"a queue nobody escalated", &tpv1.ListEscalationsRequest{Tenant: "acme", QueueId: "billing"}, nil},
		{"a team of the queue's id", &tpv1.ListEscalationsRequest{Tenant: "acme", TeamId: sales}, []string{"team-abandons team " + sales}},
		{"the queue of another tenant", &tpv1.ListEscalationsRequest{Tenant: "globex", QueueId: sales}, []string{"queue-abandons queue " + sales}},
		{"a queue only another tenant has", &tpv1.ListEscalationsRequest{Tenant: "globex", QueueId: support}, nil},
		{"queue and rule", &tpv1.ListEscalationsRequest{Tenant: "acme", QueueId: sales, Rule: "team-abandons"}, nil},
		{"queue and open", &tpv1.ListEscalationsRequest{Tenant: "acme", QueueId: support, State: tpv1.EscalationState_ESCALATION_STATE_OPEN},
			[]string{"queue-abandons queue " + support}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.ListEscalations(ctx, tt.give)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range resp.GetEscalations() {
				if e.GetTenant() != tt.give.GetTenant() {
					t.Errorf("escalation %s of tenant %q listed for %q", e.GetId(), e.GetTenant(), tt.give.GetTenant())
				}
				rec, err := store.Get(ctx, e.GetTenant(), e.GetId())
				if err != nil {
					t.Fatal(err)
				}
				if tt.give.GetQueueId() != "" && e.GetLabels()["queue"] != tt.give.GetQueueId() {
					t.Errorf("escalation %s has queue label %q, want %q", e.GetId(), e.GetLabels()["queue"], tt.give.GetQueueId())
				}
				got = append(got, rec.Rule+" "+rec.Subject.Kind+" "+rec.Subject.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("listed %q, want %q", got, tt.want)
			}
		})
	}
}

// A queue_id longer than an id may be is refused with InvalidArgument naming queue_id, as
// team_id and agent_id are, before the store is read.
func TestListEscalationsRefusesALongQueueID(t *testing.T) {
	s := NewServer(nil, &changes{}, nil, Options{}, quiet)
	_, err := s.ListEscalations(context.Background(), &tpv1.ListEscalationsRequest{Tenant: "acme", QueueId: strings.Repeat("q", 257)})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "queue_id: 257 bytes, at most 256 allowed" {
		t.Fatalf("got %v, want InvalidArgument naming queue_id", err)
	}
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	if !slices.Equal(fields, []string{"queue_id"}) {
		t.Errorf("field violations %q, want queue_id", fields)
	}
}
