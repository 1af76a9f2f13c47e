package contrib

import (
	"slices"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy/responsetest"
)

// The histories of package responsetest, which escalation's judge runs too
// (services/escalation/internal/judge, TestResponsesAgreeWithKPI): kpi finds the same responses
// and the same first- and next-response SLA verdicts, a ticket answered only by phone included.
// The events go through FromProto and StateID as the write path takes them, so a call with no
// ticket under the ticket's id stays out of the ticket's state.
func TestResponsesAgreeWithEscalation(t *testing.T) {
	set, err := slapolicy.Parse("rules.yaml", []byte(responsetest.Rules))
	if err != nil {
		t.Fatal(err)
	}
	sla := SLA{Rules: true, Policies: set.Tenants[responsetest.Tenant]}
	for _, tc := range responsetest.Cases("", t0) {
		t.Run(tc.Name, func(t *testing.T) {
			var evs []Event
			var replies []string
			for _, pe := range tc.Events {
				if StateID(pe) != tc.Ticket {
					continue
				}
				e := FromProto(pe)
				evs = append(evs, e)
				if isPublicReply(&e) && !slices.Contains(replies, pe.GetId()) {
					replies = append(replies, pe.GetId())
				}
			}
			slices.Sort(replies)
			if want := slices.Sorted(slices.Values(tc.Replies)); !slices.Equal(replies, want) {
				t.Errorf("responses %v, want %v", replies, want)
			}
			c := Compute(evs, sla)
			verdict := func(met, breached bucket.Counter) responsetest.Verdict {
				m, b := fig(c, bucket.Team, responsetest.Team, cf(met)), fig(c, bucket.Team, responsetest.Team, cf(breached))
				switch {
				case m == 1 && b == 0:
					return responsetest.Met
				case m == 0 && b == 1:
					return responsetest.Breached
				case m != 0 || b != 0:
					t.Fatalf("met %d, breached %d: one clock counted more than once", m, b)
				}
				return responsetest.None
			}
			if got := verdict(bucket.SLAMet, bucket.SLABreached); got != tc.First {
				t.Errorf("first response %s, want %s", got, tc.First)
			}
			if got := verdict(bucket.NextSLAMet, bucket.NextSLABreached); got != tc.Next {
				t.Errorf("next response %s, want %s", got, tc.Next)
			}
		})
	}
}
