package store

import (
	"errors"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// qaLife is a ticket's QA state: three reviews, one re-scored, one failed automatically, by
// agents and teams that change between events and back.
func qaLife() []contrib.Event {
	at := int64(1_772_442_000_000)
	mk := func(id, review, agent, team string, centi uint16, fail bool, minutes int64) contrib.Event {
		return contrib.Event{Key: contrib.KeyOf(id), Type: tpv1.EventType_EVENT_TYPE_QA_SCORED, AtMillis: at + minutes*60_000,
			ActorID: "lead", Actor: tpv1.ActorKind_ACTOR_KIND_AGENT,
			QAReview: contrib.KeyOf(review), QAAgent: agent, QATeam: team, QAScore: centi, QAAutoFail: fail}
	}
	return []contrib.Event{
		mk("q1", "r1", "ana", "billing", 8750, false, 0),
		mk("q2", "r2", "bo", "", 0, true, 3),
		mk("q3", "r1", "ana", "billing", 10000, false, 90),
	}
}

func TestStateCodecQAReviewsRoundTrip(t *testing.T) {
	evs := qaLife()
	applied := contrib.Compute(evs, contrib.DefaultSLA()).Values
	b := encodeState(ticketState{Events: evs, Applied: applied})
	checkDecodes(t, b, evs, applied)
	for n := range len(b) {
		if _, err := decodeState(b[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("state cut to %d of %d bytes decoded with %v, want errCorrupt", n, len(b), err)
		}
	}
}

// A review's score above 100 or an auto-fail flag other than 0 or 1 is not something the
// encoder writes: such a state is refused.
func TestStateCodecRefusesMalformedQAReviews(t *testing.T) {
	ev := qaLife()[0]
	ev.QAScore = 10001
	if _, err := decodeState(encodeState(ticketState{Events: []contrib.Event{ev}})); !errors.Is(err, errCorrupt) {
		t.Errorf("a score of 100.01 decoded with %v, want errCorrupt", err)
	}
	ev.QAScore = 5000
	b := encodeState(ticketState{Events: []contrib.Event{ev}})
	// The auto-fail flag is the last byte of the event, before the (empty) contribution's count.
	i := len(b) - 2
	if b[i] != 0 {
		t.Fatalf("byte %d is %d, not the auto-fail flag", i, b[i])
	}
	b[i] = 2
	if _, err := decodeState(b); !errors.Is(err, errCorrupt) {
		t.Errorf("an auto-fail flag of 2 decoded with %v, want errCorrupt", err)
	}
}
