package logrebuild

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
)

// Judge stores events in the ticket log and judges the tickets they touch (engine.Tickets).
type Judge func(ctx context.Context, evs []*tpv1.TicketEvent) error

// Config tunes the jobs.
type Config struct {
	Lease, Checkpoint, Check time.Duration
	Batch                    int
}

// Defaults.
var Defaults = Config{Lease: 30 * time.Second, Checkpoint: 3 * time.Second, Check: 10 * time.Second, Batch: 500}

// ErrRetention is returned when TICKETS no longer holds the events a rebuild needs.
var ErrRetention = replayjob.ErrRetention

// Runner starts, resumes and runs ticket log rebuilds.
type Runner struct {
	states *States
	js     jetstream.JetStream
	judge  Judge
	cfg    Config
	jobs   *replayjob.Runner
	log    *slog.Logger
}

// NewRunner returns a runner whose jobs run until ctx ends or Loop returns.
func NewRunner(ctx context.Context, states *States, js jetstream.JetStream, judge Judge, cfg Config, log *slog.Logger) *Runner {
	r := &Runner{states: states, js: js, judge: judge, cfg: cfg, log: log}
	r.jobs = replayjob.NewRunner(ctx, "ticket log rebuild", states, r.run, cfg.Lease, cfg.Check, log)
	return r
}

// State returns tenant's state.
func (r *Runner) State(ctx context.Context, tenant string) (State, error) {
	return r.states.Get(ctx, tenant)
}

// Start starts a rebuild of tenant's ticket log from from (zero: the first message), or attaches
// to the one running with the same from.
func (r *Runner) Start(ctx context.Context, tenant string, from time.Time) (State, bool, error) {
	_, ts, err := replayjob.Tickets(ctx, r.js)
	if err != nil {
		return State{}, false, err
	}
	if err := replayjob.CheckFrom(ts, from, ""); err != nil {
		return State{}, false, err
	}
	st, attached, err := r.states.Start(ctx, tenant, from, r.jobs.Owner(), r.cfg.Lease)
	if err != nil || attached {
		return st, attached, err
	}
	r.jobs.Launch(tenant)
	return st, false, nil
}

// Loop resumes, at start and every Check, the jobs whose lease lapsed; it returns when ctx ends,
// once its jobs stopped.
func (r *Runner) Loop(ctx context.Context) error { return r.jobs.Loop(ctx) }

func (r *Runner) run(ctx context.Context, tenant string) error {
	st, err := r.states.Get(ctx, tenant)
	if err != nil || !st.Building {
		return err
	}
	p, lost, err := r.replay(ctx, tenant, st)
	if err != nil {
		return err
	}
	if lost != "" {
		return r.states.Finish(ctx, tenant, r.jobs.Owner(), "failed", lost)
	}
	r.log.Info("ticket log rebuilt", "tenant", tenant, "events", p.Done)
	return r.states.Finish(ctx, tenant, r.jobs.Owner(), "done", "")
}

// replay stores the tenant's messages, up to the end sequence, in the ticket log and judges
// their tickets (replayjob.Run).
func (r *Runner) replay(ctx context.Context, tenant string, st State) (Progress, string, error) {
	return replayjob.Run(ctx, r.js, tenant, st.Job, r.cfg.Batch, r.cfg.Checkpoint,
		func(ctx context.Context, evs []*tpv1.TicketEvent) error {
			if err := r.judge(ctx, evs); err != nil {
				return fmt.Errorf("replay tenant %s: %w", tenant, err)
			}
			return nil
		},
		func(ctx context.Context, p Progress) error {
			return r.states.Checkpoint(ctx, tenant, r.jobs.Owner(), r.cfg.Lease, p)
		})
}
