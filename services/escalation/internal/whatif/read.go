package whatif

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/escalation/internal/judge"
	"github.com/ticketpulse/ticketpulse/services/platform/eventcodec"
	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
	"github.com/ticketpulse/ticketpulse/services/platform/stream"
)

// Lead is how much of the tickets' history before a range is replayed with it: a ticket created
// before From still has its clocks. Nothing that fires in it is reported.
const Lead = 7 * 24 * time.Hour

// skew is how much earlier than it was stored an event may say it occurred and still be read:
// a helpdesk's clock may run ahead of ours. Reading starts at the stream time From - Lead - skew,
// since an event is stored after it occurs.
const skew = time.Hour

// ErrTooManyEvents refuses a range holding more of the tenant's messages than a simulation replays.
var ErrTooManyEvents = errors.New("too many events")

// readBatch is how many messages one fetch asks for.
const readBatch = 1000

// Read returns the tenant's events that occurred in [from - Lead, to), read from TICKETS with
// an ordered consumer on the tenant's subjects (tickets.<tenant>.>) from the stream time at
// which they can start, up to the tenant's last message when the call began. It reads at most
// most messages (ErrTooManyEvents beyond) and returns how many it read.
func Read(ctx context.Context, js jetstream.JetStream, tenant string, from, to time.Time, most int) ([]Event, int64, error) {
	s, _, err := replayjob.Tickets(ctx, js)
	if err != nil {
		return nil, 0, err
	}
	filter := stream.TicketSubject(tenant, ">")
	last, err := s.GetLastMsgForSubject(ctx, filter)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("last event of %s: %w", tenant, err)
	}
	start := from.Add(-Lead - skew)
	if last.Time.Before(start) {
		return nil, 0, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter}, DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("read events of %s: %w", tenant, err)
	}
	var out []Event
	var read int64
	keepFrom := from.Add(-Lead)
	for {
		msgs, err := cons.Fetch(readBatch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, read, fmt.Errorf("read events of %s: %w", tenant, err)
		}
		done, got := false, 0
		for m := range msgs.Messages() {
			got++
			md, err := m.Metadata()
			if err != nil {
				return nil, read, fmt.Errorf("read events of %s: message metadata: %w", tenant, err)
			}
			if md.Sequence.Stream > last.Sequence {
				// Stored after the call began.
				done = true
				break
			}
			if read++; read > int64(most) {
				return nil, read, fmt.Errorf("%w: more than %d of tenant %s's messages stored since %s", ErrTooManyEvents, most, tenant, start.UTC().Format(time.RFC3339))
			}
			done = md.Sequence.Stream == last.Sequence
			// The live consumer dead-letters an undecodable message; it judges nothing.
			_, ev, err := eventcodec.Decode(m)
			if err != nil || ev.GetTenant() != tenant {
				continue
			}
			at := ev.GetOccurredAt().AsTime()
			if at.Before(keepFrom) || !at.Before(to) {
				continue
			}
			out = append(out, Event{Ticket: ev.GetTicketId(), Seq: md.Sequence.Stream, Event: judge.EventOf(ev.GetId(), ev)})
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, read, fmt.Errorf("read events of %s: %w", tenant, err)
		}
		if err := ctx.Err(); err != nil {
			return nil, read, err
		}
		if done {
			return out, read, nil
		}
		if got == 0 {
			// Nothing came within the wait: either nothing of the tenant's is left below its
			// last message (retention dropped it while reading), or the server is slow.
			info, err := cons.Info(ctx)
			if err != nil {
				return nil, read, fmt.Errorf("read events of %s: %w", tenant, err)
			}
			if info.NumPending == 0 {
				return out, read, nil
			}
		}
	}
}
