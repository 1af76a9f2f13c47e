// Package eventcodec is the one TicketEvent path between NATS and the services: the subject,
// message id, trace headers and protobuf body an event is published with, and the checks every
// consumer applies before it trusts one (DESIGN.md §2, §3). It also decodes KPI snapshots.
package eventcodec

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// ErrInvalid marks a message no consumer may act on; it is dead-lettered, never retried.
var ErrInvalid = errors.New("invalid message")

// Subject is where an event is published: tickets.<tenant>.<type word>.
func Subject(ev *tpv1.TicketEvent) string {
	return stream.TicketSubject(ev.GetTenant(), TypeWord(ev.GetType()))
}

// MsgID is the event's idempotency key in the stream: <tenant>/<source>/<id>. The id is last,
// so its own slashes cannot make two keys collide.
func MsgID(ev *tpv1.TicketEvent) string {
	return ev.GetTenant() + "/" + ev.GetSource() + "/" + ev.GetId()
}

// Encode makes the message of ev: its subject, its message id, the trace context of ctx in the
// headers (never in the payload) and the protobuf body. It refuses what Parse would refuse to
// route: a tenant that is not a valid token would publish outside the tenant's subject space.
func Encode(ctx context.Context, ev *tpv1.TicketEvent) (*nats.Msg, error) {
	if !idtoken.ValidTenant(ev.GetTenant()) {
		return nil, fmt.Errorf("event %q: tenant %q %s", ev.GetId(), ev.GetTenant(), idtoken.TenantRule)
	}
	if TypeWord(ev.GetType()) == "" {
		return nil, fmt.Errorf("event %q: no subject for type %v", ev.GetId(), ev.GetType())
	}
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal event %q: %w", ev.GetId(), err)
	}
	m := &nats.Msg{Subject: Subject(ev), Data: data, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, MsgID(ev))
	telemetry.Inject(ctx, m.Header)
	return m, nil
}

// Decode reads the event of a TICKETS message; see Parse.
func Decode(m jetstream.Msg) (string, *tpv1.TicketEvent, error) { return Parse(m.Data()) }

// Parse reads a TicketEvent body and returns it with its tenant. It rejects, wrapping
// ErrInvalid, a body that is not a TicketEvent, a tenant that is not a valid token (the tenant
// returned is then empty: it cannot name a subject or key), an empty ticket_id or id, and a
// missing occurred_at.
func Parse(data []byte) (string, *tpv1.TicketEvent, error) {
	ev := &tpv1.TicketEvent{}
	if err := proto.Unmarshal(data, ev); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch {
	case !idtoken.ValidTenant(ev.GetTenant()):
		return "", nil, fmt.Errorf("%w: tenant %q", ErrInvalid, ev.GetTenant())
	case ev.GetTicketId() == "":
		return ev.GetTenant(), nil, fmt.Errorf("%w: empty ticket_id", ErrInvalid)
	case ev.GetId() == "":
		return ev.GetTenant(), nil, fmt.Errorf("%w: empty id", ErrInvalid)
	case ev.GetOccurredAt() == nil:
		return ev.GetTenant(), nil, fmt.Errorf("%w: no occurred_at", ErrInvalid)
	}
	return ev.GetTenant(), ev, nil
}

// DecodeSnapshot reads the snapshot of a KPI message; see ParseSnapshot.
func DecodeSnapshot(m jetstream.Msg) (string, *tpv1.KpiSnapshot, error) {
	return ParseSnapshot(m.Data())
}

var snapshotScopes = map[string]bool{"agent": true, "team": true, "queue": true}

// ParseSnapshot reads a KpiSnapshot body and returns it with its tenant. It rejects, wrapping
// ErrInvalid, a body that is not a KpiSnapshot, an invalid tenant, a scope other than "agent",
// "team" or "queue" (a contact-centre queue's call figures), and a missing computed_at.
func ParseSnapshot(data []byte) (string, *tpv1.KpiSnapshot, error) {
	s := &tpv1.KpiSnapshot{}
	if err := proto.Unmarshal(data, s); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !idtoken.ValidTenant(s.GetTenant()) || !snapshotScopes[s.GetScope()] || s.GetComputedAt() == nil {
		return "", nil, fmt.Errorf("%w: snapshot tenant %q scope %q", ErrInvalid, s.GetTenant(), s.GetScope())
	}
	return s.GetTenant(), s, nil
}
