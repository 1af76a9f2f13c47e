package store

import (
	"errors"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
)

// callLife is a ticket's state with two calls on it among its own events: agents, teams and
// queues that change between events and back, durations given and not.
func callLife() []contrib.Event {
	at := int64(1_772_442_000_000)
	in, out := tpv1.CallDirection_CALL_DIRECTION_INBOUND, tpv1.CallDirection_CALL_DIRECTION_OUTBOUND
	mk := func(id string, typ tpv1.EventType, call, agent, team, queue string, dir tpv1.CallDirection, ms int64, durs ...uint32) contrib.Event {
		e := contrib.Event{Key: contrib.KeyOf(id), Type: typ, AtMillis: at + ms, Actor: tpv1.ActorKind_ACTOR_KIND_SYSTEM,
			CallKey: contrib.KeyOf(call), CallAgent: agent, CallTeam: team, CallQueue: queue, CallDir: dir}
		for i, d := range durs {
			*[...]*uint32{&e.CallWait, &e.CallTalk, &e.CallHold, &e.CallWrapUp}[i] = d
		}
		return e
	}
	return []contrib.Event{
		{Key: contrib.KeyOf("t"), Type: tpv1.EventType_EVENT_TYPE_TICKET_CREATED, AtMillis: at, ActorID: "cus", Actor: tpv1.ActorKind_ACTOR_KIND_CUSTOMER, Assignee: "bo", Team: "billing"},
		mk("o1", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, "c1", "", "phones", "sales", in, 60_000),
		mk("a1", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED, "c1", "ana", "phones", "sales", in, 75_500, 15_500),
		mk("e1", tpv1.EventType_EVENT_TYPE_CALL_ENDED, "c1", "ana", "phones", "sales", in, 400_000, 0, 300_000, 12_345, 45_000),
		mk("o2", tpv1.EventType_EVENT_TYPE_CALL_OFFERED, "c2", "bo", "", "", out, 900_000),
		mk("e2", tpv1.EventType_EVENT_TYPE_CALL_ENDED, "c2", "bo", "", "", out, 1_000_000, 0, 90_000),
	}
}

func TestStateCodecCallsRoundTrip(t *testing.T) {
	evs := callLife()
	applied := contrib.Compute(evs, contrib.DefaultSLA()).Values
	b := encodeState(ticketState{Events: evs, Applied: applied})
	checkDecodes(t, b, evs, applied)
	for n := range len(b) {
		if _, err := decodeState(b[:n]); !errors.Is(err, errCorrupt) {
			t.Fatalf("state cut to %d of %d bytes decoded with %v, want errCorrupt", n, len(b), err)
		}
	}
}

// A direction the proto does not define is not something the encoder writes: such a state is
// refused.
func TestStateCodecRefusesUnknownCallDirection(t *testing.T) {
	ev := callLife()[1]
	ev.CallDir = 7
	if _, err := decodeState(encodeState(ticketState{Events: []contrib.Event{ev}})); !errors.Is(err, errCorrupt) {
		t.Errorf("direction 7 decoded with %v, want errCorrupt", err)
	}
}

// A state of calls only is done, so compactable, once every call in it ended or was abandoned.
func TestCallsOnlyDone(t *testing.T) {
	evs := callLife()
	tests := []struct {
		name string
		give []contrib.Event
		want bool
	}{
		{"a ticket with calls is a ticket", evs, false},
		{"every call ended", evs[1:], true},
		{"a call still in progress", evs[1:3], false},
		{"abandoned", []contrib.Event{evs[1], {Key: 9, Type: tpv1.EventType_EVENT_TYPE_CALL_ABANDONED, CallKey: evs[1].CallKey}}, true},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resolvedAfter(tt.give); got != tt.want {
				t.Errorf("resolvedAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

// The flags of a QA review and of a call are stored bits: evQA is the bit after evTags and
// evCall the one after it, whichever family's states were written first, and no other bit is
// known.
func TestStateCodecFamilyFlags(t *testing.T) {
	if evQA != evTags<<1 || evCall != evTags<<2 || evAll != evTags<<3-1 {
		t.Errorf("evTags %#x, evQA %#x, evCall %#x, evAll %#x", evTags, evQA, evCall, evAll)
	}
}
