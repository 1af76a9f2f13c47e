// Package stream is DESIGN.md §3 in code: the JetStream streams the services share, their
// settings, which service creates which, and the subjects published to them. Nothing else
// spells a stream name or builds a subject.
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/platform/idtoken"
)

// Stream names.
const (
	TicketsName     = "TICKETS"
	KPIName         = "KPI"
	EscalationsName = "ESCALATIONS"
	DeadletterName  = "DEADLETTER"
)

// Filter subjects: everything of one stream.
const (
	TicketsFilter     = "tickets.>"
	KPIFilter         = "kpi.>"
	EscalationsFilter = "escalations.>"
	DeadletterFilter  = "deadletter.>"
)

// KPIDurable is kpi's durable consumer on TICKETS: its backlog is what ingest's admission
// control bounds (DESIGN.md §8), so both services name it from here.
const KPIDurable = "kpi"

// Tickets is the durable event log. Retention 0 keeps events forever. It has no size limit;
// Owned gives it the operator's (TicketsMaxBytes). Discard is New whatever the limit: this is the
// log KPIs are rebuilt from, so a full stream refuses new events (ingest answers 503) rather than
// silently dropping the oldest. It is not compressed unless the operator asks (Settings): with
// NATS 2.15, a node whose disk filled up could leave an S2-compressed block it cannot read
// again, and this log must never be lost (docs/chaos.md).
// It allows atomic batch publish: ingest stores a request's events as one batch, all or none,
// which under sync "always" costs one fsync for the batch instead of one per event.
func Tickets(retention time.Duration, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        TicketsName,
		Description: "Canonical ticket events, the durable log every KPI is rebuilt from.",
		Subjects:    []string{TicketsFilter},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      retention,
		Replicas:    max(replicas, 1),
		Duplicates:  2 * time.Minute,
		MaxBytes:    -1,
		Discard:     jetstream.DiscardNew,
		Compression: jetstream.NoCompression,

		AllowAtomicPublish: true,
	}
}

// KPI keeps the latest snapshot per agent and team subject.
func KPI(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              KPIName,
		Description:       "Latest KPI snapshot per agent and team.",
		Subjects:          []string{KPIFilter},
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: 1,
		Replicas:          max(replicas, 1),
		Discard:           jetstream.DiscardOld,
	}
}

// Escalations is the log of escalation lifecycle changes that notify delivers. Its duplicate
// window covers a change republished after a crash between storing and recording it (the
// escalation service retries within seconds; ten minutes leaves room for a long outage).
func Escalations(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EscalationsName,
		Description: "Escalation lifecycle changes: triggered, updated, raised, acknowledged, resolved.",
		Subjects:    []string{EscalationsFilter},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Replicas:    max(replicas, 1),
		Duplicates:  10 * time.Minute,
		Discard:     jetstream.DiscardOld,
	}
}

// Deadletter holds messages a service gave up on, with the reason in headers.
func Deadletter(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DeadletterName,
		Description: "Messages that failed after the maximum deliveries, with the reason.",
		Subjects:    []string{DeadletterFilter},
		Storage:     jetstream.FileStorage,
		MaxAge:      30 * 24 * time.Hour,
		Replicas:    max(replicas, 1),
	}
}

// Settings are the operator's stream settings.
type Settings struct {
	// Replicas of every stream (JetStream R1 or R3); below 1 means 1.
	Replicas int
	// TicketsRetention is the TICKETS stream's maximum age; 0 keeps events forever.
	TicketsRetention time.Duration
	// TicketsMaxBytes is the TICKETS stream's size limit in bytes; 0 or less means none. NATS
	// reserves it from the server's max_file_store when the stream is created, so it must fit.
	TicketsMaxBytes int64
	// TicketsCompressed stores TICKETS with S2 compression (about 0.28 of the disk), at the risk
	// docs/chaos.md describes. Either way an existing stream takes the setting in place: the
	// server applies it to what it writes from then on and reads blocks of both kinds.
	TicketsCompressed bool
}

// Owned lists the streams a service creates, or updates to these settings, when it starts. A
// service owns the stream it publishes to, and every service that dead-letters owns DEADLETTER,
// so whichever starts first creates it. Streams a service only reads it waits for (Wait). An
// unknown service owns nothing.
func Owned(service string, s Settings) []jetstream.StreamConfig {
	dl := Deadletter(s.Replicas)
	switch service {
	case "ingest":
		t := Tickets(s.TicketsRetention, s.Replicas)
		if s.TicketsMaxBytes > 0 {
			t.MaxBytes = s.TicketsMaxBytes
		}
		if s.TicketsCompressed {
			t.Compression = jetstream.S2Compression
		}
		return []jetstream.StreamConfig{t, dl}
	case "kpi":
		return []jetstream.StreamConfig{KPI(s.Replicas), dl}
	case "escalation":
		return []jetstream.StreamConfig{Escalations(s.Replicas), dl}
	case "notify":
		return []jetstream.StreamConfig{dl}
	}
	return nil
}

// TicketSubject is where an event of a type is published: tickets.<tenant>.<type word>.
func TicketSubject(tenant, typeWord string) string {
	return "tickets." + tenant + "." + typeWord
}

// AgentKPISubject is the subject of an agent's KPI snapshot: kpi.<tenant>.agent.<escaped id>.
func AgentKPISubject(tenant, agent string) string {
	return "kpi." + tenant + ".agent." + idtoken.Escape(agent)
}

// TeamKPISubject is the subject of a team's KPI snapshot: kpi.<tenant>.team.<escaped id>.
func TeamKPISubject(tenant, team string) string {
	return "kpi." + tenant + ".team." + idtoken.Escape(team)
}

// EscalationSubject is the subject of a rule's escalation changes: escalations.<tenant>.<rule>.
// Rule names come from the rules file, which restricts them to subject-safe words.
func EscalationSubject(tenant, rule string) string {
	return "escalations." + tenant + "." + rule
}

// TenantEscalationsFilter matches every escalation change of a tenant: escalations.<tenant>.>.
func TenantEscalationsFilter(tenant string) string {
	return EscalationSubject(tenant, ">")
}

// DeadletterSubject is where a service's dead letters of a tenant go:
// deadletter.<service>.<tenant>.
func DeadletterSubject(service, tenant string) string {
	return "deadletter." + service + "." + tenant
}

// Ensure creates the stream or updates it to cfg. It asks again, until ctx ends, while JetStream
// does not answer in time, answers 503 or cannot place the replicas for want of an offline node: a
// cluster that is forming, electing a meta leader or short of a quorum (a node just started or
// restarting, a loaded machine) can let a request go unanswered, and
// one unanswered request must not spend a service's whole start-up deadline. Any other refusal is
// returned at once.
func Ensure(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var s jetstream.Stream
	attempts, err := AskAgain(ctx, ensureAttemptTimeout, notAnsweredNow, nil, func(actx context.Context) (err error) {
		s, err = js.CreateOrUpdateStream(actx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s (attempt %d): %w", cfg.Name, attempts, err)
	}
	return s, nil
}

// AskAgain calls try, each call bounded by perAttempt, until it succeeds, fails with an error
// retryable does not accept, or ctx ends; between attempts it waits attempt × 250 ms (at most
// 2 s), calling waiting (when not nil) with the attempt and its error first. A request sent while
// a cluster has no leader may never be answered: without the bound, the caller's whole deadline
// would be spent on that one attempt. It returns the attempts made and the last error, joined
// with ctx's own when ctx ended during a wait.
func AskAgain(ctx context.Context, perAttempt time.Duration, retryable func(error) bool, waiting func(attempt int, err error), try func(context.Context) error) (int, error) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, perAttempt)
		err := try(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !retryable(err) {
			return attempt, err
		}
		if waiting != nil {
			waiting(attempt, err)
		}
		select {
		case <-ctx.Done():
			return attempt, fmt.Errorf("%w (last attempt: %w)", ctx.Err(), err)
		case <-time.After(min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second)):
		}
	}
}

// ensureAttemptTimeout bounds one request of Ensure.
const ensureAttemptTimeout = 5 * time.Second

// notAnsweredNow reports whether err says JetStream did not answer in time or cannot serve the
// request now (503: no quorum or no leader; "no suitable peers for placement": a node the
// replicas need is offline), rather than refusing it.
func notAnsweredNow(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
		return true
	}
	apiErr, ok := errors.AsType[*jetstream.APIError](err)
	return ok && (apiErr.Code == 503 || apiErr.ErrorCode == jsClusterNoPeers)
}

// jsClusterNoPeers is JetStream's error code for a stream whose replicas cannot all be placed now.
const jsClusterNoPeers jetstream.ErrorCode = 10005

// Wait waits until the named stream exists, so a consumer started before the stream's owner
// comes up waits instead of failing.
func Wait(ctx context.Context, js jetstream.JetStream, name string, log *slog.Logger) (jetstream.Stream, error) {
	logged := false
	for {
		s, err := js.Stream(ctx, name)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
			return nil, fmt.Errorf("look up stream %s: %w", name, err)
		}
		if !logged {
			log.Info("waiting for stream", "stream", name)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for stream %s: %w", name, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}
