// Package snapshot publishes the latest KPIs of agents, teams and queues to the KPI stream, one
// subject per agent, team or queue, for consumers (escalation rules) that react to figures without querying.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	ticketpulsev1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/bucket"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/query"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/window"
	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
	"github.com/ticketpulse/ticketpulse/services/platform/telemetry"
)

// Reader is what the publisher needs from the store.
type Reader interface {
	Read(ctx context.Context, tenant string, qs []query.Query) ([]*bucket.Totals, error)
}

var _ Reader = (*query.Reader)(nil)

// Windows are the rolling windows every snapshot holds, all in UTC.
var Windows = window.RollingNames

// Baseline is the window that every snapshot also holds for rules comparing an agent or team with
// their own recent past: the 28 days before the "7d" window. It ends where "7d" starts, so a bad
// week never dilutes the baseline it is compared with.
const Baseline = "baseline_28d"

// baselineHours is the length of Baseline.
const baselineHours = 28 * 24

// maxInFlight bounds this publisher's unacknowledged publishes, below the client's own limit, so
// a large batch waits for acks instead of stalling on a full buffer.
const maxInFlight = 1024

// Publisher computes and publishes snapshots.
type Publisher struct {
	r      Reader
	js     jetstream.JetStream
	now    func() time.Time
	tracer trace.Tracer
}

// NewPublisher returns a publisher reading through r and publishing on js; now is the instant
// the rolling windows end at.
func NewPublisher(r Reader, js jetstream.JetStream, now func() time.Time) *Publisher {
	return &Publisher{r: r, js: js, now: now, tracer: noop.NewTracerProvider().Tracer("")}
}

// WithTracer makes Publish trace its round in a producer span, the context every snapshot
// message carries.
func (p *Publisher) WithTracer(t trace.Tracer) *Publisher {
	p.tracer = t
	return p
}

// Subject is where the snapshot of scope s is published: kpi.<tenant>.agent.<id>,
// kpi.<tenant>.team.<id> or kpi.<tenant>.queue.<id>, the id escaped (so one token whatever it
// holds), all under the KPI stream's kpi.>.
func Subject(tenant string, s bucket.Scope) string {
	switch s.Kind {
	case bucket.Team:
		return stream.TeamKPISubject(tenant, s.ID)
	case bucket.Queue:
		return QueueSubject(tenant, s.ID)
	}
	return stream.AgentKPISubject(tenant, s.ID)
}

// QueueSubject is the subject of a queue's KPI snapshot: kpi.<tenant>.queue.<escaped id>.
func QueueSubject(tenant, queue string) string {
	return "kpi." + tenant + ".queue." + idtoken.Escape(queue)
}

// Publish reads the figures of every agent, team and queue over every window in one pipelined
// round trip, publishes one snapshot each asynchronously and returns once JetStream acknowledged
// them all. Repeated ids are published once.
func (p *Publisher) Publish(ctx context.Context, tenant string, agents, teams, queues []string) (err error) {
	ctx, span := p.tracer.Start(ctx, "send "+stream.KPIName, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(
		telemetry.MessagingNATS, telemetry.MessagingOperation.String("send"), telemetry.MessagingDestination.String(stream.KPIName),
		telemetry.AttrTenant.String(tenant), telemetry.MessagingBatchCount.Int(len(agents)+len(teams)+len(queues))))
	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, "not acknowledged")
		}
		span.End()
	}()
	if !idtoken.ValidTenant(tenant) {
		return fmt.Errorf("publish kpi snapshots: tenant %q %s", tenant, idtoken.TenantRule)
	}
	var scopes []bucket.Scope
	seen := make(map[bucket.Scope]bool)
	for _, ids := range []struct {
		kind bucket.Kind
		ids  []string
	}{{bucket.Agent, agents}, {bucket.Team, teams}, {bucket.Queue, queues}} {
		for _, id := range ids.ids {
			s := bucket.Scope{Kind: ids.kind, ID: id}
			if !seen[s] {
				seen[s] = true
				scopes = append(scopes, s)
			}
		}
	}
	if len(scopes) == 0 {
		return nil
	}

	now := p.now()
	ranges := make([]window.Resolved, len(Windows))
	for i, name := range Windows {
		rw, err := window.Resolve(&ticketpulsev1.Window{Kind: &ticketpulsev1.Window_Rolling{Rolling: name}}, now)
		if err != nil {
			return fmt.Errorf("resolve window %s: %w", name, err)
		}
		ranges[i] = rw
	}
	week := ranges[slices.Index(Windows, "7d")]
	ranges = append(ranges, window.Resolved{FromHour: week.FromHour - baselineHours, ToHour: week.FromHour})
	names := append(slices.Clone(Windows), Baseline)
	qs := make([]query.Query, 0, len(scopes)*len(ranges))
	for _, s := range scopes {
		for _, rw := range ranges {
			qs = append(qs, query.Query{Scope: s, FromHour: rw.FromHour, ToHour: rw.ToHour})
		}
	}
	totals, err := p.r.Read(ctx, tenant, qs)
	if err != nil {
		return fmt.Errorf("publish kpi snapshots of tenant %s: %w", tenant, err)
	}

	computed := timestamppb.New(now)
	actx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	var errs []error
	futures := make([]jetstream.PubAckFuture, 0, min(len(scopes), maxInFlight))
	for i, s := range scopes {
		snap := &ticketpulsev1.KpiSnapshot{
			Tenant: tenant, Scope: scopeName(s), Id: s.ID, ComputedAt: computed,
			Windows: make(map[string]*ticketpulsev1.Kpis, len(names)),
		}
		for j, name := range names {
			snap.Windows[name] = query.ToProto(totals[i*len(names)+j])
		}
		data, err := proto.Marshal(snap)
		if err != nil {
			return fmt.Errorf("encode kpi snapshot %s: %w", Subject(tenant, s), err)
		}
		msg := &nats.Msg{Subject: Subject(tenant, s), Data: data, Header: nats.Header{}}
		telemetry.Inject(ctx, msg.Header)
		if len(futures) == maxInFlight {
			if err := await(actx, futures[0]); err != nil {
				errs = append(errs, err)
			}
			futures = futures[1:]
		}
		f, err := p.js.PublishMsgAsync(msg)
		if err != nil {
			return joinFew(append(errs, fmt.Errorf("publish %s: %w", msg.Subject, err)))
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		if err := await(actx, f); err != nil {
			errs = append(errs, err)
		}
	}
	return joinFew(errs)
}

// joinFew joins the first errors and counts the rest: when the server is gone every publish
// fails the same way, and one line per agent would drown the log.
func joinFew(errs []error) error {
	const shown = 3
	if len(errs) <= shown {
		return errors.Join(errs...)
	}
	return errors.Join(append(errs[:shown:shown], fmt.Errorf("and %d more failed publishes", len(errs)-shown))...)
}

// ackTimeout bounds how long Publish waits for JetStream to acknowledge its snapshots, so an
// unreachable server delays the next round instead of blocking it.
const ackTimeout = 10 * time.Second

var errAckTimeout = errors.New("no acknowledgement in time")

// await waits for one publish to be acknowledged until ctx ends.
func await(ctx context.Context, f jetstream.PubAckFuture) error {
	// An answer already in wins over an expired deadline.
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
	default:
	}
	select {
	case <-f.Ok():
		return nil
	case err := <-f.Err():
		return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
	case <-ctx.Done():
		err := ctx.Err()
		if errors.Is(err, context.DeadlineExceeded) {
			err = errAckTimeout
		}
		return fmt.Errorf("publish %s: %w", f.Msg().Subject, err)
	}
}

func scopeName(s bucket.Scope) string {
	switch s.Kind {
	case bucket.Team:
		return "team"
	case bucket.Queue:
		return "queue"
	}
	return "agent"
}
