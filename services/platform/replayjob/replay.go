// Package replayjob provides what a leased rebuild job from TICKETS needs whatever it rebuilds:
// the replay of a tenant's messages up to an end sequence with progress and checkpoints, the
// job's lease in a Redis hash, the loop that resumes jobs whose lease lapsed, and the progress
// plumbing of an admin RPC. What the replay writes, and what ends a job, stay with the service.
package replayjob

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
)

// Progress is what a checkpoint records.
type Progress struct {
	End, Checkpoint uint64
	Done, Total     int64
}

// Fields are p's hash fields and values (end, ckpt, done, total), as a lease update takes them.
func (p Progress) Fields() []any {
	return []any{"end", p.End, "ckpt", p.Checkpoint, "done", p.Done, "total", p.Total}
}

// Replay feeds apply the tenant's TICKETS messages after p.Checkpoint (or, from none, those stored
// from from, zero: all), up to p.End, batch messages at a time, keeping p up to date. It calls
// checkpoint every interval and once at the end: a job that stops resumes from the last one.
// apply's errors are returned as they are; an undecodable message is counted but not applied
// (the live consumer dead-letters it).
func Replay(ctx context.Context, s jetstream.Stream, tenant string, from time.Time, p *Progress, batch int, interval time.Duration,
	apply func(ctx context.Context, evs []*tpv1.TicketEvent) error, checkpoint func(ctx context.Context, p Progress) error) error {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{stream.TicketSubject(tenant, ">")}}
	switch {
	case p.Checkpoint > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.Checkpoint+1
	case !from.IsZero():
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("replay consumer of tenant %s: %w", tenant, err)
	}
	lastCheckpoint := time.Now()
	for p.Checkpoint < p.End {
		msgs, err := cons.Fetch(batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return fmt.Errorf("replay tenant %s: %w", tenant, err)
		}
		var evs []*tpv1.TicketEvent
		var last, pending uint64
		n := 0
		for m := range msgs.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("replay tenant %s: message metadata: %w", tenant, err)
			}
			if md.Sequence.Stream > p.End {
				// Stored after the job began: the live consumer applies it.
				p.Checkpoint = p.End
				break
			}
			last, pending = md.Sequence.Stream, md.NumPending
			n++
			if _, ev, err := eventcodec.Decode(m); err == nil {
				evs = append(evs, ev)
			}
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("replay tenant %s: %w", tenant, err)
		}
		if len(evs) > 0 {
			if err := apply(ctx, evs); err != nil {
				return err
			}
		}
		if n > 0 {
			p.Done += int64(n)
			p.Checkpoint = max(p.Checkpoint, last)
			p.Total = p.Done + int64(min(pending, p.End-min(p.End, last)))
		} else if p.Checkpoint < p.End {
			// Nothing more of the tenant's below the end: the messages left are other tenants'.
			info, err := cons.Info(ctx)
			if err != nil {
				return fmt.Errorf("replay tenant %s: %w", tenant, err)
			}
			if info.NumPending == 0 {
				p.Checkpoint = p.End
			}
		}
		if p.Checkpoint >= p.End {
			p.Total = p.Done
		}
		if p.Checkpoint >= p.End || time.Since(lastCheckpoint) >= interval {
			if err := checkpoint(ctx, *p); err != nil {
				return err
			}
			lastCheckpoint = time.Now()
		}
	}
	return nil
}

// Run brings tenant's job j to its end: a job without an end sequence yet gets the stream's last
// one (read now, after the job was recorded: later messages are the live consumer's) and a
// checkpoint of it, then Replay replays what is left. It returns the final progress or, when
// retention dropped messages after j's checkpoint, why the job can never finish (lost; nothing
// was replayed).
func Run(ctx context.Context, js jetstream.JetStream, tenant string, j Job, batch int, interval time.Duration,
	apply func(ctx context.Context, evs []*tpv1.TicketEvent) error, checkpoint func(ctx context.Context, p Progress) error) (p Progress, lost string, err error) {
	s, st, err := Tickets(ctx, js)
	if err != nil {
		return Progress{}, "", err
	}
	p = j.Progress()
	if p.End == 0 {
		p.End = st.LastSeq
		if err := checkpoint(ctx, p); err != nil {
			return p, "", err
		}
	} else if lost := Lost(p, st.FirstSeq); lost != "" {
		return p, lost, nil
	}
	if p.End > 0 && p.Checkpoint < p.End {
		if err := Replay(ctx, s, tenant, j.From, &p, batch, interval, apply, checkpoint); err != nil {
			return p, "", err
		}
	}
	return p, "", nil
}
