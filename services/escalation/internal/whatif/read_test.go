package whatif

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

// Read takes the tenant's events only, those that occurred in the range or the Lead before it,
// in stream order, and refuses more messages than allowed.
func TestRead(t *testing.T) {
	_, url := testenv.NATS(t)
	js := testenv.JetStream(t, url, stream.Tickets(0, 1))
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	from, to := now.Add(-24*time.Hour), now.Add(-time.Hour)
	n := 0
	publish := func(tenant, ticket string, at time.Time) {
		n++
		msg, err := eventcodec.Encode(ctx, &tpv1.TicketEvent{Id: fmt.Sprintf("ev-%d", n), Tenant: tenant, Source: "generic", TicketId: ticket,
			Type: tpv1.EventType_EVENT_TYPE_TICKET_CREATED, OccurredAt: timestamppb.New(at), Actor: &tpv1.Actor{Kind: tpv1.ActorKind_ACTOR_KIND_CUSTOMER}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	if evs, read, err := Read(ctx, js, "acme", from, to, 10); err != nil || len(evs) != 0 || read != 0 {
		t.Fatalf("no events yet: %v, %d read, %v", evs, read, err)
	}
	publish("acme", "in range", from.Add(time.Hour))
	publish("globex", "another tenant's", from.Add(time.Hour))
	publish("acme", "in the lead", from.Add(-Lead+time.Minute))
	publish("acme", "before the lead", from.Add(-Lead-time.Minute))
	publish("acme", "after the range", to)
	publish("acme", "at from, stored last", from)

	evs, read, err := Read(ctx, js, "acme", from, to, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Ticket)
	}
	if want := []string{"in range", "in the lead", "at from, stored last"}; !slices.Equal(got, want) || read != 5 {
		t.Errorf("read %d messages, kept %q, want %q", read, got, want)
	}
	if !slices.IsSortedFunc(evs, func(a, b Event) int { return int(a.Seq) - int(b.Seq) }) {
		t.Error("not in stream order")
	}
	if _, _, err := Read(ctx, js, "acme", from, to, 4); !errors.Is(err, ErrTooManyEvents) {
		t.Errorf("5 messages with 4 allowed: %v", err)
	}
	if evs, _, err := Read(ctx, js, "initech", from, to, 10); err != nil || len(evs) != 0 {
		t.Errorf("a tenant without events: %v %v", evs, err)
	}
}
