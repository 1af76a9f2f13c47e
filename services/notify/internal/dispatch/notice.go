package dispatch

import (
	"strings"
	"time"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/notify/internal/routing"
	"github.com/ticketpulse/ticketpulse/services/platform/timers"
)

// notice is one escalation change on its way through the routing stages: first as the change
// itself, then once per route that takes it.
type notice struct {
	tenant string
	change *tpv1.EscalationChange
	labels map[string]string
	now    time.Time
	// open are the labels of the tenant's open escalations, read only when an inhibition rule
	// could apply.
	open []map[string]string
	// data is the change encoded, once for all its routes.
	data []byte

	// Set per route by the route stage.
	route       *routing.Route
	key         string
	groupLabels map[string]string
	gid         string

	// wake is the group's send to plan, set by the group stage.
	wake timers.Timer
}

func newNotice(c *tpv1.EscalationChange, now time.Time) *notice {
	return &notice{tenant: c.GetEscalation().GetTenant(), change: c, labels: Labels(c), now: now}
}

func kindWord(k tpv1.ChangeKind) string {
	return strings.ToLower(strings.TrimPrefix(k.String(), "CHANGE_KIND_"))
}

func stateWord(s tpv1.EscalationState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "ESCALATION_STATE_"))
}

// Labels are what routes, silences and inhibition rules match: the escalation's labels plus
// subject_kind, escalation_id, change (the change's kind) and state.
func Labels(c *tpv1.EscalationChange) map[string]string {
	e := c.GetEscalation()
	out := make(map[string]string, len(e.GetLabels())+4)
	for k, v := range e.GetLabels() {
		out[k] = v
	}
	out["subject_kind"] = e.GetSubjectKind()
	out["escalation_id"] = e.GetId()
	out["change"] = kindWord(c.GetKind())
	out["state"] = stateWord(e.GetState())
	// The escalation's own tenant, never a label of the same name: routes and TestReceiver's
	// reach decide by tenant, so a label must not move an escalation into another tenant's route.
	out["tenant"] = e.GetTenant()
	return out
}
