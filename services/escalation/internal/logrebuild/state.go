// Package logrebuild rebuilds a tenant's ticket log (package ticketlog) from the TICKETS stream
// while live events keep flowing, and judges every replayed ticket again.
//
// The ticket log is a set of events keyed by event id, only ever added to, and every event in it
// came from TICKETS. So replaying the tenant's TICKETS messages into it, in place, leaves each
// ticket's log holding exactly the events a fresh log built from the stream would hold (plus any
// the stream's retention already dropped, which a fresh log would lose): no second generation of
// keys and no switch are needed, and readers never see a partial log, only one that gains the
// events it had lost. Live events keep going to the same keys; storing an event twice is a no-op
// and judging a ticket again changes nothing already changed. Breaches older than
// -history-horizon when judged are recorded, never raised (so a rebuild pages nobody for history).
//
// A job is leased like kpi's rebuild (one small hash per tenant, tp:{<tenant>:escrb}): the
// replica running it renews the lease at every checkpoint, any replica resumes it from its
// checkpoint once the lease lapsed.
package logrebuild

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
)

// StateKey is the hash holding tenant's rebuild state: phase ("" or "build"), from, end, ckpt,
// done, total, started (unix ms), owner, lease (unix ms), result ("done" or "failed") and err.
func StateKey(tenant string) string { return "tp:{" + tenant + ":escrb}" }

// JobsKey is the set of tenants that may have a rebuild running.
const JobsKey = "tp:{escrb}:jobs"

// State is a tenant's rebuild state.
type State struct {
	Building bool
	replayjob.Job
}

// ErrRunning is returned by Start when another rebuild of the tenant runs.
var ErrRunning = errors.New("a rebuild of the tenant's ticket log is running")

// ErrLeaseLost is returned when another replica took the job over.
var ErrLeaseLost = replayjob.ErrLeaseLost

// States reads and changes rebuild states.
type States struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// NewStates returns a state store.
func NewStates(rdb redis.UniversalClient) *States { return &States{rdb: rdb, now: time.Now} }

// Get reads tenant's state.
func (s *States) Get(ctx context.Context, tenant string) (State, error) {
	h, err := s.rdb.HGetAll(ctx, StateKey(tenant)).Result()
	if err != nil {
		return State{}, fmt.Errorf("read ticket log rebuild of tenant %s: %w", tenant, err)
	}
	f := replayjob.NewHash(h)
	st := State{Building: f.Str("phase") == "build", Job: f.Job()}
	if err := f.Err(); err != nil {
		return State{}, fmt.Errorf("ticket log rebuild of tenant %s: %w", tenant, err)
	}
	return st, nil
}

func (s *States) run(ctx context.Context, sc *redis.Script, tenant string, args ...any) (string, error) {
	return replayjob.Script(ctx, s.rdb, sc, StateKey(tenant), args...)
}

// startScript: ARGV from, now, owner, lease until. Returns "started", "attached" or "running".
var startScript = redis.NewScript(`
if (redis.call('HGET', KEYS[1], 'phase') or '') == 'build' then
  if (redis.call('HGET', KEYS[1], 'from') or '0') == ARGV[1] then return 'attached' end
  return 'running'
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'phase', 'build', 'from', ARGV[1], 'started', ARGV[2], 'owner', ARGV[3], 'lease', ARGV[4])
return 'started'
`)

// Start records a rebuild of tenant's ticket log owned by owner; attached is true when one with
// the same from already runs, another one fails with ErrRunning.
func (s *States) Start(ctx context.Context, tenant string, from time.Time, owner string, lease time.Duration) (State, bool, error) {
	if err := s.rdb.SAdd(ctx, JobsKey, tenant).Err(); err != nil {
		return State{}, false, fmt.Errorf("record ticket log rebuild of tenant %s: %w", tenant, err)
	}
	now := s.now()
	res, err := s.run(ctx, startScript, tenant, replayjob.MS(from), replayjob.MS(now), owner, replayjob.MS(now.Add(lease)))
	if err != nil {
		return State{}, false, fmt.Errorf("start ticket log rebuild of tenant %s: %w", tenant, err)
	}
	st, err := s.Get(ctx, tenant)
	if err != nil {
		return st, false, err
	}
	switch res {
	case "started":
		return st, false, nil
	case "attached":
		return st, true, nil
	}
	return st, false, replayjob.Running(ErrRunning, st.Started, st.From, st.Done, st.Total)
}

// Claim takes tenant's job over when its lease lapsed (or owner holds it already).
func (s *States) Claim(ctx context.Context, tenant, owner string, lease time.Duration) (bool, error) {
	ok, err := replayjob.Claim(ctx, s.rdb, StateKey(tenant), owner, s.now(), lease)
	if err != nil {
		return false, fmt.Errorf("claim ticket log rebuild of tenant %s: %w", tenant, err)
	}
	return ok, nil
}

// Progress is what a checkpoint records.
type Progress = replayjob.Progress

func (s *States) update(ctx context.Context, tenant, owner string, lease time.Duration, fields ...any) error {
	ok, err := replayjob.Update(ctx, s.rdb, StateKey(tenant), owner, "build", s.now().Add(lease), fields...)
	if err != nil {
		return fmt.Errorf("record ticket log rebuild of tenant %s: %w", tenant, err)
	}
	if !ok {
		return ErrLeaseLost
	}
	return nil
}

// Checkpoint renews owner's lease and records p.
func (s *States) Checkpoint(ctx context.Context, tenant, owner string, lease time.Duration, p Progress) error {
	if err := s.update(ctx, tenant, owner, lease, p.Fields()...); err != nil {
		return err
	}
	// Kept in the job list by its owner: Forget racing a Start may have removed it.
	return s.rdb.SAdd(ctx, JobsKey, tenant).Err()
}

// Finish ends owner's job with result ("done" or "failed") and reason.
func (s *States) Finish(ctx context.Context, tenant, owner, result, reason string) error {
	if err := s.update(ctx, tenant, owner, 0, "phase", "", "result", result, "err", reason, "owner", "", "lease", 0); err != nil {
		return err
	}
	return s.Forget(ctx, tenant)
}

// Jobs lists the tenants that may have a job running.
func (s *States) Jobs(ctx context.Context) ([]string, error) {
	ts, err := s.rdb.SMembers(ctx, JobsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list ticket log rebuilds: %w", err)
	}
	return ts, nil
}

// Forget removes tenant from the job list when it has no job.
func (s *States) Forget(ctx context.Context, tenant string) error {
	st, err := s.Get(ctx, tenant)
	if err != nil || st.Building {
		return err
	}
	return s.rdb.SRem(ctx, JobsKey, tenant).Err()
}
