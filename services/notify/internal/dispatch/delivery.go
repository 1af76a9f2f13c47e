package dispatch

import (
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/receiver"
)

// delivery is one logged delivery on its way through the sending stages.
type delivery struct {
	rec *deliveries.Record
	// batch is the group's batch the delivery is made from, taken at `taken` (flushes and
	// reminders; nil for a retry).
	batch *deliveries.Batch
	taken time.Time

	// sender is the receiver's sender and limits, set by the receiver stage.
	sender *sendState
	// release gives back the receiver's concurrency slot, while the delivery holds one that no
	// background attempt has taken over.
	release func()

	// note is the message (compose stage), and result and attempt its attempt (send stage).
	note    *receiver.Notification
	result  receiver.Result
	attempt deliveries.Attempt

	// status, reason and next are the attempt's verdict, which the outcome stage records:
	// delivered, pending with a retry at next, or failed.
	status tpv1.DeliveryStatus
	reason string
	next   time.Time
}

func (d *delivery) timer() string { return deliveryTimer(d.rec.Tenant, d.rec.ID) }

// fail gives the delivery the verdict failed, with the attempt that ends it.
func (d *delivery) fail(a deliveries.Attempt, reason string) {
	d.attempt, d.status, d.reason = a, tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED, reason
}

// Timer ids: kind letter, tenant, and the group or delivery id.
const sep = "\x1f"

func groupTimer(tenant, gid string) string    { return "g" + sep + tenant + sep + gid }
func reminderTimer(tenant, gid string) string { return "r" + sep + tenant + sep + gid }
func deliveryTimer(tenant, id string) string  { return "d" + sep + tenant + sep + id }
