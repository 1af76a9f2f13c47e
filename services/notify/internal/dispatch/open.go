package dispatch

import (
	"context"
	"log/slog"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/deliveries"
)

// openStage keeps the store's set of open escalations up to date with each change, and hands
// each notice the tenant's open escalations when an inhibition rule could need them. It lives
// for one batch: the open escalations are read once per tenant and batch, as a tenant may have
// thousands open.
type openStage struct {
	store    *deliveries.Store
	inhibits bool
	open     map[string][]map[string]string
}

func newOpenStage(store *deliveries.Store, inhibits bool) *openStage {
	return &openStage{store: store, inhibits: inhibits, open: map[string][]map[string]string{}}
}

func (s *openStage) exec(ctx context.Context, _ *slog.Logger, ns []*notice) ([]*notice, error) {
	return each(ns, func(n *notice) (bool, error) {
		e := n.change.GetEscalation()
		isOpen := e.GetState() != tpv1.EscalationState_ESCALATION_STATE_RESOLVED
		if err := s.store.Open(ctx, n.tenant, e.GetId(), n.labels, isOpen); err != nil {
			return false, err
		}
		if _, ok := s.open[n.tenant]; !ok && s.inhibits {
			ls, err := s.store.OpenLabels(ctx, n.tenant)
			if err != nil {
				return false, err
			}
			s.open[n.tenant] = ls
		}
		n.open = s.open[n.tenant]
		return true, nil
	})
}
