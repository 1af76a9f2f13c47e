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
//
// The service judges a ticket on the events it has so far, and a batch may end between a
// ticket's creation and its answer 6 minutes later (sent 45 minutes late here): that ticket was,
// for a moment, unanswered past its target, and a breach raised then resolved is right. So the
// answered tickets' events are sent latest first: no clock starts before the creation (or a
// customer message), which then finds the answer already stored, and such a ticket must raise
// nothing at all. The breached tickets are checked by the escalations open at the end.
func TestAnsweredCallsThroughTheService(t *testing.T) {
	s := newStack(t, "")
	if err := os.WriteFile(s.rules, []byte(responsetest.Rules), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	// Judged as they arrive, 45 minutes after they began: the cases' Now.
	cases := responsetest.Cases("svc-", s.clock.now().Add(-45*time.Minute))
	var want, answered []string
	for _, tc := range cases {
		evs := tc.Events
		if tc.First != responsetest.Breached && tc.Next != responsetest.Breached {
			answered = append(answered, tc.Ticket)
			evs = slices.Clone(evs)
			slices.Reverse(evs)
		}
		s.publish(t, evs...)
		for _, e := range evs {
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
	// open is the escalations whose latest change is not their resolution.
	open := func() []string {
		latest := map[string]tpv1.ChangeKind{}
		for _, c := range s.changes(t) {
			latest[c.GetEscalation().GetSubjectId()+"/"+c.GetEscalation().GetRule()] = c.GetKind()
		}
		var got []string
		for k, kind := range latest {
			if kind != tpv1.ChangeKind_CHANGE_KIND_RESOLVED {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		return got
	}
	for deadline := time.Now().Add(15 * time.Second); !slices.Equal(open(), want) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	// A late judgement of an answered ticket would show within this.
	time.Sleep(500 * time.Millisecond)
	if got := open(); !slices.Equal(got, want) {
		t.Errorf("open escalations %v\nwant %v", got, want)
	}
	for _, c := range s.changes(t) {
		if e := c.GetEscalation(); slices.Contains(answered, e.GetSubjectId()) {
			t.Errorf("%s %s on %s, answered by phone", c.GetKind(), e.GetRule(), e.GetSubjectId())
		}
		if e := c.GetEscalation(); c.GetKind() == tpv1.ChangeKind_CHANGE_KIND_TRIGGERED && slices.Contains(want, e.GetSubjectId()+"/"+e.GetRule()) &&
			e.GetSeverity() != tpv1.Severity_SEVERITY_CRITICAL {
			t.Errorf("%s on %s triggered %s, want critical (past its target)", e.GetRule(), e.GetSubjectId(), e.GetSeverity())
		}
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
