package dispatch

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/delivered"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

// pending logs a pending delivery of the changes (escalation ids, sequence 1) to the hook and
// sets its timer an hour out.
func (f *fixture) pending(t *testing.T, id string, reminder bool, escalations ...string) *deliveries.Record {
	t.Helper()
	var cs []*tpv1.EscalationChange
	var data [][]byte
	for _, e := range escalations {
		c := escalationChange(e, 1, openState, map[string]string{"rule": "r"})
		b, err := proto.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		cs, data = append(cs, c), append(data, b)
	}
	rec := deliveries.NewRecord("acme", id, "hook", "k", map[string]string{"tenant": "acme"}, cs, data, f.now())
	rec.Reminder = reminder
	if _, err := f.store.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := f.queue.Schedule(context.Background(), deliveryTimer("acme", id), f.now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return rec
}

func (f *fixture) onceStage() onceStage {
	m, _ := NewMetrics(nil)
	return onceStage{record: f.once, store: f.store, timers: f.queue, metrics: m, now: f.now}
}

// Before an attempt, the changes the delivered record has for the receiver are taken out and
// logged as suppressed; a delivery left with nothing is suppressed itself, its timer
// cancelled. A reminder is recorded apart from the change it repeats.
func TestOnceStage(t *testing.T) {
	at := time.Date(2026, 3, 2, 8, 59, 0, 0, time.UTC)
	tests := []struct {
		name     string
		reminder bool
		// id is the delivery's id, g.7 when empty.
		id       string
		recorded []string // refs in the delivered record, by delivery "g0.1"
		// wantSent are the changes the delivery goes on with; empty: it is suppressed.
		wantSent   []string
		wantReason string
	}{
		{name: "nothing delivered", wantSent: []string{"a.t.1.1#1", "b.t.2.1#1"}},
		{name: "one delivered", recorded: []string{"a.t.1.1#1"}, wantSent: []string{"b.t.2.1#1"},
			wantReason: "already delivered to hook, not sent again: a.t.1.1#1 by delivery g0.1 at 2026-03-02T08:59:00Z"},
		{name: "all delivered", recorded: []string{"a.t.1.1#1", "b.t.2.1#1", "c.t.3.1#1"},
			wantReason: "already delivered to hook, not sent again: a.t.1.1#1 by delivery g0.1 at 2026-03-02T08:59:00Z, b.t.2.1#1 by delivery g0.1 at 2026-03-02T08:59:00Z"},
		{name: "reminder of delivered changes", reminder: true, recorded: []string{"a.t.1.1#1", "b.t.2.1#1"},
			wantSent: []string{"a.t.1.1#1", "b.t.2.1#1"}},
		{name: "reminder sent before", reminder: true, recorded: []string{"a.t.1.1#1#remind@g.7"}, id: "g.7.0badc0de",
			wantSent: []string{"b.t.2.1#1"}, wantReason: "already delivered to hook, not sent again: a.t.1.1#1 by delivery g0.1 at 2026-03-02T08:59:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, "1h")
			ctx := context.Background()
			id := cmp.Or(tt.id, "g.7")
			rec := f.pending(t, id, tt.reminder, "a.t.1.1", "b.t.2.1")
			if err := f.once.Record(ctx, "acme", "hook", tt.recorded, delivered.Entry{Delivery: "g0.1", At: at}); err != nil {
				t.Fatal(err)
			}
			out, err := f.onceStage().exec(ctx, quiet, []*delivery{{rec: rec}})
			if err != nil {
				t.Fatal(err)
			}
			logged := f.get(t, id)
			if len(tt.wantSent) == 0 {
				if len(out) != 0 || logged.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED || logged.Reason != tt.wantReason {
					t.Errorf("passed on %d; logged %v %q, want suppressed %q", len(out), logged.Status, logged.Reason, tt.wantReason)
				}
				if _, ok := f.hasTimer(t, id); ok {
					t.Error("a suppressed delivery still has a timer")
				}
				return
			}
			if len(out) != 1 || !slices.Equal(out[0].rec.Changes, tt.wantSent) || len(out[0].rec.Data) != len(tt.wantSent) {
				t.Fatalf("passed on %d deliveries: %+v; want the changes %v", len(out), out, tt.wantSent)
			}
			if !slices.Equal(logged.Changes, tt.wantSent) || logged.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING ||
				len(logged.Data) != len(tt.wantSent) || len(logged.EscalationIDs) != len(tt.wantSent) {
				t.Errorf("logged %v with %v (%d data, escalations %v); want pending with %v", logged.Status, logged.Changes, len(logged.Data), logged.EscalationIDs, tt.wantSent)
			}
			dup, err := f.store.Get(ctx, "acme", id+".dup")
			if tt.wantReason == "" {
				if err == nil {
					t.Errorf("nothing dropped, yet logged %+v", dup)
				}
				return
			}
			if err != nil || dup.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED || dup.Reason != tt.wantReason ||
				!slices.Equal(dup.Changes, []string{"a.t.1.1#1"}) || !slices.Equal(dup.EscalationIDs, []string{"a.t.1.1"}) || dup.Receiver != "hook" {
				t.Errorf("dropped changes logged as %+v (%v), want suppressed %q", dup, err, tt.wantReason)
			}
			if _, ok := f.hasTimer(t, id); !ok {
				t.Error("the delivery lost its timer")
			}
		})
	}
}

// A reason names a bounded number of changes.
func TestAlreadyDeliveredReasonIsBounded(t *testing.T) {
	rec := &deliveries.Record{Receiver: "hook"}
	found := map[string]delivered.Entry{}
	var drop []int
	for i := range 50 {
		ref := fmt.Sprintf("e.%d#1", i)
		rec.Changes = append(rec.Changes, ref)
		found[ref] = delivered.Entry{}
		drop = append(drop, i)
	}
	got := alreadyDelivered(rec, rec.Changes, drop, found)
	if want := "already delivered to hook, not sent again: e.0#1, e.1#1, e.2#1 and 47 more"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
}

// Without the delivered record, a delivery is neither attempted nor settled: it stays pending
// with its timer, and the error says why.
func TestOnceStageWithoutTheRecord(t *testing.T) {
	f := newFixture(t, "1h")
	ctx := context.Background()
	rec := f.pending(t, "g.7", false, "a.t.1.1")
	due, _ := f.hasTimer(t, "g.7")
	if err := f.js.DeleteKeyValue(ctx, delivered.Bucket); err != nil {
		t.Fatal(err)
	}
	out, err := f.onceStage().exec(ctx, quiet, []*delivery{{rec: rec}})
	if len(out) != 0 || err == nil || err.Error() != "delivery g.7 not attempted: look up delivered changes of acme/hook: nats: no responders available for request" {
		t.Fatalf("passed on %d, %v", len(out), err)
	}
	if logged := f.get(t, "g.7"); logged.Status != tpv1.DeliveryStatus_DELIVERY_STATUS_PENDING || len(logged.Attempts) != 0 {
		t.Errorf("logged %v with %d attempts", logged.Status, len(logged.Attempts))
	}
	if at, ok := f.hasTimer(t, "g.7"); !ok || !at.Equal(due) {
		t.Errorf("timer %s %v, want it left at %s", at, ok, due)
	}
}

// A delivered message's changes go into the delivered record; when that fails the delivery
// still settles as delivered, and the error says it was not recorded.
func TestMarkStage(t *testing.T) {
	f := newFixture(t, "1h")
	ctx := context.Background()
	m, _ := NewMetrics(nil)
	s := markStage{record: f.once, metrics: m}
	sent := f.pending(t, "g.1", false, "a.t.1.1", "b.t.2.1")
	failed := f.pending(t, "g.2", false, "c.t.3.1")
	ds := []*delivery{
		{rec: sent, status: tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED, attempt: deliveries.Attempt{At: f.now()}},
		{rec: failed, status: tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED, attempt: deliveries.Attempt{At: f.now()}},
	}
	out, err := s.exec(ctx, quiet, ds)
	if err != nil || len(out) != 2 {
		t.Fatalf("passed on %d, %v", len(out), err)
	}
	got, err := f.once.Lookup(ctx, "acme", "hook", []string{"a.t.1.1#1", "b.t.2.1#1", "c.t.3.1#1"})
	if err != nil || len(got) != 2 || got["a.t.1.1#1"].Delivery != "g.1" || !got["b.t.2.1#1"].At.Equal(f.now()) {
		t.Errorf("recorded %+v, %v; want the two delivered changes by g.1", got, err)
	}
	if err := f.js.DeleteKeyValue(ctx, delivered.Bucket); err != nil {
		t.Fatal(err)
	}
	out, err = s.exec(ctx, quiet, ds[:1])
	if len(out) != 1 || err == nil || err.Error() != "delivery g.1 sent but not recorded as delivered: record delivered changes of acme/hook: nats: no response from stream" {
		t.Errorf("passed on %d, %v", len(out), err)
	}
}

// Redis loses everything after a change was delivered; the replay brings the change back with
// a new one: only the new one is sent, and the old one is logged as suppressed.
func TestDeliveredOnceAcrossARedisLoss(t *testing.T) {
	f := newFixture(t, "1h")
	f.status.Store(200)
	ctx := context.Background()
	old := escalationChange("r.t.T-1.1", 1, openState, map[string]string{"rule": "r"})
	if err := f.d.Handle(ctx, []*tpv1.EscalationChange{old}); err != nil {
		t.Fatal(err)
	}
	f.advance(30 * time.Second)
	f.fire(t)
	if f.hits.Load() != 1 {
		t.Fatalf("%d requests, want the first send", f.hits.Load())
	}
	testenv.Flush(t, f.rdb)
	fresh := escalationChange("r.t.T-2.1", 1, openState, map[string]string{"rule": "r"})
	if err := f.d.Handle(ctx, []*tpv1.EscalationChange{old, fresh}); err != nil {
		t.Fatal(err)
	}
	f.advance(30 * time.Second)
	for range 3 {
		f.fire(t)
	}
	if f.hits.Load() != 2 {
		t.Fatalf("%d requests, want one more, for the new change", f.hits.Load())
	}
	list, _, err := f.store.List(ctx, "acme", deliveries.Filter{}, 10, "")
	if err != nil || len(list) != 2 {
		t.Fatalf("log: %v %+v", err, list)
	}
	byStatus := map[tpv1.DeliveryStatus]*deliveries.Record{}
	for _, r := range list {
		byStatus[r.Status] = r
	}
	sent, dup := byStatus[tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED], byStatus[tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED]
	if sent == nil || !slices.Equal(sent.Changes, []string{"r.t.T-2.1#1"}) {
		t.Errorf("delivered: %+v", sent)
	}
	if dup == nil || !slices.Equal(dup.Changes, []string{"r.t.T-1.1#1"}) || dup.ID != sent.ID+".dup" {
		t.Errorf("suppressed: %+v", dup)
	}
}

// While the delivered record is unavailable, a group's send waits: nothing is sent, and the
// group's timer brings the batch back once its lease ends; then it is sent once.
func TestGroupSendWaitsForTheRecord(t *testing.T) {
	f := newFixture(t, "1h")
	f.status.Store(200)
	ctx := context.Background()
	if err := f.js.DeleteKeyValue(ctx, delivered.Bucket); err != nil {
		t.Fatal(err)
	}
	c := escalationChange("r.t.T-1.1", 1, openState, map[string]string{"rule": "r"})
	if err := f.d.Handle(ctx, []*tpv1.EscalationChange{c}); err != nil {
		t.Fatal(err)
	}
	f.advance(30 * time.Second)
	cs, err := f.queue.Claim(ctx, f.now())
	if err != nil || len(cs) != 1 {
		t.Fatalf("claimed %d: %v", len(cs), err)
	}
	errs := f.d.Fire(ctx, cs)
	f.d.Wait()
	if len(errs) != 1 || errs[0] == nil || !regexp.MustCompile(`^delivery [0-9a-f]{24}\.1\.[0-9a-f]{8} not attempted: look up delivered changes of acme/hook: nats: no responders available for request$`).MatchString(errs[0].Error()) {
		t.Fatalf("Fire = %v", errs)
	}
	if f.hits.Load() != 0 {
		t.Fatalf("%d requests sent blind", f.hits.Load())
	}
	if f.once, err = delivered.Open(ctx, f.js, time.Hour, 1); err != nil {
		t.Fatal(err)
	}
	// The claim was not released: it comes back after its lease.
	f.advance(time.Minute)
	for range 3 {
		f.fire(t)
	}
	if f.hits.Load() != 1 {
		t.Fatalf("%d requests once the record is back, want 1", f.hits.Load())
	}
	list, _, err := f.store.List(ctx, "acme", deliveries.Filter{Status: tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED}, 10, "")
	if err != nil || len(list) != 1 || !slices.Equal(list[0].Changes, []string{"r.t.T-1.1#1"}) {
		t.Errorf("delivered: %v %+v", err, list)
	}
}
