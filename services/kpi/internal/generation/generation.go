// Package generation keeps, per tenant, which generation of KPI keys readers use and the state of
// a rebuild into a new one (DESIGN.md guarantee 5).
//
// Every KPI key of a tenant is built from a keyspace in place of the tenant: generation 0 is the
// tenant itself (the keys as they always were), generation g >= 1 is "<tenant>@<g>", e.g.
// tp:{acme@2:t:T-1}. '@' never occurs in a tenant id, so no two generations, and no generation
// and another tenant, share a key.
//
// The state is one small hash per tenant, tp:{<tenant>:kgen}, in one slot, changed only by the
// scripts here:
//
//	cur        the generation readers and writers use (missing: 0)
//	last       the highest generation ever allocated, so a new target is never a used one
//	phase      "" (none), "build" (a rebuild writes target), "drop" (old waits for deletion)
//	target     the generation being built (kept after the switch, for progress)
//	from       unix ms of --from, 0 for the whole stream
//	end        the TICKETS sequence the replay runs up to (S_end), read after phase became build
//	ckpt       the last TICKETS sequence replayed into target
//	done total events replayed, and the estimate of all of them
//	started switched  unix ms
//	owner lease       the replica running the job, and until when (unix ms) it holds it
//	old drop_after    the generation to delete, and from when (unix ms)
//	result err        the latest job's outcome: "switched", "done" or "failed" with its reason
package generation

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/replayjob"
)

// Keyspace is the name the keys of tenant's generation g are built from.
func Keyspace(tenant string, g int64) string {
	if g == 0 {
		return tenant
	}
	return tenant + "@" + strconv.FormatInt(g, 10)
}

// StateKey is the hash holding tenant's generation state.
func StateKey(tenant string) string { return "tp:{" + tenant + ":kgen}" }

// JobsKey is the set of tenants with a job (a rebuild or a deletion) not finished, which every
// replica checks for jobs whose lease expired.
const JobsKey = "tp:{kgen}:jobs"

// Phases.
const (
	PhaseNone  = ""
	PhaseBuild = "build"
	PhaseDrop  = "drop"
)

// State is a tenant's generation state.
type State struct {
	Current, Last, Target int64
	Phase                 string
	replayjob.Job
	Switched  time.Time
	Old       int64
	DropAfter time.Time
}

// ErrRunning is returned by Start when another rebuild of the tenant runs.
var ErrRunning = errors.New("a rebuild of the tenant is running")

// ErrLeaseLost is returned when another replica took the job over.
var ErrLeaseLost = replayjob.ErrLeaseLost

// Store reads and changes generation states.
type Store struct {
	rdb redis.UniversalClient
	now func() time.Time
}

// New returns a store.
func New(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb, now: time.Now} }

func parse(h map[string]string) (State, error) {
	var st State
	f := replayjob.NewHash(h)
	st.Current, st.Last, st.Target, st.Old = f.Int64("cur"), f.Int64("last"), f.Int64("target"), f.Int64("old")
	st.Phase, st.Job = f.Str("phase"), f.Job()
	st.Switched, st.DropAfter = f.Time("switched"), f.Time("drop_after")
	return st, f.Err()
}

// Get reads tenant's state.
func (s *Store) Get(ctx context.Context, tenant string) (State, error) {
	h, err := s.rdb.HGetAll(ctx, StateKey(tenant)).Result()
	if err != nil {
		return State{}, fmt.Errorf("read key generation of tenant %s: %w", tenant, err)
	}
	st, err := parse(h)
	if err != nil {
		return State{}, fmt.Errorf("key generation of tenant %s: %w", tenant, err)
	}
	return st, nil
}

// Current is the keyspace readers of tenant use now: one HGET. A generation becomes current only
// once its rebuild has replayed the whole stream up to its end sequence (one HSET in Switch), and
// the one it replaces stays for a grace period longer than any read, so a reader never sees a
// half-built or a half-deleted generation.
func (s *Store) Current(ctx context.Context, tenant string) (string, error) {
	v, err := s.rdb.HGet(ctx, StateKey(tenant), "cur").Result()
	if errors.Is(err, redis.Nil) {
		return tenant, nil
	}
	if err != nil {
		return "", fmt.Errorf("read key generation of tenant %s: %w", tenant, err)
	}
	g, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return "", fmt.Errorf("key generation of tenant %s: %q: %w", tenant, v, err)
	}
	return Keyspace(tenant, g), nil
}

// Spaces queues the read of the keyspaces tenant's live events go to (store.Generations): the
// current one and, while a rebuild builds, its target.
func (s *Store) Spaces(ctx context.Context, pipe redis.Pipeliner, tenant string) func() ([]string, error) {
	cmd := pipe.HMGet(ctx, StateKey(tenant), "cur", "phase", "target")
	return func() ([]string, error) {
		vals, err := cmd.Result()
		if err != nil {
			return nil, err
		}
		str := func(i int) string {
			v, _ := vals[i].(string)
			return v
		}
		cur, target := int64(0), int64(0)
		if v := str(0); v != "" {
			if cur, err = strconv.ParseInt(v, 10, 64); err != nil {
				return nil, fmt.Errorf("current generation %q: %w", v, err)
			}
		}
		if str(1) != PhaseBuild {
			return []string{Keyspace(tenant, cur)}, nil
		}
		if target, err = strconv.ParseInt(str(2), 10, 64); err != nil {
			return nil, fmt.Errorf("target generation %q: %w", str(2), err)
		}
		return []string{Keyspace(tenant, cur), Keyspace(tenant, target)}, nil
	}
}

// startScript starts a rebuild: ARGV from, now, owner, lease until. Returns "started",
// "attached" (a rebuild with the same from runs, or has just switched), or "running"/"dropping"
// (refused: another rebuild runs, or the previous one's old generation awaits deletion).
var startScript = redis.NewScript(`
local phase = redis.call('HGET', KEYS[1], 'phase') or ''
if phase == 'build' then
  if (redis.call('HGET', KEYS[1], 'from') or '0') == ARGV[1] then return 'attached' end
  return 'running'
end
if phase == 'drop' then
  -- The same request again, just after its rebuild switched: it attaches to the finished job.
  if (redis.call('HGET', KEYS[1], 'result') or '') == 'switched' and (redis.call('HGET', KEYS[1], 'from') or '0') == ARGV[1] then
    return 'attached'
  end
  return 'dropping'
end
local cur = tonumber(redis.call('HGET', KEYS[1], 'cur') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
if cur > last then last = cur end
local target = last + 1
redis.call('HDEL', KEYS[1], 'end', 'ckpt', 'done', 'total', 'switched', 'old', 'drop_after', 'err', 'result')
redis.call('HSET', KEYS[1], 'cur', cur, 'last', target, 'target', target, 'phase', 'build', 'from', ARGV[1],
  'started', ARGV[2], 'owner', ARGV[3], 'lease', ARGV[4])
return 'started'
`)

// Start records a rebuild of tenant into a new generation, owned by owner until lease. attached
// is true when a rebuild with the same from already runs or has just switched (its old generation
// not yet deleted); any other start then fails with ErrRunning.
func (s *Store) Start(ctx context.Context, tenant string, from time.Time, owner string, lease time.Duration) (st State, attached bool, err error) {
	// The set first: a job whose tenant is missing from it would never be resumed by another
	// replica, while a tenant in it without a job is only skipped (and removed) by the check.
	if err := s.rdb.SAdd(ctx, JobsKey, tenant).Err(); err != nil {
		return State{}, false, fmt.Errorf("record rebuild job of tenant %s: %w", tenant, err)
	}
	now := s.now()
	res, err := s.run(ctx, startScript, tenant, replayjob.MS(from), replayjob.MS(now), owner, replayjob.MS(now.Add(lease)))
	if err != nil {
		return State{}, false, fmt.Errorf("start rebuild of tenant %s: %w", tenant, err)
	}
	st, err = s.Get(ctx, tenant)
	if err != nil {
		return st, false, err
	}
	switch res {
	case "started":
		return st, false, nil
	case "attached":
		return st, true, nil
	case "dropping":
		return st, false, fmt.Errorf("%w: the previous rebuild switched at %s and deletes generation %d from %s; start again once that is done",
			ErrRunning, st.Switched.Format(time.RFC3339), st.Old, st.DropAfter.Format(time.RFC3339))
	default:
		return st, false, replayjob.Running(ErrRunning, st.Started, st.From, st.Done, st.Total)
	}
}

func (s *Store) run(ctx context.Context, sc *redis.Script, tenant string, args ...any) (string, error) {
	return replayjob.Script(ctx, s.rdb, sc, StateKey(tenant), args...)
}

// Claim takes tenant's job over for owner when its lease expired (or owner holds it already).
func (s *Store) Claim(ctx context.Context, tenant, owner string, lease time.Duration) (bool, error) {
	ok, err := replayjob.Claim(ctx, s.rdb, StateKey(tenant), owner, s.now(), lease)
	if err != nil {
		return false, fmt.Errorf("claim rebuild job of tenant %s: %w", tenant, err)
	}
	return ok, nil
}

// Progress is what a checkpoint records.
type Progress = replayjob.Progress

// Checkpoint renews owner's lease and records p; ErrLeaseLost when owner no longer holds the job.
func (s *Store) Checkpoint(ctx context.Context, tenant, owner string, lease time.Duration, p Progress) error {
	return s.update(ctx, tenant, owner, PhaseBuild, lease, p.Fields()...)
}

// Renew renews owner's lease of a job in phase.
func (s *Store) Renew(ctx context.Context, tenant, owner, phase string, lease time.Duration) error {
	return s.update(ctx, tenant, owner, phase, lease)
}

func (s *Store) update(ctx context.Context, tenant, owner, phase string, lease time.Duration, fields ...any) error {
	ok, err := replayjob.Update(ctx, s.rdb, StateKey(tenant), owner, phase, s.now().Add(lease), fields...)
	if err != nil {
		return fmt.Errorf("record rebuild progress of tenant %s: %w", tenant, err)
	}
	if !ok {
		return ErrLeaseLost
	}
	// Kept in the job list by its owner: a Forget racing a Start may have removed it.
	if err := s.rdb.SAdd(ctx, JobsKey, tenant).Err(); err != nil {
		return fmt.Errorf("record rebuild job of tenant %s: %w", tenant, err)
	}
	return nil
}

// switchScript makes the target current, in the one write readers and writers read: ARGV owner,
// now, drop after, lease. Returns 1 on success.
var switchScript = redis.NewScript(`
if (redis.call('HGET', KEYS[1], 'owner') or '') ~= ARGV[1] then return '0' end
if (redis.call('HGET', KEYS[1], 'phase') or '') ~= 'build' then return '0' end
local cur = redis.call('HGET', KEYS[1], 'cur') or '0'
redis.call('HSET', KEYS[1], 'cur', redis.call('HGET', KEYS[1], 'target'), 'old', cur, 'phase', 'drop',
  'switched', ARGV[2], 'drop_after', ARGV[3], 'lease', ARGV[4], 'result', 'switched')
return '1'
`)

// Switch makes the target generation current and schedules the old one for deletion after grace.
func (s *Store) Switch(ctx context.Context, tenant, owner string, grace, lease time.Duration) error {
	now := s.now()
	res, err := s.run(ctx, switchScript, tenant, owner, replayjob.MS(now), replayjob.MS(now.Add(grace)), replayjob.MS(now.Add(lease)))
	if err != nil {
		return fmt.Errorf("switch generation of tenant %s: %w", tenant, err)
	}
	if res != "1" {
		return ErrLeaseLost
	}
	return nil
}

// failScript ends a build that cannot finish: the current generation stays, the partial target
// is scheduled for deletion. ARGV owner, reason, drop after, lease.
var failScript = redis.NewScript(`
if (redis.call('HGET', KEYS[1], 'owner') or '') ~= ARGV[1] then return '0' end
if (redis.call('HGET', KEYS[1], 'phase') or '') ~= 'build' then return '0' end
redis.call('HSET', KEYS[1], 'old', redis.call('HGET', KEYS[1], 'target'), 'phase', 'drop',
  'err', ARGV[2], 'drop_after', ARGV[3], 'lease', ARGV[4], 'result', 'failed')
return '1'
`)

// Fail ends owner's build with reason; the partial target is deleted after grace.
func (s *Store) Fail(ctx context.Context, tenant, owner, reason string, grace, lease time.Duration) error {
	now := s.now()
	res, err := s.run(ctx, failScript, tenant, owner, reason, replayjob.MS(now.Add(grace)), replayjob.MS(now.Add(lease)))
	if err != nil {
		return fmt.Errorf("fail rebuild of tenant %s: %w", tenant, err)
	}
	if res != "1" {
		return ErrLeaseLost
	}
	return nil
}

// droppedScript ends the job once the old generation is deleted. ARGV owner.
var droppedScript = redis.NewScript(`
if (redis.call('HGET', KEYS[1], 'owner') or '') ~= ARGV[1] then return '0' end
if (redis.call('HGET', KEYS[1], 'phase') or '') ~= 'drop' then return '0' end
redis.call('HDEL', KEYS[1], 'owner', 'lease', 'old', 'drop_after')
redis.call('HSET', KEYS[1], 'phase', '')
if (redis.call('HGET', KEYS[1], 'result') or '') == 'switched' then redis.call('HSET', KEYS[1], 'result', 'done') end
return '1'
`)

// Dropped ends owner's job after the old generation was deleted.
func (s *Store) Dropped(ctx context.Context, tenant, owner string) error {
	res, err := s.run(ctx, droppedScript, tenant, owner)
	if err != nil {
		return fmt.Errorf("end rebuild job of tenant %s: %w", tenant, err)
	}
	if res != "1" {
		return ErrLeaseLost
	}
	// Another start may have added the tenant again since; the periodic check re-adds nothing,
	// but Start adds before its script, so only a tenant without a job is removed here.
	st, err := s.Get(ctx, tenant)
	if err != nil {
		return err
	}
	if st.Phase == PhaseNone {
		if err := s.rdb.SRem(ctx, JobsKey, tenant).Err(); err != nil {
			return fmt.Errorf("end rebuild job of tenant %s: %w", tenant, err)
		}
	}
	return nil
}

// Jobs lists the tenants that may have an unfinished job.
func (s *Store) Jobs(ctx context.Context) ([]string, error) {
	ts, err := s.rdb.SMembers(ctx, JobsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list rebuild jobs: %w", err)
	}
	return ts, nil
}

// Forget removes tenant from the job list when it has no job.
func (s *Store) Forget(ctx context.Context, tenant string) error {
	st, err := s.Get(ctx, tenant)
	if err != nil || st.Phase != PhaseNone {
		return err
	}
	return s.rdb.SRem(ctx, JobsKey, tenant).Err()
}
