package ticketlog

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Shutdown()
	os.Exit(code)
}

func event(id, ticket string, typ tpv1.EventType) *tpv1.TicketEvent {
	return &tpv1.TicketEvent{Id: id, Tenant: "acme", TicketId: ticket, Type: typ, Source: "zendesk",
		OccurredAt: timestamppb.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), ReceivedAt: timestamppb.Now()}
}

// A ticket's events are kept once each, under the ticket's key, for the retention; what the
// rules do not read is not kept, and an entry that does not decode is skipped.
func TestAppendAndLoad(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	l := New(time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	reply := event("e3", "T-1", tpv1.EventType_EVENT_TYPE_AGENT_MESSAGE)
	reply.Sequence = 7 // orders it among the ticket's replies of the same instant, so it is kept
	order, byTicket := Group([]*tpv1.TicketEvent{
		event("e1", "T-1", tpv1.EventType_EVENT_TYPE_TICKET_CREATED),
		event("e2", "T-2", tpv1.EventType_EVENT_TYPE_TICKET_CREATED),
		reply,
	})
	if len(order) != 2 || order[0] != (Ticket{"acme", "T-1"}) || order[1] != (Ticket{"acme", "T-2"}) || len(byTicket[order[0]]) != 2 {
		t.Fatalf("grouped %v %v", order, byTicket)
	}
	tk := order[0]
	if k := Key(tk); k != "tp:{acme:t:T-1}:esc:ev" {
		t.Errorf("key %q", k)
	}
	for range 2 { // a redelivered batch
		pipe := rdb.Pipeline()
		if err := l.Append(ctx, pipe, tk, byTicket[tk]); err != nil {
			t.Fatal(err)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ttl := rdb.TTL(ctx, Key(tk)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("ttl %s, want the retention", ttl)
	}
	rdb.HSet(ctx, Key(tk), "bad", "\xff\xff")
	pipe := rdb.Pipeline()
	cmd := Load(ctx, pipe, tk)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(cmd.Val()); n != 3 {
		t.Fatalf("%d entries stored, want 2 events and the bad one", n)
	}
	evs := l.Events(tk, cmd.Val())
	if len(evs) != 2 {
		t.Fatalf("events %+v, want e1 and e3", evs)
	}
	for _, ev := range evs {
		if ev.ID != "e1" && ev.ID != "e3" || !ev.At.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)) {
			t.Errorf("event %+v", ev)
		}
		if want := map[string]uint64{"e1": 0, "e3": 7}[ev.ID]; ev.Sequence != want {
			t.Errorf("event %s sequence %d, want %d", ev.ID, ev.Sequence, want)
		}
	}
	stored := &tpv1.TicketEvent{}
	if err := proto.Unmarshal([]byte(cmd.Val()["e1"]), stored); err != nil || stored.GetSource() != "" || stored.GetReceivedAt() != nil || stored.GetId() != "" {
		t.Errorf("stored event %v %v: source, received_at and id are not kept", stored, err)
	}
}

// A call event keeps what says whether it is the ticket's response (direction, agent, linked
// ticket) and nothing else of the call.
func TestAppendKeepsTheCallsResponseFields(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	l := New(time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	answer := event("a1", "T-7", tpv1.EventType_EVENT_TYPE_CALL_ANSWERED)
	answer.Call = &tpv1.CallInfo{CallId: "CA-1", TicketId: "T-7", Direction: tpv1.CallDirection_CALL_DIRECTION_INBOUND,
		AgentId: "ana", TeamId: "phones", QueueId: "support", WaitSeconds: 18}
	tk := Ticket{"acme", "T-7"}
	pipe := rdb.Pipeline()
	if err := l.Append(ctx, pipe, tk, []*tpv1.TicketEvent{answer}); err != nil {
		t.Fatal(err)
	}
	cmd := Load(ctx, pipe, tk)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	evs := l.Events(tk, cmd.Val())
	if len(evs) != 1 || evs[0].CallDirection != tpv1.CallDirection_CALL_DIRECTION_INBOUND || evs[0].CallAgent != "ana" || evs[0].CallTicket != "T-7" {
		t.Fatalf("events %+v, want the inbound call answered by ana on T-7", evs)
	}
	stored := &tpv1.TicketEvent{}
	if err := proto.Unmarshal([]byte(cmd.Val()["a1"]), stored); err != nil {
		t.Fatal(err)
	}
	if k := stored.GetCall(); k.GetCallId() != "" || k.GetQueueId() != "" || k.GetTeamId() != "" || k.GetWaitSeconds() != 0 {
		t.Errorf("stored call %v: only direction, agent and linked ticket are kept", k)
	}
}
