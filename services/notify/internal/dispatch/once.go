package dispatch

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/delivered"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
)

// Delivered is the record, outside Redis, of the changes delivered to each receiver (package
// delivered): Redis may lose its latest writes, and the replay that repairs them must not send
// a change a second time.
type Delivered interface {
	Lookup(ctx context.Context, tenant, receiver string, refs []string) (map[string]delivered.Entry, error)
	Record(ctx context.Context, tenant, receiver string, refs []string, e delivered.Entry) error
}

// onceRefs names each change of a delivery in the delivered record. A reminder repeats changes
// on purpose, so it is named apart from the change, by its group's flush number: a Redis that
// went back in time reminds again under the number it lost, and that reminder was sent already.
// A reminder never stops the change itself.
func onceRefs(rec *deliveries.Record) []string {
	out := make([]string, len(rec.Changes))
	for i, ref := range rec.Changes {
		out[i] = ref
		if rec.Reminder {
			out[i] = ref + "#remind@" + deliveries.FlushOf(rec.ID)
		}
	}
	return out
}

// onceStage drops, before an attempt, the changes the delivered record says the receiver got
// already: a replay after a Redis loss brought them back. They are logged as a suppressed
// delivery of their own (<delivery id>.dup) and the delivery goes on with the rest; a delivery
// with nothing left is itself logged as suppressed and its timer cancelled. When the record
// cannot be read, the delivery is not attempted, and its timer (or its group's) brings it back:
// never sent blind, never dropped.
type onceStage struct {
	record  Delivered
	store   *deliveries.Store
	timers  Timers
	metrics *Metrics
	now     func() time.Time
}

func (s onceStage) exec(ctx context.Context, log *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		rec := d.rec
		refs := onceRefs(rec)
		found, err := s.record.Lookup(ctx, rec.Tenant, rec.Receiver, refs)
		if err != nil {
			return false, fmt.Errorf("delivery %s not attempted: %w", rec.ID, err)
		}
		if len(found) == 0 {
			return true, nil
		}
		var keep, drop []int
		for i, ref := range refs {
			if _, ok := found[ref]; ok {
				drop = append(drop, i)
			} else {
				keep = append(keep, i)
			}
		}
		reason := alreadyDelivered(rec, refs, drop, found)
		s.metrics.redelivery(rec.Receiver, len(drop))
		log.Info("changes already delivered to the receiver; not sent again", "tenant", rec.Tenant, "receiver", rec.Receiver,
			"delivery", rec.ID, "changes", len(drop), "left", len(keep))
		if len(keep) == 0 {
			if err := s.store.Suppressed(ctx, rec.Tenant, rec.ID, reason, s.now()); err != nil {
				return false, err
			}
			return false, s.timers.Cancel(ctx, d.timer())
		}
		// The dropped changes are logged first: should narrowing fail, the next attempt finds
		// them again and the log already has them.
		dup := pick(rec, drop)
		dup.ID, dup.Data = rec.ID+".dup", nil
		dup.Created, dup.Updated = s.now(), s.now()
		dup.Status, dup.Reason = tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED, reason
		if _, err := s.store.Create(ctx, dup); err != nil {
			return false, err
		}
		narrowed := pick(rec, keep)
		if err := s.store.Narrowed(ctx, narrowed); err != nil {
			return false, err
		}
		d.rec = narrowed
		return true, nil
	})
}

// pick is a copy of rec with only the changes at idx.
func pick(rec *deliveries.Record, idx []int) *deliveries.Record {
	out := *rec
	out.Changes, out.EscalationIDs, out.Data = nil, nil, nil
	seen := map[string]bool{}
	for _, i := range idx {
		ref := rec.Changes[i]
		out.Changes = append(out.Changes, ref)
		if i < len(rec.Data) {
			out.Data = append(out.Data, rec.Data[i])
		}
		// A reference is "<escalation id>#<sequence>"; escalation ids never hold '#'.
		if id, _, ok := strings.Cut(ref, "#"); ok && !seen[id] {
			seen[id] = true
			out.EscalationIDs = append(out.EscalationIDs, id)
		}
	}
	return &out
}

// maxReasonRefs bounds the changes a reason names.
const maxReasonRefs = 3

// alreadyDelivered says which changes were delivered before, by which delivery and when.
func alreadyDelivered(rec *deliveries.Record, refs []string, drop []int, found map[string]delivered.Entry) string {
	var b strings.Builder
	b.WriteString("already delivered to " + rec.Receiver + ", not sent again:")
	for n, i := range drop {
		if n == maxReasonRefs {
			b.WriteString(" and " + strconv.Itoa(len(drop)-n) + " more")
			break
		}
		if n > 0 {
			b.WriteString(",")
		}
		e := found[refs[i]]
		b.WriteString(" " + rec.Changes[i])
		if e.Delivery != "" {
			b.WriteString(" by delivery " + e.Delivery + " at " + e.At.UTC().Format(time.RFC3339))
		}
	}
	return b.String()
}

// markStage records a delivered message's changes in the delivered record, before the delivery
// is logged as delivered: a process that dies in between leaves a pending delivery whose next
// attempt finds its changes delivered. A record that fails is counted and reported, and the
// delivery still settles as delivered (it was): only a Redis loss on top could then repeat it.
type markStage struct {
	record  Delivered
	metrics *Metrics
}

func (s markStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		if d.status != tpv1.DeliveryStatus_DELIVERY_STATUS_DELIVERED {
			return true, nil
		}
		rec := d.rec
		if err := s.record.Record(ctx, rec.Tenant, rec.Receiver, onceRefs(rec), delivered.Entry{Delivery: rec.ID, At: d.attempt.At}); err != nil {
			s.metrics.recordFailed(rec.Receiver)
			return true, fmt.Errorf("delivery %s sent but not recorded as delivered: %w", rec.ID, err)
		}
		return true, nil
	})
}
