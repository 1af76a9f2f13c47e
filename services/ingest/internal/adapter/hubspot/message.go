package hubspot

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/adapter/hubspot/hsapi"
	"github.com/ticketpulse/ticketpulse/services/ingest/internal/canonical"
)

// maxMessageID bounds a messageId; HubSpot's are short (numbers or UUIDs).
const maxMessageID = 64

// lookup is a conversation message to look up: the event at index i.
type lookup struct {
	i                     int
	thread, portal, msgID string
}

// message checks a conversation.newMessage at index i and adds its lookup, unless the event
// already says it is a notice.
func (a *Adapter) message(i int, e *event, res *adapter.Result, lookups *[]lookup) error {
	thread, err := numericID(i, "objectId", string(e.ObjectID))
	if err != nil {
		return err
	}
	portal, err := numericID(i, "portalId", string(e.PortalID))
	if err != nil {
		return err
	}
	msgID := strings.TrimSpace(string(e.MessageID))
	switch {
	case msgID == "":
		return canonical.Reject(i, "messageId", "required for conversation.newMessage")
	case len(msgID) > maxMessageID || !adapter.ValidText(msgID, maxMessageID) || strings.ContainsAny(msgID, "/?#%"):
		return canonical.Reject(i, "messageId", fmt.Sprintf("not a HubSpot message id (at most %d bytes, no /?#%%)", maxMessageID))
	}
	// The event already says what kind of message it is: notices are left out without a lookup.
	if t := e.MessageType; t != "" && t != "MESSAGE" && t != "COMMENT" {
		res.Skipped = append(res.Skipped, adapter.Skipped(SkipUnsupportedMessage, "thread %s message %s: messageType %q", thread, msgID, adapter.Truncate(t, 32)).Skipped...)
		return nil
	}
	*lookups = append(*lookups, lookup{i: i, thread: thread, portal: portal, msgID: msgID})
	return nil
}

// lookUp runs the lookups of a delivery, as many at once as the tenant may have in flight,
// each into its event's slot of parts. The first that fails (HubSpot unavailable) stops the
// others and fails the delivery.
func (a *Adapter) lookUp(ctx context.Context, lookups []lookup, parts []adapter.Result) error {
	if len(lookups) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu    sync.Mutex
		first error
	)
	next := make(chan lookup)
	var wg sync.WaitGroup
	for range min(len(lookups), a.api.Concurrency()) {
		wg.Go(func() {
			for l := range next {
				if err := a.resolve(ctx, l, &parts[l.i]); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
				}
			}
		})
	}
feed:
	for _, l := range lookups {
		select {
		case next <- l:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// The request ended before every lookup ran: nothing of the delivery may be kept.
		return &hsapi.Unavailable{Reason: "the request ended before its lookups did", Wait: hsapi.DefaultRetryAfter, Err: ctx.Err()}
	}
	return first
}

// resolve maps one message by asking HubSpot for its thread (the ticket) and the message itself
// (sender, direction, type): two requests, plus now and then the portal's owner list (see
// hsapi.Client.OwnerOfUser).
func (a *Adapter) resolve(ctx context.Context, l lookup, res *adapter.Result) error {
	skip := func(reason, format string, args ...any) error {
		res.Skipped = append(res.Skipped, adapter.Skipped(reason, format, args...).Skipped...)
		return nil
	}
	thread, portal, msgID := l.thread, l.portal, l.msgID

	th, err := a.api.Thread(ctx, a.access, a.tenant, thread)
	if err != nil {
		return a.lookupFailed(err, skip, SkipThreadNotFound, "thread "+thread)
	}
	ticket := th.TicketID()
	if ticket == "" {
		return skip(SkipNoTicket, "thread %s is associated with no ticket", thread)
	}
	m, err := a.api.Message(ctx, a.access, a.tenant, thread, msgID)
	if err != nil {
		return a.lookupFailed(err, skip, SkipMessageNotFound, "thread "+thread+" message "+msgID)
	}
	at := m.CreatedAt.UTC()
	if !canonical.Representable(at) {
		return skip(SkipLookupInvalid, "thread %s message %s: createdAt outside the years 0001 to 9999", thread, msgID)
	}
	ev := canonical.Event{
		// The message id is HubSpot's own and stays the same on every retry of the event.
		ID:         adapter.EventID(portal, "conversation.newMessage", thread, msgID),
		Source:     Source,
		TicketID:   ticket,
		OccurredAt: at,
	}
	sender := m.SenderActorID()
	switch {
	case m.Type == "COMMENT":
		// An internal comment is a note: never a response, whoever wrote it.
		ev.Type, ev.Public = "agent_message", adapter.Bool(false)
	case m.Type != "MESSAGE":
		return skip(SkipUnsupportedMessage, "thread %s message %s: type %q", thread, msgID, adapter.Truncate(m.Type, 32))
	case m.Direction == "INCOMING":
		ev.Type, ev.Actor = "customer_message", customer(sender, th, thread)
		res.Events = append(res.Events, ev)
		return nil
	case m.Direction == "OUTGOING":
		ev.Type, ev.Public = "agent_message", adapter.Bool(true)
	default:
		return skip(SkipUnsupportedMessage, "thread %s message %s: direction %q", thread, msgID, adapter.Truncate(m.Direction, 32))
	}
	ev.Actor, err = a.staff(ctx, sender)
	if err != nil {
		return fmt.Errorf("owner of %s: %w", adapter.Truncate(sender, 40), err)
	}
	res.Events = append(res.Events, ev)
	return nil
}

// lookupFailed turns a failed lookup of what into the delivery's outcome: a 404 is skipped with
// notFound, an undocumented answer with SkipLookupInvalid; the rest (HubSpot unavailable) fails
// the delivery so that HubSpot sends it again.
func (a *Adapter) lookupFailed(err error, skip func(string, string, ...any) error, notFound, what string) error {
	var invalid *hsapi.Invalid
	switch {
	case errors.Is(err, hsapi.ErrNotFound):
		return skip(notFound, "%s: HubSpot answered 404", what)
	case errors.As(err, &invalid):
		return skip(SkipLookupInvalid, "%s: %s", what, adapter.Truncate(invalid.Reason, 200))
	}
	return fmt.Errorf("look up %s: %w", what, err)
}

// customer is the author of an incoming message: the contact of a "V-<contactId>" sender, else
// the thread's contact (an e-mail from an address HubSpot knows no contact for has no actor).
func customer(sender string, th hsapi.Thread, thread string) canonical.Actor {
	if id, ok := strings.CutPrefix(sender, "V-"); ok && usableID(id) {
		return canonical.Actor{ID: id, Kind: "customer"}
	}
	if usableID(th.AssociatedContactID) {
		return canonical.Actor{ID: th.AssociatedContactID, Kind: "customer"}
	}
	return canonical.Actor{ID: "thread-" + thread, Kind: "customer"}
}

// staff is the author of an outgoing message or a comment. An agent's actor id is
// "A-<userId>", but tickets are assigned by owner id (hubspot_owner_id), a different number for
// the same person; the owner id is used, so that the agent who answers and the agent who is
// assigned are one. Bots (B-, and L- for HubSpot's AI agent) are bots, integrations (I-) and
// HubSpot itself (S-) automation; without a sender the message is the system's.
func (a *Adapter) staff(ctx context.Context, sender string) (canonical.Actor, error) {
	prefix, id, _ := strings.Cut(sender, "-")
	switch prefix {
	case "A":
		if !usableID(id) {
			return canonical.Actor{Kind: "system"}, nil
		}
		owner, ok, err := a.api.OwnerOfUser(ctx, a.access, a.tenant, id)
		var invalid *hsapi.Invalid
		switch {
		case err != nil && !errors.Is(err, hsapi.ErrNotFound) && !errors.As(err, &invalid):
			return canonical.Actor{}, err
		case ok:
			id = owner
		}
		// A user who is no owner (deactivated, or an owner list that could not be read)
		// keeps the user id: the message still counts, under that id.
		return canonical.Actor{ID: id, Kind: "agent"}, nil
	case "B", "L":
		return canonical.Actor{ID: keepID(id), Kind: "bot"}, nil
	case "I", "S":
		return canonical.Actor{ID: keepID(id), Kind: "automation"}, nil
	}
	return canonical.Actor{Kind: "system"}, nil
}

func usableID(id string) bool {
	return id != "" && adapter.ValidText(id, canonical.MaxIDBytes) && strings.TrimSpace(id) == id
}

func keepID(id string) string {
	if usableID(id) {
		return id
	}
	return ""
}
