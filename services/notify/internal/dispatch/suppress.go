package dispatch

import (
	"context"
	"log/slog"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/routing"
)

// muter says why a notice must not go to its route's receiver now, or "" to send it, with the
// kind of reason for metrics.
type muter interface {
	mutes(ctx context.Context, n *notice) (reason, kind string, err error)
}

// suppressStage asks its muters in order whether a notice is held back. The first reason stops
// the notice, which is logged as a suppressed delivery with that reason: nothing is dropped
// silently.
type suppressStage struct {
	muters  []muter
	store   *deliveries.Store
	metrics *Metrics
}

func (s suppressStage) exec(ctx context.Context, _ *slog.Logger, ns []*notice) ([]*notice, error) {
	return each(ns, func(n *notice) (bool, error) {
		for _, m := range s.muters {
			reason, kind, err := m.mutes(ctx, n)
			if err != nil {
				return false, err
			}
			if reason != "" {
				return false, s.record(ctx, n, reason, kind)
			}
		}
		return true, nil
	})
}

func (s suppressStage) record(ctx context.Context, n *notice, reason, kind string) error {
	s.metrics.suppress(n.route.Receiver, kind)
	// The change reference is usable in a key: escalation ids hold dots, never '#'.
	rec := deliveries.NewRecord(n.tenant, n.gid+".s."+deliveries.ChangeRef(n.change), n.route.Receiver, n.key, n.groupLabels,
		[]*tpv1.EscalationChange{n.change}, nil, n.now)
	rec.Status, rec.Reason = tpv1.DeliveryStatus_DELIVERY_STATUS_SUPPRESSED, reason
	_, err := s.store.Create(ctx, rec)
	return err
}

// silences mutes what an active silence of the routing file matches.
type silences struct{ cfg *routing.Config }

func (m silences) mutes(_ context.Context, n *notice) (string, string, error) {
	if s := m.cfg.Silenced(n.labels, n.now); s != nil {
		return "silenced until " + s.Ends.UTC().Format(time.RFC3339) + ": " + s.Comment, "silence", nil
	}
	return "", "", nil
}

// quietHours mutes what a route takes during its quiet hours.
type quietHours struct{}

func (quietHours) mutes(_ context.Context, n *notice) (string, string, error) {
	if n.route.QuietAt(n.now) {
		return "quiet hours (" + n.route.QuietName + ")", "quiet_hours", nil
	}
	return "", "", nil
}

// inhibitions mutes what an inhibition rule holds back while another open escalation matches
// its source.
type inhibitions struct{ cfg *routing.Config }

func (m inhibitions) mutes(_ context.Context, n *notice) (string, string, error) {
	others := make([]map[string]string, 0, len(n.open))
	for _, o := range n.open {
		if o["escalation_id"] != n.labels["escalation_id"] {
			others = append(others, o)
		}
	}
	if rule, src := m.cfg.Inhibited(n.labels, others); rule != nil {
		return "inhibited by open escalation " + src["escalation_id"] + " (" + src["rule"] + ")", "inhibited", nil
	}
	return "", "", nil
}

// disabledReceivers mutes what goes to a receiver a 410 switched off, until its address
// changes.
type disabledReceivers struct {
	store *deliveries.Store
	r     *Routing
}

func (m disabledReceivers) mutes(ctx context.Context, n *notice) (string, string, error) {
	ss := m.r.senders[n.route.Receiver]
	if ss == nil {
		return "", "", nil
	}
	dis, err := m.store.IsDisabled(ctx, n.route.Receiver, ss.fingerprint)
	if err != nil || dis == nil {
		return "", "", err
	}
	return "receiver disabled: " + dis.Reason, "disabled", nil
}
