package canonical

import (
	"math"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
)

// Event is one ticket event in the canonical form (DESIGN.md §2): what the adapters build and
// what the JSON body of POST /v1/tenants/{tenant}/events decodes into. Enum fields hold the
// canonical words: Type "ticket_created", "ticket_assigned", "agent_message",
// "customer_message", "status_changed", "priority_changed", "satisfaction_rated", "qa_scored",
// "call_offered", "call_answered", "call_abandoned", "call_ended"; Priority
// "low", "normal", "high", "urgent"; Status "new", "open", "pending", "on_hold", "solved",
// "closed". The tenant is not a field: it comes from the request path.
type Event struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	TicketID   string    `json:"ticket_id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	// Sequence is the source's own order of the ticket's events (an audit, message or
	// conversation-part id, a modification count), 0 when it has none. It orders events of the
	// same ticket, time and type (docs/architecture.md, "Events at the same instant"); at most
	// MaxSequence.
	Sequence     uint64        `json:"sequence,omitempty"`
	Actor        Actor         `json:"actor"`
	AssigneeID   string        `json:"assignee_id,omitempty"`
	TeamID       string        `json:"team_id,omitempty"`
	Priority     string        `json:"priority,omitempty"`
	Status       string        `json:"status,omitempty"`
	Public       *bool         `json:"public,omitempty"`
	Satisfaction *Satisfaction `json:"satisfaction,omitempty"`
	Channel      string        `json:"channel,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	// QA is the review of a qa_scored event, and only there.
	QA *QA `json:"qa,omitempty"`
	// Call is the call of a call_* event, and only there.
	Call *Call `json:"call,omitempty"`
}

// QA is a quality review of an agent's work on a ticket. The reviewed agent and team are its
// own fields: a review says nothing about the ticket's assignee or team, so a qa_scored event
// carries neither (nor any other ticket attribute).
type QA struct {
	// ReviewID identifies the review at its source; a later event of the same review (a
	// re-score) replaces the earlier one in the KPIs.
	ReviewID   string `json:"review_id"`
	ReviewerID string `json:"reviewer_id,omitempty"`
	AgentID    string `json:"agent_id"`
	TeamID     string `json:"team_id,omitempty"`
	// Score is a percentage from 0 to 100; it is kept to hundredths (RoundScore).
	Score     float64 `json:"score"`
	AutoFail  bool    `json:"auto_fail,omitempty"`
	Scorecard string  `json:"scorecard,omitempty"`
	// Categories are the scorecard's sections: name -> percentage from 0 to 100.
	Categories map[string]float64 `json:"categories,omitempty"`
}

// RoundScore rounds a QA percentage to the hundredths it is kept to (half away from zero).
func RoundScore(v float64) float64 { return math.Round(v*100) / 100 }

// Actor is who caused an event; Kind is "agent", "customer", "bot", "automation" or "system".
// ID is required for agents and customers.
type Actor struct {
	ID   string `json:"id,omitempty"`
	Kind string `json:"kind"`
}

// Satisfaction is a rating already normalised to 1..5 (two-point good/bad is 5/1, three-point is
// 5/3/1); Scale is the source's own scale (2, 3 or 5), 0 for the default of 5.
type Satisfaction struct {
	Score   int    `json:"score"`
	Scale   int    `json:"scale,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// Proto converts events that Decode or Validate accepted into TicketEvent messages of tenant,
// received at received.
func Proto(events []Event, tenant string, received time.Time) []*ticketpulsev1.TicketEvent {
	at := timestamppb.New(received)
	out := make([]*ticketpulsev1.TicketEvent, len(events))
	for i := range events {
		out[i] = events[i].proto(tenant, at)
	}
	return out
}

func (e *Event) proto(tenant string, received *timestamppb.Timestamp) *ticketpulsev1.TicketEvent {
	ev := &ticketpulsev1.TicketEvent{
		Id:         e.ID,
		Tenant:     tenant,
		Source:     e.Source,
		TicketId:   e.TicketID,
		Type:       valueOf(eventcodec.EventTypes, e.Type),
		OccurredAt: timestamppb.New(e.OccurredAt),
		Sequence:   e.Sequence,
		Actor:      &ticketpulsev1.Actor{Id: e.Actor.ID, Kind: valueOf(eventcodec.ActorKinds, e.Actor.Kind)},
		AssigneeId: e.AssigneeID,
		TeamId:     e.TeamID,
		Priority:   valueOf(eventcodec.Priorities, e.Priority),
		Status:     valueOf(eventcodec.Statuses, e.Status),
		Channel:    e.Channel,
		ReceivedAt: received,
	}
	if e.Public != nil {
		b := *e.Public
		ev.Public = &b
	} else if ev.Type == ticketpulsev1.EventType_EVENT_TYPE_CUSTOMER_MESSAGE {
		// A customer's message is public unless the source says otherwise.
		b := true
		ev.Public = &b
	}
	if s := e.Satisfaction; s != nil {
		scale := s.Scale
		if scale == 0 {
			scale = 5
		}
		ev.Satisfaction = &ticketpulsev1.Satisfaction{Score: int32(s.Score), Scale: int32(scale), Comment: s.Comment}
	}
	if len(e.Tags) > 0 {
		ev.Tags = e.Tags
	}
	if q := e.QA; q != nil {
		ev.Qa = &ticketpulsev1.QaReview{ReviewId: q.ReviewID, ReviewerId: q.ReviewerID, AgentId: q.AgentID,
			TeamId: q.TeamID, Score: RoundScore(q.Score), AutoFail: q.AutoFail, Scorecard: q.Scorecard}
		if len(q.Categories) > 0 {
			ev.Qa.Categories = make(map[string]float64, len(q.Categories))
			for name, v := range q.Categories {
				ev.Qa.Categories[name] = RoundScore(v)
			}
		}
	}
	if k := e.Call; k != nil {
		dir := ticketpulsev1.CallDirection_CALL_DIRECTION_INBOUND
		if k.Direction == "outbound" {
			dir = ticketpulsev1.CallDirection_CALL_DIRECTION_OUTBOUND
		}
		ev.Call = &ticketpulsev1.CallInfo{CallId: k.CallID, TicketId: k.TicketID, QueueId: k.QueueID, AgentId: k.AgentID,
			TeamId: k.TeamID, Direction: dir, WaitSeconds: RoundSeconds(k.WaitSeconds), TalkSeconds: RoundSeconds(k.TalkSeconds),
			HoldSeconds: RoundSeconds(k.HoldSeconds), WrapUpSeconds: RoundSeconds(k.WrapUpSeconds)}
	}
	return ev
}
