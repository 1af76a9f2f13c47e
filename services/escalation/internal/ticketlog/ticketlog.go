// Package ticketlog keeps each ticket's events in Redis, in the ticket's slot (DESIGN.md §4), for
// a retention after its last one arrived. A ticket is judged from the whole set of its events, so
// the log only ever adds: storing an event twice is a no-op, and the order events arrive in does
// not matter.
package ticketlog

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/judge"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// Ticket identifies a ticket across tenants.
type Ticket struct{ Tenant, ID string }

// Log is the ticket log. Its writes and reads are queued on the caller's pipeline, so a batch's
// events are stored and its tickets loaded back in one round trip.
type Log struct {
	retention time.Duration
	log       *slog.Logger
}

// New returns a log keeping a ticket's events for retention after its last one arrived.
func New(retention time.Duration, log *slog.Logger) *Log {
	return &Log{retention: retention, log: log}
}

// Key holds a ticket's events by id, in the ticket's slot (DESIGN.md §4).
func Key(t Ticket) string {
	return "tp:{" + t.Tenant + ":t:" + idtoken.Escape(t.ID) + "}:esc:ev"
}

// Group splits a batch of events by ticket, the tickets in the order they first appear.
func Group(evs []*tpv1.TicketEvent) ([]Ticket, map[Ticket][]*tpv1.TicketEvent) {
	byTicket := make(map[Ticket][]*tpv1.TicketEvent)
	var order []Ticket
	for _, ev := range evs {
		t := Ticket{ev.GetTenant(), ev.GetTicketId()}
		if _, ok := byTicket[t]; !ok {
			order = append(order, t)
		}
		byTicket[t] = append(byTicket[t], ev)
	}
	return order, byTicket
}

// Append queues on pipe the storing of a ticket's events, each kept once, and renews the
// ticket's retention.
func (l *Log) Append(ctx context.Context, pipe redis.Pipeliner, t Ticket, evs []*tpv1.TicketEvent) error {
	key := Key(t)
	for _, ev := range evs {
		data, err := proto.Marshal(compact(ev))
		if err != nil {
			return fmt.Errorf("encode event %s: %w", ev.GetId(), err)
		}
		pipe.HSetNX(ctx, key, ev.GetId(), data)
	}
	pipe.Expire(ctx, key, l.retention)
	return nil
}

// compact keeps what the rules read, the sequence that orders events of one instant included;
// the rest of an event (source, received_at, a call's queue and durations) is not stored. A call
// event keeps its direction, agent and linked ticket: an answered inbound call is the ticket's
// response, and only a call linked to the ticket may be.
func compact(ev *tpv1.TicketEvent) *tpv1.TicketEvent {
	c := &tpv1.TicketEvent{
		Type: ev.GetType(), OccurredAt: ev.GetOccurredAt(), Sequence: ev.GetSequence(), Actor: ev.GetActor(),
		AssigneeId: ev.GetAssigneeId(), TeamId: ev.GetTeamId(), Priority: ev.GetPriority(), Status: ev.GetStatus(),
		Public: ev.Public, Satisfaction: ev.GetSatisfaction(), Channel: ev.GetChannel(), Tags: ev.GetTags(),
	}
	if k := ev.GetCall(); k != nil {
		c.Call = &tpv1.CallInfo{Direction: k.GetDirection(), AgentId: k.GetAgentId(), TicketId: k.GetTicketId()}
	}
	return c
}

// Load queues on pipe the reading of a ticket's events; Events decodes what it read.
func Load(ctx context.Context, pipe redis.Pipeliner, t Ticket) *redis.MapStringStringCmd {
	return pipe.HGetAll(ctx, Key(t))
}

// Events decodes a ticket's stored events, by id, into what the rules read.
func (l *Log) Events(t Ticket, stored map[string]string) []judge.Event {
	evs := make([]judge.Event, 0, len(stored))
	for id, data := range stored {
		ev := &tpv1.TicketEvent{}
		if err := proto.Unmarshal([]byte(data), ev); err != nil {
			// Written by this service; a bad entry is skipped rather than blocking the ticket.
			l.log.Error("undecodable stored event", "tenant", t.Tenant, "ticket", t.ID, "event", id, "err", err)
			continue
		}
		evs = append(evs, judge.EventOf(id, ev))
	}
	return evs
}
