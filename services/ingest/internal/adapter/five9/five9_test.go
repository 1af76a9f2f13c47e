package five9

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/adaptertest"
)

// The fixtures' sources are listed in testdata/README.md.

// tenant maps with the tenant's ticket_field, as the webhook handler passes it.
type tenant struct {
	Adapter
	settings adapter.Settings
}

func (t tenant) Map(d adapter.Delivery) (adapter.Result, error) {
	d.Settings = t.settings
	return t.Adapter.Map(d)
}

var linked = tenant{settings: adapter.Settings{TicketField: "ticket_id"}}

func TestGolden(t *testing.T) {
	adaptertest.Golden(t, linked, "testdata")
}

// TestConversation replays a recorded call linked to ticket 48213 from the IVR on: queued,
// accepted after 25 s, disconnected with talk, hold and wrap-up.
func TestConversation(t *testing.T) {
	want := map[string][]string{
		"01-queued":       {"call_offered"},
		"02-accepted":     {"call_answered"},
		"03-disconnected": {"call_ended"},
	}
	events, _ := adaptertest.CheckConversation(t, linked, filepath.Join("testdata", "conversation"), want)
	for _, ev := range events {
		if ev.Call.TicketID != "48213" || ev.Call.CallID != "300000000000977" || ev.Call.QueueID != "Support EN" {
			t.Errorf("%s: %+v, want call 300000000000977 on ticket 48213 in Support EN", ev.Type, ev.Call)
		}
	}
	c := events[2].Call
	if c.TalkSeconds != 342 || c.HoldSeconds != 30 || c.WrapUpSeconds != 45 || c.AgentID != "maria.lopez@acme.example" {
		t.Errorf("ended %+v, want 342 s talk, 30 s hold, 45 s wrap-up by the agent", c)
	}
	if w := events[1].Call.WaitSeconds; w != 25 {
		t.Errorf("answered after %v s, want 25", w)
	}
}

// Without ticket_field the ticket parameter is not read: the call is its own ticket.
func TestUnlinkedWithoutTicketField(t *testing.T) {
	ev := adaptertest.One(t, New(), adaptertest.Delivery(t, "testdata", "accepted-linked-ticket"))
	if ev.TicketID != "300000000000412" || ev.Call.TicketID != "" {
		t.Errorf("ticket %q call %+v, want the call id as ticket_id and no link", ev.TicketID, ev.Call)
	}
}

// A repeated connector request, even with another timestamp, is the same step of the call.
func TestRedeliveryKeepsEventIDs(t *testing.T) {
	d := adaptertest.Delivery(t, "testdata", "accepted-inbound")
	first, err := adaptertest.Retry(t, linked, d, nil)
	if err != nil || len(first.Events) != 1 {
		t.Fatalf("%v %+v", err, first)
	}
	later := d
	later.Body = []byte(strings.Replace(string(d.Body), "11%3A40%3A25", "11%3A40%3A26", 1))
	if again := adaptertest.One(t, linked, later); again.ID != first.Events[0].ID || again.OccurredAt.Equal(first.Events[0].OccurredAt) {
		t.Errorf("a resent accept: id %s at %v, first %s at %v", again.ID, again.OccurredAt, first.Events[0].ID, first.Events[0].OccurredAt)
	}
	ended := adaptertest.One(t, linked, adaptertest.Delivery(t, "testdata", "disconnected"))
	if ended.ID == first.Events[0].ID {
		t.Error("the end shares the answer's event id")
	}
}

func TestSeconds(t *testing.T) {
	tests := []struct {
		give string
		want float64
		ok   bool
	}{
		{"", 0, true},
		{"25", 25, true},
		{"25.4", 25.4, true},
		{"00:00:25", 25, true},
		{"01:02:03", 3723, true},
		{"0:05:42.250", 342.25, true},
		{"24:00:00", 86400, true},
		{"24:00:01", 0, false},
		{"86401", 0, false},
		{"-1", 0, false},
		{"00:60:00", 0, false},
		{"00:00:60", 0, false},
		{"1e3", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"0x10", 0, false},
		{"00:5:00", 0, false},
		{"-0:00:05", 0, false},
		{"5 minutes", 0, false},
	}
	for _, tt := range tests {
		got, err := seconds(tt.give, "talk_time")
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("seconds(%q) = %v, %v; want %v, ok %v", tt.give, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzMap(f *testing.F) {
	adaptertest.Fuzz(f, linked, "testdata")
}
