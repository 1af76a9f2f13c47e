package zendesk

import (
	"encoding/json"
	"strings"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// messagingChange is the event object of zen:event-type:messaging_ticket.message_added
// (developer.zendesk.com/api-reference/webhooks/event-types/messaging-events): who wrote the
// message and the message's own id.
type messagingChange struct {
	Actor *struct {
		ID   json.RawMessage `json:"id"`
		Type string          `json:"type"`
	} `json:"actor"`
	ConversationID string `json:"conversation_id"`
	Message        *struct {
		ID json.RawMessage `json:"id"`
	} `json:"message"`
}

// zendeskNamespace prefixes the actor ids Zendesk gives its own agents and integrations
// ("zd:answerBot", "zd:aiAgent", ...): never a person, whatever the actor type says.
const zendeskNamespace = "zd:"

// mapMessaging maps the messaging events. message_added is a chat message on a messaging
// ticket; the other messaging_ticket.* types carry nothing the KPIs use.
func mapMessaging(p eventPayload, kind string, ids ticketIDs) (adapter.Result, error) {
	if kind != "messaging_ticket.message_added" {
		return adapter.Skipped(SkipUnsupported, "%.80s", kind), nil
	}
	at, err := parseTime(p.Time, "time")
	if err != nil {
		return adapter.Result{}, err
	}
	var change messagingChange
	if len(p.Event) == 0 || string(p.Event) == "null" {
		return adapter.Result{}, adapter.Malformed("event", "required for messaging_ticket.message_added")
	}
	if err := adapter.DecodeJSON(p.Event, &change); err != nil {
		return adapter.Result{}, prefixed(err, "event")
	}
	if change.Message == nil {
		return adapter.Result{}, adapter.Malformed("event.message", "required for messaging_ticket.message_added")
	}
	msgID, err := adapter.RawID(change.Message.ID, "event.message.id")
	if err != nil {
		return adapter.Result{}, err
	}
	if msgID == "" {
		return adapter.Result{}, adapter.Malformed("event.message.id", "required")
	}
	if change.Actor == nil {
		return adapter.Result{}, adapter.Malformed("event.actor", "required for messaging_ticket.message_added")
	}
	actorID, err := adapter.RawID(change.Actor.ID, "event.actor.id")
	if err != nil {
		return adapter.Result{}, err
	}
	actor, ok, err := messagingActor(actorID, change.Actor.Type)
	if err != nil {
		return adapter.Result{}, err
	}
	if !ok {
		return adapter.Skipped(SkipUnknownActor, "message %s on ticket %s by actor type %.40q", adapter.Truncate(msgID, 40), ids.ticket, change.Actor.Type), nil
	}
	ev := canonical.Event{
		// The message id, not the event id: a redelivery of the message under another event
		// id is still one message.
		ID:         adapter.EventID(Source, "message", msgID),
		Source:     Source,
		TicketID:   ids.ticket,
		OccurredAt: at,
		Actor:      actor,
		// Messaging has no internal messages (notes are ticket comments): every message is
		// seen by the customer. Bots' and triggers' messages are public but never responses,
		// because their actor is no agent.
		Public: adapter.Bool(true),
		// The via channel Zendesk gives messaging tickets, so the ticket's events agree.
		Channel: "native_messaging",
		Type:    "agent_message",
	}
	if actor.Kind == "customer" {
		ev.Type = "customer_message"
	}
	return adapter.One(ev), nil
}

// messagingActor classifies a messaging message's actor. The documented types are end_user,
// agent, trigger and system; system is what the docs' answer bot example ("zd:answerBot") is.
// ok is false for a type the docs do not list, which is skipped rather than guessed.
func messagingActor(id, typ string) (canonical.Actor, bool, error) {
	kind := adapter.Lower(typ)
	if kind == "" {
		return canonical.Actor{}, false, adapter.Malformed("event.actor.type", "required; want end_user, agent, trigger or system")
	}
	bot := strings.HasPrefix(strings.ToLower(id), zendeskNamespace)
	switch {
	case kind == "system" || kind == "ai_agent" || kind == "bot" || (bot && kind != "end_user"):
		// Zendesk's answer bot and AI agents: their replies are never a response.
		return canonical.Actor{ID: id, Kind: "bot"}, true, nil
	case kind == "trigger":
		return canonical.Actor{ID: id, Kind: "automation"}, true, nil
	case kind == "agent" || kind == "end_user":
		if id == "" {
			return canonical.Actor{}, false, adapter.Malformed("event.actor.id", "required for an %s actor", kind)
		}
		if kind == "agent" {
			return canonical.Actor{ID: id, Kind: "agent"}, true, nil
		}
		return canonical.Actor{ID: id, Kind: "customer"}, true, nil
	}
	return canonical.Actor{}, false, nil
}
