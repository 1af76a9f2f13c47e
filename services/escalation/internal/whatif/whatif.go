package whatif

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/escalation/internal/escalationstore"
)

// Store reads the escalations that fired.
type Store interface {
	Triggered(ctx context.Context, tenant string, from, to time.Time, most int) ([]*escalationstore.Record, bool, error)
}

var _ Store = (*escalationstore.Store)(nil)

// ErrTooManyReal refuses a range in which more escalations fired than a report may hold.
var ErrTooManyReal = errors.New("too many escalations fired")

// Report is a simulation compared with what fired.
type Report struct {
	Diffs []Diff
	// Events is how many events were judged (the range's and the Lead before it).
	Events               int64
	Added, Removed, Same int
	// Truncated: Diffs stopped at run.Max; End says where the simulation stopped.
	Truncated    bool
	End          time.Time
	NotSimulated []string
}

// Replay reads the tenant's events (at most maxEvents messages), simulates run on them and
// compares the result with the escalations that fired in the same span. It writes nothing
// anywhere.
func Replay(ctx context.Context, js jetstream.JetStream, store Store, tenant string, run Run, maxEvents int) (Report, error) {
	evs, _, err := Read(ctx, js, tenant, run.From, run.To, maxEvents)
	if err != nil {
		return Report{}, err
	}
	res, err := Simulate(ctx, run, evs)
	if err != nil {
		return Report{}, err
	}
	recs, more, err := store.Triggered(ctx, tenant, run.From, res.End, run.Max)
	if err != nil {
		return Report{}, err
	}
	if more {
		return Report{}, fmt.Errorf("%w: more than %d between %s and %s", ErrTooManyReal, run.Max,
			run.From.UTC().Format(time.RFC3339), res.End.UTC().Format(time.RFC3339))
	}
	var reals []Real
	for _, r := range recs {
		// Agent and team escalations come from KPI rules, which are not simulated.
		if r.Subject.Kind != escalationstore.Ticket {
			continue
		}
		for _, l := range Levels(r) {
			if !l.At.Before(run.From) && l.At.Before(res.End) {
				reals = append(reals, l)
			}
		}
	}
	rep := Report{Diffs: Compare(res.Fired, reals), Events: int64(len(evs)), Truncated: res.Truncated, End: res.End,
		NotSimulated: res.NotSimulated}
	for _, d := range rep.Diffs {
		switch d.Difference {
		case tpv1.Difference_DIFFERENCE_ADDED:
			rep.Added++
		case tpv1.Difference_DIFFERENCE_REMOVED:
			rep.Removed++
		case tpv1.Difference_DIFFERENCE_SAME:
			rep.Same++
		}
	}
	if len(rep.Diffs) > run.Max {
		rep.Diffs, rep.Truncated = rep.Diffs[:run.Max], true
	}
	return rep, nil
}
