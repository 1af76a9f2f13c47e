// Package rebuild runs a tenant's KPI rebuild (DESIGN.md guarantee 5): it replays the tenant's
// TICKETS messages, up to the stream's last sequence when the rebuild began, into a new key
// generation while the live consumer writes every newer event to both generations, switches
// readers to it in one write, and deletes the old generation after a grace period.
//
// A job is leased: the replica running it renews the lease with every checkpoint; after a crash
// any replica takes it over from its checkpoint once the lease expired (Runner.Loop).
package rebuild

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	tpv1 "github.com/ticketpulse/ticketpulse/proto/ticketpulse/v1"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/contrib"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/generation"
	"github.com/ticketpulse/ticketpulse/services/kpi/internal/store"
	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
)

// Writer is the write path the replay feeds.
type Writer interface {
	Write(ctx context.Context, tickets []store.Ticket) (store.Result, error)
}

// Config tunes the jobs.
type Config struct {
	// Lease is how long a job stays with a replica that stopped renewing it.
	Lease time.Duration
	// Checkpoint is how often progress is recorded (and the lease renewed).
	Checkpoint time.Duration
	// Grace is how long the old generation is kept after the switch: longer than any read or
	// live batch that resolved it before the switch.
	Grace time.Duration
	// Check is how often the replica looks for jobs whose lease expired.
	Check time.Duration
	// Batch bounds the messages replayed per write.
	Batch int
}

// Defaults.
var Defaults = Config{Lease: 30 * time.Second, Checkpoint: 3 * time.Second, Grace: 2 * time.Minute, Check: 10 * time.Second, Batch: 500}

// Runner starts, resumes and runs rebuild jobs.
type Runner struct {
	gens *generation.Store
	js   jetstream.JetStream
	w    Writer
	cfg  Config
	jobs *replayjob.Runner
	log  *slog.Logger

	// onSwitch, when set, runs after a tenant's switch (see OnSwitch).
	onSwitch func(ctx context.Context, tenant string)
}

// New returns a runner whose jobs run until ctx ends; Loop resumes jobs of crashed replicas.
func New(ctx context.Context, gens *generation.Store, js jetstream.JetStream, w Writer, cfg Config, log *slog.Logger) *Runner {
	r := &Runner{gens: gens, js: js, w: w, cfg: cfg, log: log}
	r.jobs = replayjob.NewRunner(ctx, "kpi rebuild", gens, r.run, cfg.Lease, cfg.Check, log)
	return r
}

// OnSwitch sets a function run after a tenant switched to a new generation: what was derived
// from the old one (KPI snapshots) is derived again. Set it before Loop runs.
func (r *Runner) OnSwitch(f func(ctx context.Context, tenant string)) { r.onSwitch = f }

// ErrRetention is returned when TICKETS no longer holds the events a rebuild needs.
var ErrRetention = replayjob.ErrRetention

// Start starts a rebuild of tenant from from (zero: the first message), or attaches to the one
// running with the same from.
func (r *Runner) Start(ctx context.Context, tenant string, from time.Time) (generation.State, bool, error) {
	_, ts, err := replayjob.Tickets(ctx, r.js)
	if err != nil {
		return generation.State{}, false, err
	}
	if err := replayjob.CheckFrom(ts, from, " to derive KPIs from what is left"); err != nil {
		return generation.State{}, false, err
	}
	st, attached, err := r.gens.Start(ctx, tenant, from, r.jobs.Owner(), r.cfg.Lease)
	if err != nil || attached {
		return st, attached, err
	}
	r.jobs.Launch(tenant)
	return st, false, nil
}

// State returns tenant's generation state.
func (r *Runner) State(ctx context.Context, tenant string) (generation.State, error) {
	return r.gens.Get(ctx, tenant)
}

// Loop takes over, at start and every Check, the jobs whose lease expired, and runs them until
// ctx ends; it returns once its jobs stopped (their leases then expire and another replica, or
// this one after a restart, resumes them from their checkpoints).
func (r *Runner) Loop(ctx context.Context) error { return r.jobs.Loop(ctx) }

// run runs tenant's job from wherever its state says it is.
func (r *Runner) run(ctx context.Context, tenant string) error {
	st, err := r.gens.Get(ctx, tenant)
	if err != nil {
		return err
	}
	if st.Phase == generation.PhaseBuild {
		// On any error (Redis or NATS unreachable, the lease lost) the job stops here: this
		// replica's next check, or another replica's once the lease lapsed, resumes it from its
		// checkpoint. Only what cannot succeed by retrying fails the job (see build).
		if err := r.build(ctx, tenant, st); err != nil {
			return err
		}
		if st, err = r.gens.Get(ctx, tenant); err != nil {
			return err
		}
	}
	if st.Phase == generation.PhaseDrop {
		return r.drop(ctx, tenant, st)
	}
	return nil
}

// build replays TICKETS into the target generation and switches to it.
func (r *Runner) build(ctx context.Context, tenant string, st generation.State) error {
	target := generation.Keyspace(tenant, st.Target)
	p, lost, err := r.replay(ctx, tenant, target, st)
	if err != nil {
		return err
	}
	if lost != "" {
		if err := r.gens.Fail(ctx, tenant, r.jobs.Owner(), lost, r.cfg.Grace, r.cfg.Lease); err != nil {
			return err
		}
		return r.gens.Retire(ctx, target)
	}
	if err := r.gens.Switch(ctx, tenant, r.jobs.Owner(), r.cfg.Grace, r.cfg.Lease); err != nil {
		return err
	}
	// Nobody reads the old generation's totals any more: no rollup pass starts on it from now
	// on, so none is still writing it when the grace period ends (Drop retires it again).
	if err := r.gens.Retire(ctx, generation.Keyspace(tenant, st.Current)); err != nil {
		r.log.Warn("kpi rebuild", "tenant", tenant, "err", err)
	}
	r.log.Info("kpi rebuild switched", "tenant", tenant, "generation", st.Target, "events", p.Done)
	if r.onSwitch != nil {
		r.onSwitch(ctx, tenant)
	}
	return nil
}

// replay writes the tenant's messages, up to the end sequence, into target (replayjob.Run). The
// end sequence is read after the state says build: every message stored later is one a live
// writer fetches after that, and so writes to the target too.
func (r *Runner) replay(ctx context.Context, tenant, target string, st generation.State) (generation.Progress, string, error) {
	return replayjob.Run(ctx, r.js, tenant, st.Job, r.cfg.Batch, r.cfg.Checkpoint,
		func(ctx context.Context, evs []*tpv1.TicketEvent) error {
			var tickets []store.Ticket
			index := map[string]int{}
			for _, ev := range evs {
				id := contrib.StateID(ev)
				i, ok := index[id]
				if !ok {
					i = len(tickets)
					index[id] = i
					tickets = append(tickets, store.Ticket{Tenant: tenant, Keyspace: target, ID: id})
				}
				tickets[i].Events = append(tickets[i].Events, contrib.FromProto(ev))
			}
			if _, err := r.w.Write(ctx, tickets); err != nil {
				return fmt.Errorf("replay tenant %s into %s: %w", tenant, target, err)
			}
			return nil
		},
		func(ctx context.Context, p generation.Progress) error {
			return r.gens.Checkpoint(ctx, tenant, r.jobs.Owner(), r.cfg.Lease, p)
		})
}

// drop waits for the grace period, deletes the old generation and ends the job.
func (r *Runner) drop(ctx context.Context, tenant string, st generation.State) error {
	for {
		wait := time.Until(st.DropAfter)
		if wait <= 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(wait, r.cfg.Checkpoint)):
		}
		if err := r.gens.Renew(ctx, tenant, r.jobs.Owner(), generation.PhaseDrop, r.cfg.Lease); err != nil {
			return err
		}
	}
	ks := generation.Keyspace(tenant, st.Old)
	lastRenew := time.Now()
	n, err := r.gens.Drop(ctx, ks, func() error {
		if time.Since(lastRenew) < r.cfg.Checkpoint {
			return nil
		}
		lastRenew = time.Now()
		return r.gens.Renew(ctx, tenant, r.jobs.Owner(), generation.PhaseDrop, r.cfg.Lease)
	})
	if err != nil {
		return err
	}
	r.log.Info("kpi rebuild: old generation deleted", "tenant", tenant, "generation", st.Old, "keys", n)
	return r.gens.Dropped(ctx, tenant, r.jobs.Owner())
}
