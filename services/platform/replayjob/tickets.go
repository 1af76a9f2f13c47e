package replayjob

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketpulse/ticketpulse/services/platform/stream"
)

// ErrRetention is returned when TICKETS no longer holds the events a rebuild needs.
var ErrRetention = errors.New("TICKETS no longer holds the events to rebuild from")

// ErrLeaseLost is returned when another replica took the job over.
var ErrLeaseLost = errors.New("the rebuild job's lease was taken over by another replica")

// Tickets returns the TICKETS stream and its state now.
func Tickets(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, jetstream.StreamState, error) {
	s, err := js.Stream(ctx, stream.TicketsName)
	if err != nil {
		return nil, jetstream.StreamState{}, fmt.Errorf("stream %s: %w", stream.TicketsName, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, jetstream.StreamState{}, fmt.Errorf("stream %s: %w", stream.TicketsName, err)
	}
	return s, info.State, nil
}

// CheckFrom refuses, wrapping ErrRetention, a job from from (zero: the first message) when the
// stream's first message is not the first ever stored and came after from: the replay would
// silently leave out what retention dropped. hint ends the message.
func CheckFrom(st jetstream.StreamState, from time.Time, hint string) error {
	if st.FirstSeq > 1 && (from.IsZero() || from.Before(st.FirstTime)) {
		return fmt.Errorf("%w: its first message (sequence %d) was stored at %s, the earlier ones are gone (retention); rebuild from that time or later (--from %s)%s",
			ErrRetention, st.FirstSeq, st.FirstTime.UTC().Format(time.RFC3339), st.FirstTime.UTC().Add(time.Second).Truncate(time.Second).Format(time.RFC3339), hint)
	}
	return nil
}

// Lost is why a job stopped at p cannot resume, the stream now starting at first (retention
// dropped messages after its checkpoint); "" when it can.
func Lost(p Progress, first uint64) string {
	if p.Checkpoint > 0 && p.Checkpoint < p.End && first > p.Checkpoint+1 {
		return fmt.Sprintf("%v: the job stopped at sequence %d and the stream now starts at %d (retention); start it again with a later --from",
			ErrRetention, p.Checkpoint, first)
	}
	return ""
}

// Running is the error, wrapping err, that refuses a start while another job runs: when it
// started, from when (zero: the first message) and how far it got.
func Running(err error, started, from time.Time, done, total int64) error {
	what := "the first message"
	if !from.IsZero() {
		what = from.Format(time.RFC3339)
	}
	return fmt.Errorf("%w: it started at %s, rebuilds from %s, and has replayed %d of about %d events; watch it, or wait for it to end",
		err, started.Format(time.RFC3339), what, done, total)
}
