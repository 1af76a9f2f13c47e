package dispatch

import (
	"context"
	"log/slog"

	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// groupStage adds a notice's change to its receiver's group, once: a change the group already
// had (a redelivery) stops there. It passes on the notices whose group now needs a send
// planned, with the send's timer: group_wait after the group's first change, or
// group_interval after its last send.
type groupStage struct{ store *deliveries.Store }

func (s groupStage) exec(ctx context.Context, _ *slog.Logger, ns []*notice) ([]*notice, error) {
	return each(ns, func(n *notice) (bool, error) {
		added, err := s.store.Add(ctx, n.tenant, n.route.Receiver, n.gid, n.key, n.groupLabels, n.change, n.data, n.route.RepeatInterval)
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
		n.wake = timers.Timer{ID: groupTimer(n.tenant, n.gid), Due: due}
		return true, nil
	})
}
