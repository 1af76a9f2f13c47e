package replayjob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"
)

// Jobs is the list of a service's jobs and their leases.
type Jobs interface {
	// Jobs lists the tenants that may have a job.
	Jobs(ctx context.Context) ([]string, error)
	// Claim takes tenant's job over for owner when its lease expired.
	Claim(ctx context.Context, tenant, owner string, lease time.Duration) (bool, error)
	// Forget removes tenant from the list when it has no job.
	Forget(ctx context.Context, tenant string) error
}

// Runner runs jobs in the background, at most one per tenant in this replica, and resumes those
// whose lease expired (Loop).
type Runner struct {
	name  string
	jobs  Jobs
	run   func(ctx context.Context, tenant string) error
	lease time.Duration
	check time.Duration
	owner string
	log   *slog.Logger

	mu      sync.Mutex
	running map[string]bool
	// ctx is the service's: a job outlives the RPC that started it, and ends with Loop.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewRunner returns a runner whose jobs run (run) until ctx ends or Loop returns; it holds them
// for lease and looks for lapsed ones every check. name starts its log messages.
func NewRunner(ctx context.Context, name string, jobs Jobs, run func(ctx context.Context, tenant string) error, lease, check time.Duration, log *slog.Logger) *Runner {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	ctx, cancel := context.WithCancel(ctx)
	return &Runner{name: name, jobs: jobs, run: run, lease: lease, check: check, owner: hex.EncodeToString(b), log: log,
		ctx: ctx, cancel: cancel, running: map[string]bool{}}
}

// Owner is this replica's name in the leases it holds.
func (r *Runner) Owner() string { return r.owner }

// Launch runs tenant's job in the background unless this replica already runs it.
func (r *Runner) Launch(tenant string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[tenant] {
		return
	}
	r.running[tenant] = true
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			delete(r.running, tenant)
			r.mu.Unlock()
		}()
		// On an error the job stops; a check (this replica's, or another's once the lease
		// lapsed) resumes it from its checkpoint.
		if err := r.run(r.ctx, tenant); err != nil && r.ctx.Err() == nil {
			r.log.Warn(r.name, "tenant", tenant, "err", err)
		}
	}()
}

// Loop takes over, at start and every check, the jobs whose lease expired, and runs them until
// ctx ends; it returns once its jobs stopped (their leases then expire and another replica, or
// this one after a restart, resumes them from their checkpoints).
func (r *Runner) Loop(ctx context.Context) error {
	defer func() {
		r.cancel()
		r.wg.Wait()
	}()
	for {
		r.resume(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(r.check):
		}
	}
}

func (r *Runner) resume(ctx context.Context) {
	tenants, err := r.jobs.Jobs(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn(r.name+": list jobs", "err", err)
		}
		return
	}
	for _, tenant := range tenants {
		r.mu.Lock()
		mine := r.running[tenant]
		r.mu.Unlock()
		if mine {
			continue
		}
		ok, err := r.jobs.Claim(ctx, tenant, r.owner, r.lease)
		switch {
		case ctx.Err() != nil:
			return // stopping: not a failure of the job
		case err != nil:
			r.log.Warn(r.name+": claim job", "tenant", tenant, "err", err)
		case ok:
			r.log.Info(r.name+": resuming job", "tenant", tenant)
			r.Launch(tenant)
		default:
			if err := r.jobs.Forget(ctx, tenant); err != nil && ctx.Err() == nil {
				r.log.Warn(r.name+": forget finished job", "tenant", tenant, "err", err)
			}
		}
	}
}
