// Package deadletter stores messages a service gave up on in the DEADLETTER stream
// (DESIGN.md §3), on deadletter.<service>.<tenant>, with one set of headers for every service.
package deadletter

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// Headers of a dead letter. A letter carries those it has a value for.
const (
	// HeaderReason says why it was given up, in words.
	HeaderReason = "Ticketpulse-Reason"
	// HeaderError is the error that made it fail.
	HeaderError = "Ticketpulse-Error"
	// HeaderSubject is the subject the message was consumed from.
	HeaderSubject = "Ticketpulse-Subject"
	// HeaderStreamSeq is its sequence in the stream it was consumed from.
	HeaderStreamSeq = "Ticketpulse-Stream-Seq"
	// HeaderDelivery is the id of the notification delivery that failed.
	HeaderDelivery = "Ticketpulse-Delivery"
)

// UnknownTenant names the tenant of a message whose tenant could not be read.
const UnknownTenant = "unknown"

// Letter is one dead letter.
type Letter struct {
	// Service and Tenant name the subject: deadletter.<service>.<tenant>; an empty tenant is
	// UnknownTenant.
	Service, Tenant string
	// Data is the body: the message as received, or a record of what failed.
	Data []byte
	// Reason and Err say why (HeaderReason, HeaderError).
	Reason string
	Err    error
	// Subject and StreamSeq locate a consumed message (HeaderSubject, HeaderStreamSeq; 0 is none).
	Subject   string
	StreamSeq uint64
	// Delivery is a failed notification delivery's id (HeaderDelivery).
	Delivery string
	// MsgID, when set, lets the stream drop the same letter stored twice (Nats-Msg-Id).
	MsgID string
}

// Msg is the NATS message of l.
func (l Letter) Msg() *nats.Msg {
	tenant := l.Tenant
	if tenant == "" {
		tenant = UnknownTenant
	}
	m := nats.NewMsg(stream.DeadletterSubject(l.Service, tenant))
	m.Data = l.Data
	set := func(k, v string) {
		if v != "" {
			m.Header.Set(k, v)
		}
	}
	set(HeaderReason, l.Reason)
	if l.Err != nil {
		set(HeaderError, l.Err.Error())
	}
	set(HeaderSubject, l.Subject)
	if l.StreamSeq != 0 {
		set(HeaderStreamSeq, strconv.FormatUint(l.StreamSeq, 10))
	}
	set(HeaderDelivery, l.Delivery)
	set(jetstream.MsgIDHeader, l.MsgID)
	return m
}

// Publisher stores messages in JetStream.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

var _ Publisher = jetstream.JetStream(nil)

// Publish stores l and returns once JetStream acknowledged it. Until then the letter is not
// stored: the caller keeps the message or record for another try rather than dropping it. The
// letter carries the trace context of ctx (traceparent), so the trace of what failed is found
// from the letter.
func Publish(ctx context.Context, p Publisher, l Letter) error {
	m := l.Msg()
	telemetry.Inject(ctx, m.Header)
	ack, err := p.PublishMsg(ctx, m)
	if err != nil {
		return fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	if !ack.Duplicate {
		count(ctx, l)
	}
	return nil
}

// MetricName counts the letters stored, by service and tenant (deadletter_messages_total on
// /metrics), so one alert covers every service.
const MetricName = "deadletter.messages"

// count adds l to MetricName on the process's meter provider (one service per process; the
// instrument is looked up each time because letters are rare and the provider is set after
// this package loads).
func count(ctx context.Context, l Letter) {
	c, err := otel.Meter("github.com/ticketpulse/ticketpulse/services/platform/deadletter").Int64Counter(MetricName,
		metric.WithUnit("{message}"), metric.WithDescription("Messages and failed deliveries stored in the DEADLETTER stream, by service and tenant."))
	if err != nil {
		return
	}
	tenant := l.Tenant
	if tenant == "" {
		tenant = UnknownTenant
	}
	c.Add(ctx, 1, metric.WithAttributes(attribute.String("service", l.Service), attribute.String("tenant", tenant)))
}
