package dispatch

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// failingPlans is the real timer queue whose next ScheduleEarlier fails, as when notify dies (or
// Redis fails over) between adding a change to its group and planning the group's send.
type failingPlans struct {
	*timers.Queue
	failNext atomic.Bool
}

func (p *failingPlans) ScheduleEarlier(ctx context.Context, ts []timers.Timer) error {
	if p.failNext.CompareAndSwap(true, false) {
		return errors.New("notify died before planning the send")
	}
	return p.Queue.ScheduleEarlier(ctx, ts)
}

// A change whose group send was never planned is planned by its redelivery, which the group
// already holds: otherwise the group, and every change added to it later, would wait forever.
// Found by the chaos suite (one notification group never sent).
func TestRedeliveryPlansALostGroupSend(t *testing.T) {
	f := newFixture(t, "1h")
	f.status.Store(200)
	ctx := context.Background()
	plans := &failingPlans{Queue: f.queue}
	plans.failNext.Store(true)
	d := New(f.store, f.once, plans, f.js, f.d.Routing(), f.now, Options{}, quiet)
	change := func(ticket string) *tpv1.EscalationChange {
		return &tpv1.EscalationChange{Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, Sequence: 1, At: timestamppb.New(f.now()),
			Escalation: &tpv1.Escalation{Id: "r.t." + ticket + ".1", Tenant: "acme", Rule: "r", SubjectKind: "ticket", State: tpv1.EscalationState_ESCALATION_STATE_OPEN,
				Labels: map[string]string{"tenant": "acme", "rule": "r"}}}
	}
	first := change("T-1")
	if err := d.Handle(ctx, []*tpv1.EscalationChange{first}); err == nil {
		t.Fatal("the first delivery's plan failed, yet Handle reported no error (the change would be acknowledged)")
	}
	key, _ := d.Routing().Config.Root.GroupKey(Labels(first))
	timer := groupTimer("acme", deliveries.GroupID("hook", key))
	if _, ok, err := f.queue.Due(ctx, timer); err != nil || ok {
		t.Fatalf("after the failed plan the group's send is planned (%v, %v): the test does not set up the loss", ok, err)
	}
	// A second change joins the group: it is not the group's first, so it plans nothing itself.
	if err := d.Handle(ctx, []*tpv1.EscalationChange{change("T-2")}); err != nil {
		t.Fatal(err)
	}
	// The first change is redelivered.
	if err := d.Handle(ctx, []*tpv1.EscalationChange{first}); err != nil {
		t.Fatal(err)
	}
	if wait := f.due(t, timer); wait != 30*time.Second {
		t.Fatalf("the redelivery planned the group send in %s, want the 30s group_wait", wait)
	}
	f.advance(30 * time.Second)
	f.fire(t)
	if f.hits.Load() != 1 {
		t.Fatalf("%d requests after group_wait, want the group's one send", f.hits.Load())
	}
	list, _, err := f.store.List(ctx, "acme", deliveries.Filter{}, 10, "")
	if err != nil || len(list) != 1 || len(list[0].Changes) != 2 {
		t.Fatalf("delivery log %v %+v, want one delivery of both changes", err, list)
	}
}

// A flush that died after taking its batch leaves the batch in the group's outbox, and the next
// flush sends that batch again. Changes that came in between are pending in the group, their
// send planned by the first of them; that plan is the one the next flush uses up, so the release
// of the old batch must plan their send, or they would wait for good (as would every later
// change of the group, which is not the group's first pending one). Found by the chaos suite: a
// Redis failover in the middle of a flush left 113 changes pending with no send planned.
func TestChangesPendingBehindALeftoverBatchAreSent(t *testing.T) {
	f := newFixture(t, "1h")
	f.status.Store(200)
	ctx := context.Background()
	change := func(ticket string) *tpv1.EscalationChange {
		return &tpv1.EscalationChange{Kind: tpv1.ChangeKind_CHANGE_KIND_TRIGGERED, Sequence: 1, At: timestamppb.New(f.now()),
			Escalation: &tpv1.Escalation{Id: "r.t." + ticket + ".1", Tenant: "acme", Rule: "r", SubjectKind: "ticket", State: tpv1.EscalationState_ESCALATION_STATE_OPEN,
				Labels: map[string]string{"tenant": "acme", "rule": "r"}}}
	}
	first := change("T-1")
	if err := f.d.Handle(ctx, []*tpv1.EscalationChange{first}); err != nil {
		t.Fatal(err)
	}
	key, _ := f.d.Routing().Config.Root.GroupKey(Labels(first))
	gid := deliveries.GroupID("hook", key)
	timer := groupTimer("acme", gid)
	f.advance(30 * time.Second)
	// The flush dies after taking T-1: its timer's claim is redelivered later, the outbox kept.
	if b, err := f.store.Take(ctx, "acme", gid, f.now()); err != nil || b == nil || len(b.Changes) != 1 {
		t.Fatalf("take: %v %+v", err, b)
	}
	// T-2 comes meanwhile: the group's first pending change, it plans a send (no later than the
	// one still due).
	if err := f.d.Handle(ctx, []*tpv1.EscalationChange{change("T-2")}); err != nil {
		t.Fatal(err)
	}
	if n := f.fire(t); n != 1 || f.hits.Load() != 1 {
		t.Fatalf("fired %d timers, %d requests; want the redelivered flush sending the old batch", n, f.hits.Load())
	}
	list, _, err := f.store.List(ctx, "acme", deliveries.Filter{}, 10, "")
	if err != nil || len(list) != 1 || len(list[0].Changes) != 1 || !strings.HasPrefix(list[0].Changes[0], "r.t.T-1.1#") {
		t.Fatalf("delivery log %v %+v, want the old batch of T-1", err, list)
	}
	// T-2 waits for the group interval after the last send (5m, the default), and its send is planned.
	if wait := f.due(t, timer); wait != 5*time.Minute {
		t.Fatalf("T-2's send planned in %s, want the 5m group interval", wait)
	}
	f.advance(5 * time.Minute)
	if n := f.fire(t); n == 0 || f.hits.Load() != 2 {
		t.Fatalf("fired %d timers, %d requests after the group interval; want T-2 sent", n, f.hits.Load())
	}
	list, _, err = f.store.List(ctx, "acme", deliveries.Filter{}, 10, "")
	if err != nil || len(list) != 2 {
		t.Fatalf("delivery log %v %+v, want two deliveries", err, list)
	}
	for _, rec := range list {
		if len(rec.Changes) == 1 && strings.HasPrefix(rec.Changes[0], "r.t.T-2.1#") {
			return
		}
	}
	t.Fatalf("no delivery of T-2 alone in %+v", list)
}
