package adaptertest

import (
	"errors"
	"slices"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// Map maps d through a and fails t if a rejects it.
func Map(t testing.TB, a adapter.Adapter, d adapter.Delivery) adapter.Result {
	t.Helper()
	res, err := a.Map(d)
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	return res
}

// One maps d through a and returns its single event, failing t otherwise.
func One(t testing.TB, a adapter.Adapter, d adapter.Delivery) canonical.Event {
	t.Helper()
	res := Map(t, a, d)
	if len(res.Events) != 1 {
		t.Fatalf("got %d events (skipped %v), want 1", len(res.Events), res.Skipped)
	}
	return res.Events[0]
}

// Problem maps d through a and fails t unless a rejects it with canonical.Problems whose first
// problem names field.
func Problem(t testing.TB, a adapter.Adapter, d adapter.Delivery, field string) {
	t.Helper()
	_, err := a.Map(d)
	var ps canonical.Problems
	if !errors.As(err, &ps) || len(ps.List) == 0 {
		t.Fatalf("error %v, want canonical.Problems", err)
	}
	if ps.List[0].Field != field {
		t.Errorf("field %q (%s), want %q", ps.List[0].Field, ps.List[0].Reason, field)
	}
}

// Public shows an event's public flag in a failure message: nil stays nil, not an address.
func Public(b *bool) any {
	if b == nil {
		return nil
	}
	return *b
}

// CheckConversation replays the recorded ticket life in dir through a and checks what every
// source's conversation must satisfy: each delivery (by case name) yields exactly the event
// types of want and skips nothing, event ids are unique, every event is on expect.json's ticket,
// and the figures derived from the events (Derive) are expect.json's. It returns the events in
// order, with the expectation, for the source's own checks.
func CheckConversation(t testing.TB, a adapter.Adapter, dir string, want map[string][]string) ([]canonical.Event, Expectation) {
	t.Helper()
	expect := ReadExpectation(t, dir)
	steps := Conversation(t, a, dir)
	if len(steps) != len(want) {
		t.Fatalf("conversation has %d deliveries, the test expects %d", len(steps), len(want))
	}
	seen := map[string]string{}
	for _, step := range steps {
		var types []string
		for _, ev := range step.Result.Events {
			types = append(types, ev.Type)
			if prev, dup := seen[ev.ID]; dup {
				t.Errorf("%s: event id %s already used by %s", step.Name, ev.ID, prev)
			}
			seen[ev.ID] = step.Name
			if ev.TicketID != expect.TicketID {
				t.Errorf("%s: ticket_id %q, want %q", step.Name, ev.TicketID, expect.TicketID)
			}
		}
		if !slices.Equal(types, want[step.Name]) || len(step.Result.Skipped) > 0 {
			t.Errorf("%s: types %v skipped %v, want %v", step.Name, types, step.Result.Skipped, want[step.Name])
		}
	}
	events := Events(steps)
	if got := Derive(t, events); got != expect {
		t.Errorf("derived %+v from the events, expect.json says %+v", got, expect)
	}
	return events, expect
}
