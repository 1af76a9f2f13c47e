package dispatch

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// groupStage adds a notice's change to its receiver's group, once: a change the group already
// had (a redelivery) stops there. It passes on the notices whose group now needs a send
// planned, with the send's timer: group_wait after the group's first change, or
// group_interval after its last send.
type groupStage struct{ store *deliveries.Store }

func (s groupStage) exec(ctx context.Context, _ *slog.Logger, ns []*notice) ([]*notice, error) {
	return each(ns, func(n *notice) (bool, error) {
		added, err := s.store.Add(ctx, n.tenant, n.route.Receiver, n.gid, n.key, n.groupLabels, n.change, n.data, n.route.RepeatInterval, n.route.GroupInterval)
		if err != nil || !added.PlanFlush {
			return false, err
		}
		due := n.now.Add(n.route.GroupWait)
		if !added.LastSent.IsZero() {
			due = added.LastSent.Add(n.route.GroupInterval)
			if due.Before(n.now) {
				due = n.now
			}
		}
		n.wake = timers.Timer{ID: groupTimer(n.tenant, n.gid), Due: due, Trace: telemetry.Traceparent(ctx)}
		trace.SpanFromContext(ctx).AddEvent("grouped", trace.WithAttributes(telemetry.AttrReceiver.String(n.route.Receiver),
			attribute.String("notify.group_due", due.UTC().Format(time.RFC3339Nano))))
		return true, nil
	})
}
