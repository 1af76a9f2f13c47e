// Package natsconn connects to NATS and declares the JetStream streams of DESIGN.md §3.
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect dials url with reconnects that never give up, logging connection changes.
func Connect(url, name string, log *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	return nc, nil
}

// Stream names and subject spaces shared by the services.
const (
	TicketsStream     = "TICKETS"
	KPIStream         = "KPI"
	DeadletterStream  = "DEADLETTER"
	EscalationsStream = "ESCALATIONS"
)

// TicketsConfig is the durable event log. Retention 0 keeps events forever.
func TicketsConfig(retention time.Duration, replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        TicketsStream,
		Description: "Canonical ticket events, the durable log every KPI is rebuilt from.",
		Subjects:    []string{"tickets.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      retention,
		Replicas:    max(replicas, 1),
		Duplicates:  2 * time.Minute,
		Discard:     jetstream.DiscardOld,
	}
}

// KPIConfig keeps the latest snapshot per agent and team subject.
func KPIConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              KPIStream,
		Description:       "Latest KPI snapshot per agent and team.",
		Subjects:          []string{"kpi.>"},
		Storage:           jetstream.FileStorage,
		MaxMsgsPerSubject: 1,
		Replicas:          max(replicas, 1),
		Discard:           jetstream.DiscardOld,
	}
}

// EscalationsConfig is the log of escalation lifecycle changes that notify delivers. Its
// duplicate window covers a change republished after a crash between storing and recording it
// (the escalation service retries within seconds; ten minutes leaves room for a long outage).
func EscalationsConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EscalationsStream,
		Description: "Escalation lifecycle changes: triggered, updated, raised, acknowledged, resolved.",
		Subjects:    []string{"escalations.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      30 * 24 * time.Hour,
		Replicas:    max(replicas, 1),
		Duplicates:  10 * time.Minute,
		Discard:     jetstream.DiscardOld,
	}
}

// DeadletterConfig holds messages a service gave up on, with the reason in headers.
func DeadletterConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DeadletterStream,
		Description: "Messages that failed after the maximum deliveries, with the reason.",
		Subjects:    []string{"deadletter.>"},
		Storage:     jetstream.FileStorage,
		MaxAge:      30 * 24 * time.Hour,
		Replicas:    max(replicas, 1),
	}
}

// EnsureStream creates the stream or updates it to cfg.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

// WaitStream waits until the named stream exists, so a consumer started before the stream's owner
// (ingest) comes up instead of failing.
func WaitStream(ctx context.Context, js jetstream.JetStream, name string, log *slog.Logger) (jetstream.Stream, error) {
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
