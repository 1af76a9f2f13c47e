package dispatch

import (
	"testing"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

func TestLabelsTenantIsTheEscalations(t *testing.T) {
	for _, label := range []string{"", "globex", "acme"} {
		labels := map[string]string{"rule": "sla"}
		if label != "" {
			labels["tenant"] = label
		}
		c := &tpv1.EscalationChange{Escalation: &tpv1.Escalation{Tenant: "acme", Id: "e1", Labels: labels}}
		got := Labels(c)
		if got["tenant"] != "acme" {
			t.Errorf("label tenant=%q: routed as tenant %q, want the escalation's acme", label, got["tenant"])
		}
		if got["rule"] != "sla" {
			t.Errorf("label tenant=%q: rule label %q lost", label, got["rule"])
		}
	}
}
