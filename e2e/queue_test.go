package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// queueRules: a queue whose calls are abandoned more than one in ten over the last hour, once 20
// calls were offered, escalates to the leads.
const queueRules = `
tenants:
  acme:
    escalation_policies:
      leads: {levels: [{targets: [team-lead]}]}
    quality_rules:
      - {name: queue-abandons, kind: kpi, scope: queue, metric: call_abandon_rate, window: 1h, above: 10%, min_sample: 20, escalation: leads}
`

// Calls posted to ingest reach an escalation on their queue through the whole path: kpi credits
// them to the queue and publishes its snapshot, escalation decodes it and judges the queue rule,
// and ListEscalations finds the escalation by its queue, an id with odd characters; the queue
// whose calls were answered raises nothing.
func TestQueueAbandonEscalation(t *testing.T) {
	s := newStack(t)
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, []byte(queueRules), 0o600); err != nil {
		t.Fatal(err)
	}
	ingest := startIngest(t, s)
	k, _ := startKPILogs(t, s, "TICKETPULSE_RULES_FILE="+rules)
	escGRPC := freeAddr(t)
	startService(t, "escalation", freeAddr(t),
		"TICKETPULSE_NATS_URL="+s.natsURL, "TICKETPULSE_REDIS_URL="+s.redisDB(1),
		"TICKETPULSE_TENANTS_FILE="+s.tenants.File, "TICKETPULSE_GRPC_ADDR="+escGRPC, "TICKETPULSE_STREAM_REPLICAS=1",
		"TICKETPULSE_RULES_FILE="+rules)

	const (
		billing = "billing {line}: é/2" // 24 calls, 6 abandoned: 25 %
		sales   = "sales"               // 24 calls, all answered
	)
	start := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	var events []map[string]any
	call := func(queue string, n int, abandon bool) {
		id := fmt.Sprintf("%s-%d", queue, n)
		at := start.Add(time.Duration(n) * 10 * time.Second)
		info := map[string]any{"call_id": id, "direction": "inbound", "queue_id": queue, "team_id": "phones"}
		events = append(events, map[string]any{"id": id + "-o", "ticket_id": id, "type": "call_offered",
			"occurred_at": at.Format(time.RFC3339), "actor": map[string]any{"kind": "system"}, "call": info})
		if abandon {
			events = append(events, map[string]any{"id": id + "-x", "ticket_id": id, "type": "call_abandoned",
				"occurred_at": at.Add(40 * time.Second).Format(time.RFC3339), "actor": map[string]any{"kind": "system"}, "call": info})
			return
		}
		answered := map[string]any{"call_id": id, "direction": "inbound", "queue_id": queue, "team_id": "phones", "agent_id": "ana"}
		events = append(events, map[string]any{"id": id + "-a", "ticket_id": id, "type": "call_answered",
			"occurred_at": at.Add(12 * time.Second).Format(time.RFC3339), "actor": map[string]any{"id": "ana", "kind": "agent"}, "call": answered})
	}
	for n := range 24 {
		call(billing, n, n%4 == 0)
		call(sales, n, false)
	}
	post(t, ingest, "acme", s.tenants.Acme, events)

	// kpi's figures for the two queues, as the rule reads them.
	w := &tpv1.Window{Kind: &tpv1.Window_Rolling{Rolling: "1h"}}
	kc := k.as(s.tenants.Acme)
	waitUntil(t, "kpi's queue figures", time.Minute, func() bool {
		b, err := kc.GetQueueKpis(context.Background(), &tpv1.GetQueueKpisRequest{Tenant: "acme", QueueId: billing, Window: w})
		sl, err2 := kc.GetQueueKpis(context.Background(), &tpv1.GetQueueKpisRequest{Tenant: "acme", QueueId: sales, Window: w})
		return err == nil && err2 == nil && b.GetKpis().GetCallsOffered() == 24 && sl.GetKpis().GetCallsAnswered() == 24
	})
	b, err := kc.GetQueueKpis(context.Background(), &tpv1.GetQueueKpisRequest{Tenant: "acme", QueueId: billing, Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.GetKpis(); got.GetCallsAbandoned() != 6 || got.GetCallAbandonRate() != 0.25 {
		t.Fatalf("billing queue: %d abandoned, rate %v; want 6 of 24, 0.25", got.GetCallsAbandoned(), got.GetCallAbandonRate())
	}

	esc := tpv1.NewEscalationServiceClient(dialAs(t, escGRPC, s.tenants.Acme))
	list := func(queue string) []*tpv1.Escalation {
		resp, err := esc.ListEscalations(context.Background(), &tpv1.ListEscalationsRequest{Tenant: "acme", QueueId: queue})
		if err != nil {
			t.Fatalf("ListEscalations(queue %q): %v", queue, err)
		}
		return resp.GetEscalations()
	}
	waitUntil(t, "the billing queue's escalation", time.Minute, func() bool { return len(list(billing)) > 0 })
	got := list(billing)
	if e := got[0]; len(got) != 1 || e.GetRule() != "queue-abandons" || e.GetSubjectKind() != "queue" || e.GetSubjectId() != billing ||
		e.GetLabels()["queue"] != billing || e.GetState() != tpv1.EscalationState_ESCALATION_STATE_OPEN {
		t.Errorf("billing queue escalations %v, want one open queue-abandons on the queue", got)
	}
	if got := list(sales); len(got) != 0 {
		t.Errorf("sales queue escalations %v, want none: its calls were answered", got)
	}
}
