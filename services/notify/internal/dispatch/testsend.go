package dispatch

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
)

// ErrUnknownReceiver reports a receiver the routing file does not define.
var ErrUnknownReceiver = errors.New("unknown receiver")

// ErrLimited reports a test send refused because the receiver is at its rate limit or has its
// maximum of attempts in flight.
var ErrLimited = errors.New("receiver limit reached")

// Test sends a sample notification to a receiver now, not logged. It takes a concurrency slot
// and a rate token like every attempt, so test sends cannot flood a receiver; when either is
// not free now the send is refused with ErrLimited rather than kept waiting. With routedOnly,
// only a receiver the tenant's escalations can be routed to may be tested: any other is
// refused as unknown, before it takes a slot or a token, so a tenant learns nothing of the
// receivers of others.
func (d *Dispatcher) Test(ctx context.Context, receiverName, tenant string, routedOnly bool) (*tpv1.Attempt, bool, error) {
	r := d.routing.Load()
	ss := r.senders[receiverName]
	if ss == nil || routedOnly && !r.Config.ReceiversFor(tenant)[receiverName] {
		return nil, false, fmt.Errorf("%w: %q", ErrUnknownReceiver, receiverName)
	}
	now := d.now()
	sample := &tpv1.EscalationChange{Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, Sequence: 1, At: timestamppb.New(now),
		Escalation: &tpv1.Escalation{Id: "test.t.T-TEST.1", Tenant: tenant, Rule: "test", SubjectKind: "ticket", SubjectId: "T-TEST",
			State: tpv1.EscalationState_ESCALATION_STATE_OPEN, Severity: tpv1.Severity_SEVERITY_INFO, Level: 1,
			Labels:  map[string]string{"tenant": tenant, "rule": "test", "severity": "info", "level": "1", "ticket": "T-TEST"},
			Summary: "Test notification from Ticketpulse: this receiver works.", TriggeredAt: timestamppb.New(now), UpdatedAt: timestamppb.New(now)}}
	t := &delivery{sender: ss, note: &receiver.Notification{ID: fmt.Sprintf("test-%d", now.UnixNano()), Receiver: receiverName, GroupKey: "test",
		GroupLabels: map[string]string{"tenant": tenant}, Changes: []*tpv1.EscalationChange{sample}, At: now}}
	_, err := d.test.exec(ctx, d.log, []*delivery{t})
	if t.release != nil {
		t.release()
	}
	if err != nil {
		return nil, false, err
	}
	a := &tpv1.Attempt{At: timestamppb.New(now), StatusCode: int32(t.attempt.Status), LatencySeconds: t.attempt.Latency.Seconds(), Error: t.attempt.Error}
	return a, t.result.Err == nil, nil
}
