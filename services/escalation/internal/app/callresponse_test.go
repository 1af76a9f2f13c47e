package app

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/slapolicy/responsetest"
)

// The histories kpi and the judge agree on (package responsetest), through the running service:
// published on TICKETS, stored in the ticket log in Redis, judged. A ticket answered only by
// phone raises no first-response breach, and neither does one answered by phone in the minute of
// its creation or with its solve, or one whose call events came twice; the same ticket with an
// abandoned, outbound or unnamed call, or with a call of no ticket under its id, raises one; an
// abandoned call leaves the next response to breach.
func TestAnsweredCallsThroughTheService(t *testing.T) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte(responsetest.Rules), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	// Judged as they arrive, 45 minutes after they began: the cases' Now.
	cases := responsetest.Cases("svc-", s.clock.now().Add(-45*time.Minute))
	var want []string
	for _, tc := range cases {
		s.publish(t, tc.Events...)
		for _, e := range tc.Events {
			if e.Call != nil {
				// A producer's retry under a message id of its own: past the stream's
				// deduplication, the same event reaches the log twice.
				s.publishAgain(t, e)
			}
		}
		if tc.First == responsetest.Breached {
			want = append(want, tc.Ticket+"/sla-first-response")
		}
		if tc.Next == responsetest.Breached {
			want = append(want, tc.Ticket+"/sla-next-response")
		}
	}
	slices.Sort(want)
	raised := func() []string {
		var got []string
		for _, c := range s.changes(t) {
			got = append(got, c.GetEscalation().GetSubjectId()+"/"+c.GetEscalation().GetRule())
			if c.GetKind() != tpv1.ChangeKind_CHANGE_KIND_TRIGGERED || c.GetEscalation().GetSeverity() != tpv1.Severity_SEVERITY_CRITICAL {
				t.Errorf("change %s %s on %s, want only breaches triggered", c.GetKind(), c.GetEscalation().GetSeverity(), c.GetEscalation().GetSubjectId())
			}
		}
		slices.Sort(got)
		return got
	}
	waitFor(t, "the breaches", func() bool { return len(s.changes(t)) >= len(want) })
	// The answered tickets were published first; give a late judgement time to show.
	time.Sleep(500 * time.Millisecond)
	if got := raised(); !slices.Equal(got, want) {
		t.Errorf("escalations %v\nwant %v", got, want)
	}
}

// publishAgain stores ev in TICKETS once more under a new message id, as a producer that retried
// after a lost acknowledgement past the duplicate window would.
func (s *stack) publishAgain(t *testing.T, ev *tpv1.TicketEvent) {
	t.Helper()
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: "tickets." + ev.GetTenant() + "." + strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.GetId()+"/again")
	if _, err := s.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}
