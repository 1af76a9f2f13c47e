package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/deadletter"
)

// Publisher stores dead letters.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// deadLetterStage puts a failed delivery, with every attempt, on the DEADLETTER stream before
// it is logged as failed. Deliveries with another verdict pass untouched.
type deadLetterStage struct{ pub Publisher }

func (s deadLetterStage) exec(ctx context.Context, _ *slog.Logger, ds []*delivery) ([]*delivery, error) {
	return each(ds, func(d *delivery) (bool, error) {
		if d.status != tpv1.DeliveryStatus_DELIVERY_STATUS_FAILED {
			return true, nil
		}
		// Not dead-lettered yet: the delivery stays pending and its timer retries this.
		err := publishDeadLetter(ctx, s.pub, d.rec, d.attempt, d.reason)
		return err == nil, err
	})
}

// publishDeadLetter publishes rec as failed for reason, with its attempts and the last one, a.
func publishDeadLetter(ctx context.Context, pub Publisher, rec *deliveries.Record, a deliveries.Attempt, reason string) error {
	all := append(append([]deliveries.Attempt{}, rec.Attempts...), a)
	body, err := json.Marshal(struct {
		*deliveries.Record
		Status   string               `json:"status"`
		Reason   string               `json:"reason"`
		Attempts []deliveries.Attempt `json:"attempts"`
	}{rec, "failed", reason, all})
	if err != nil {
		return err
	}
	if err := deadletter.Publish(ctx, pub, deadletter.Letter{Service: "notify", Tenant: rec.Tenant, Data: body,
		Reason: reason, Delivery: rec.ID, MsgID: "notify-" + rec.Tenant + "-" + rec.ID}); err != nil {
		return fmt.Errorf("dead-letter delivery %s: %w", rec.ID, err)
	}
	return nil
}
