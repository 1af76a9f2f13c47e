package engine

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

const queueRules = `tenants:
  acme:
    escalation_policies:
      leads:
        levels:
          - targets: [team-lead]
    quality_rules:
      - {name: queue-abandons, kind: kpi, scope: queue, metric: call_abandon_rate, window: 1h, above: 10%, min_sample: 20, escalation: leads}
      - {name: team-abandons, kind: kpi, scope: team, metric: call_abandon_rate, window: 1h, above: 10%, min_sample: 20, escalation: leads}
`

// A kind: kpi rule with scope: queue judges the queue snapshots kpi publishes on
// kpi.<tenant>.queue.<escaped id> (read back from a real KPI stream, as the escalation service's
// consumer gets them): it fires with the queue as subject and label when the abandon rate is
// above its threshold, a team rule with the same metric leaves the queue alone, and the
// escalation resolves when the rate recovers. The queue id holds what could break a hash tag.
func TestQueueAbandonRuleFiresFromASnapshot(t *testing.T) {
	f := newFixture(t, queueRules)
	ctx := context.Background()
	_, url := testenv.NATS(t)
	kjs := testenv.JetStream(t, url, stream.KPI(1))
	const queue = "sales: {EU} ünï"
	subject := "kpi.acme.queue." + idtoken.Escape(queue)
	judged := func(k *tpv1.Kpis) {
		t.Helper()
		data, err := proto.Marshal(&tpv1.KpiSnapshot{Tenant: "acme", Scope: "queue", Id: queue, ComputedAt: timestamppb.New(f.now),
			Windows: map[string]*tpv1.Kpis{"1h": k}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kjs.Publish(ctx, subject, data); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
		s, err := kjs.Stream(ctx, stream.KPIName)
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetLastMsgForSubject(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		var snap tpv1.KpiSnapshot
		if err := proto.Unmarshal(m.Data, &snap); err != nil {
			t.Fatal(err)
		}
		if err := f.engine.Snapshot(ctx, &snap); err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(1e9)
	}
	list := func() []*escalationstore.Record {
		t.Helper()
		recs, _, err := f.engine.Store().List(ctx, "acme", escalationstore.Filter{}, 10, "")
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}

	judged(&tpv1.Kpis{CallsOffered: 10, CallsAbandoned: 5, CallAbandonRate: 0.5}) // too few calls to judge
	if recs := list(); len(recs) != 0 {
		t.Fatalf("escalations after a snapshot of 10 calls: %v", recs)
	}
	judged(&tpv1.Kpis{CallsOffered: 40, CallsAbandoned: 6, CallAbandonRate: 0.15})
	recs := list()
	if len(recs) != 1 {
		t.Fatalf("%d escalations, want the queue rule's one: %v", len(recs), recs)
	}
	r := recs[0]
	if r.Rule != "queue-abandons" || r.Subject != (escalationstore.Subject{Kind: escalationstore.Queue, ID: queue}) ||
		r.Labels["queue"] != queue || r.Labels["team"] != "" || r.Labels["agent"] != "" || r.State != tpv1.EscalationState_ESCALATION_STATE_OPEN ||
		!strings.Contains(r.Summary, "queue "+queue+": call abandon rate over 1h is 0.15, above 0.10 (40 calls offered)") {
		t.Errorf("escalation %+v; want queue-abandons open on queue %q, labelled queue", r, queue)
	}
	got, err := f.engine.Store().Get(ctx, "acme", r.ID)
	if err != nil || got.Subject.Kind != escalationstore.Queue || got.Subject.ID != queue {
		t.Errorf("Get(%s) = %+v, %v; want the queue's escalation", r.ID, got, err)
	}
	if n := f.stored(t); n != 1 {
		t.Errorf("%d changes published, want the trigger", n)
	}
	judged(&tpv1.Kpis{CallsOffered: 60, CallsAbandoned: 3, CallAbandonRate: 0.05})
	if recs := list(); len(recs) != 1 || recs[0].State != tpv1.EscalationState_ESCALATION_STATE_RESOLVED {
		t.Errorf("after the recovery: %v; want the escalation resolved", recs)
	}
	if n := f.stored(t); n != 2 {
		t.Errorf("%d changes published, want the trigger and the resolution", n)
	}
}
