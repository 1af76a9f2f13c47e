// Package outbox publishes escalation changes. The escalation store records every change in the
// escalation's outbox within the same compare-and-set that makes it; the outbox publishes them to
// the ESCALATIONS stream in order, each with the message id <tenant>/<id>/<seq>, and then clears
// them. A crash in between publishes a change again with the same id, which JetStream drops as a
// duplicate; a change that could not be published stays and is tried again by timer.
package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// Publisher stores messages in JetStream.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Outbox publishes and clears the changes of the escalation store's outboxes.
type Outbox struct {
	pub    Publisher
	store  *escalationstore.Store
	now    func() time.Time
	retry  time.Duration
	log    *slog.Logger
	tracer trace.Tracer
}

// New returns an outbox that tries a change it could not publish again retry later.
func New(pub Publisher, store *escalationstore.Store, now func() time.Time, retry time.Duration, log *slog.Logger) *Outbox {
	return &Outbox{pub: pub, store: store, now: now, retry: retry, log: log, tracer: noop.NewTracerProvider().Tracer("")}
}

// WithTracer makes Publish send in a producer span, whose context every change carries in its
// headers so notify's work continues the trace.
func (o *Outbox) WithTracer(t trace.Tracer) *Outbox {
	o.tracer = t
	return o
}

// Send publishes the escalation's unpublished changes. It returns those published, for Clear,
// and when to try the rest again: zero when there is no rest. A failure is logged, not returned:
// the change is safe in the outbox and the retry publishes it.
func (o *Outbox) Send(ctx context.Context, tenant string, rec *escalationstore.Record) (published []escalationstore.Pending, retryAt time.Time) {
	published, err := o.Publish(ctx, tenant, rec.Outbox)
	if err != nil {
		o.log.Warn("publish escalation change; will retry", "tenant", tenant, "escalation", rec.ID, "err", err)
		retryAt = o.now().Add(o.retry)
	}
	return published, retryAt
}

// Publish stores the changes in JetStream in order, each with its message id, and returns those
// stored before the first failure.
func (o *Outbox) Publish(ctx context.Context, tenant string, outbox []escalationstore.Pending) ([]escalationstore.Pending, error) {
	if len(outbox) == 0 {
		return outbox, nil
	}
	ctx, span := o.tracer.Start(ctx, "send "+stream.EscalationsName, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		telemetry.MessagingNATS, telemetry.MessagingOperation.String("send"), telemetry.MessagingDestination.String(stream.EscalationsName),
		telemetry.MessagingBatchCount.Int(len(outbox)), telemetry.AttrTenant.String(tenant), telemetry.AttrRule.String(outbox[0].Rule),
		attribute.String("escalation.id", outbox[0].ID)))
	defer span.End()
	for i, p := range outbox {
		msg := &nats.Msg{Subject: stream.EscalationSubject(tenant, p.Rule), Data: p.Data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, escalationstore.MsgID(tenant, p.ID, p.Seq))
		telemetry.Inject(ctx, msg.Header)
		if _, err := o.pub.PublishMsg(ctx, msg); err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "not acknowledged")
			return outbox[:i], fmt.Errorf("publish %s: %w", msg.Subject, err)
		}
	}
	return outbox, nil
}

// Clear removes published changes, by tenant, from their escalations' outboxes in one round
// trip. A change left after a failure here is published again later and dropped by JetStream as
// a duplicate.
func (o *Outbox) Clear(ctx context.Context, byTenant map[string][]escalationstore.Pending) error {
	return o.store.PublishedMany(ctx, byTenant)
}
