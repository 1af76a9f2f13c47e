// Package timers is a durable due-queue in Redis: SLA deadlines, escalation-level timeouts,
// notification group flushes and delivery retries are opaque ids with a due time. Services
// sharing a Redis use different prefixes (Options.Prefix). Every replica polls the same queue;
// a Lua script per shard moves due ids to a lease set atomically, so each timer fires once across
// replicas, and a claim whose replica died before finishing it is taken again once its lease
// expires. Nothing lives only in the service's memory, so a replica that was down fires what
// became overdue meanwhile on its first poll, and Redis with AOF keeps the timers over a restart.
//
// Delivery is at least once: a replica that dies (or whose Done is lost) after handling a claim
// gets it redelivered after the lease. Handlers must be idempotent and re-check their own state.
package timers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ticketpulse/ticketpulse/services/platform/redisscript"
)

// Options configure a Queue. Replicas sharing a queue must agree on Prefix and Shards.
type Options struct {
	// Prefix starts every key (default "tp:", the escalation service's); another service on the
	// same Redis takes its own, such as "tp:notify:".
	Prefix string
	// Shards is how many due/lease set pairs the timers are spread over (default 16). Each shard
	// is one Redis Cluster slot, so more shards spread a cluster's load; it cannot change while
	// timers are pending, since an id's shard is derived from it.
	Shards int
	// Lease is how long a claim is reserved for the replica that made it (default 30s). It must
	// exceed the time a handle call takes, or the claim is redelivered while still being handled,
	// and the replicas' clocks must agree to well within it.
	Lease time.Duration
	// Batch is the most timers claimed per shard per poll (default 500).
	Batch int
	// Logger receives Run's Redis errors (default slog.Default()).
	Logger *slog.Logger
	// Traces keeps the planning traces timers are scheduled with (Timer.Trace) and hands them
	// to their claims: a key per traced timer, and one more round trip per claiming poll. Off,
	// Timer.Trace is ignored and Claimed.Trace stays empty.
	Traces bool
	// OnFire, when set, is called by Run for every claim just before it is handled, with how late
	// it is (handle time minus due time): the firing delay metric. A redelivery's delay includes
	// the lease it waited out.
	OnFire func(delay time.Duration)
}

// Timer is an id with its due time, for ScheduleMany.
type Timer struct {
	ID  string
	Due time.Time
	// Trace, when set, is the W3C traceparent of the work that planned the timer; its claim
	// hands it back, so the work done when it fires can link to the trace that planned it.
	// The latest plan's is kept, until a while after the timer was due.
	Trace string
}

// Claimed is a timer leased to the caller by Claim. Pass it back to Done once handled.
type Claimed struct {
	ID string
	// Due is the time the timer was scheduled for (millisecond precision), also on redelivery.
	Due time.Time
	// Redelivered is set when an earlier claim's lease expired without Done.
	Redelivered bool
	// Trace is the traceparent the timer was last planned with (Timer.Trace), or empty.
	Trace string

	shard int
	// token is the lease set member: it changes on every claim, so removing it is a
	// compare-and-delete of exactly this claim.
	token string
}

// Queue is a sharded due-queue. It is safe for concurrent use.
type Queue struct {
	rdb    redis.UniversalClient
	shards []shardKeys
	lease  time.Duration
	batch  int
	log    *slog.Logger
	onFire func(time.Duration)
	traced bool
}

type shardKeys struct {
	due, lease, seq string
	// trace starts the keys of the planning traces: <trace><id>, in the shard's slot.
	trace string
}

// maxTraceBytes bounds a stored traceparent (55 bytes in version 00); a longer one is not kept.
const maxTraceBytes = 128

// New returns a queue over rdb. Zero options take their defaults.
func New(rdb redis.UniversalClient, opts Options) *Queue {
	if opts.Prefix == "" {
		opts.Prefix = "tp:"
	}
	if opts.Shards <= 0 {
		opts.Shards = 16
	}
	if opts.Lease <= 0 {
		opts.Lease = 30 * time.Second
	}
	if opts.Lease < time.Millisecond {
		opts.Lease = time.Millisecond // lease scores are milliseconds: a zero lease would never expire later than now
	}
	if opts.Batch <= 0 {
		opts.Batch = 500
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	q := &Queue{rdb: rdb, lease: opts.Lease, batch: opts.Batch, log: opts.Logger, onFire: opts.OnFire, traced: opts.Traces}
	q.shards = make([]shardKeys, opts.Shards)
	for i := range q.shards {
		tag := opts.Prefix + "{tq:" + strconv.Itoa(i) + "}:"
		q.shards[i] = shardKeys{due: tag + "due", lease: tag + "lease", seq: tag + "seq", trace: tag + "trace:"}
	}
	return q
}

// shardOf is FNV-1a 32 of the id, inlined so that scheduling does not allocate a hasher.
func (q *Queue) shardOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % uint32(len(q.shards)))
}

// Schedule sets the timer id to fire at due. An id already pending is moved to the new time (one
// pending due time per id); a claim of it being handled right now is left alone, so the timer
// fires again at due. A due time in the past fires at the next poll.
func (q *Queue) Schedule(ctx context.Context, id string, due time.Time) error {
	err := q.rdb.ZAdd(ctx, q.shards[q.shardOf(id)].due, redis.Z{Score: float64(due.UnixMilli()), Member: id}).Err()
	if err != nil {
		return fmt.Errorf("schedule timer: %w", err)
	}
	return nil
}

// ScheduleMany schedules the timers as Schedule does, in one pipelined round trip. When an id
// appears twice, the later entry wins.
func (q *Queue) ScheduleMany(ctx context.Context, ts []Timer) error {
	return q.scheduleMany(ctx, ts, false)
}

// ScheduleEarlier is ScheduleMany except that a pending timer already due sooner keeps its due
// time (ZADD LT): writers with an outdated view can then only make a timer fire early, which
// idempotent handlers shrug off, never late. When an id appears twice, the earlier time wins.
func (q *Queue) ScheduleEarlier(ctx context.Context, ts []Timer) error {
	return q.scheduleMany(ctx, ts, true)
}

func (q *Queue) scheduleMany(ctx context.Context, ts []Timer, earlier bool) error {
	if len(ts) == 0 {
		return nil
	}
	// One ZADD per shard keeps the command count (and Redis's per-command cost) low; the args are
	// built directly since []redis.Z would be copied into them anyway.
	args := make([][]any, len(q.shards))
	for _, t := range ts {
		s := q.shardOf(t.ID)
		if args[s] == nil {
			args[s] = append(make([]any, 0, 3+2*len(ts)/len(q.shards)+8), "zadd", q.shards[s].due)
			if earlier {
				args[s] = append(args[s], "lt")
			}
		}
		args[s] = append(args[s], t.Due.UnixMilli(), t.ID)
	}
	pipe := q.rdb.Pipeline()
	for _, a := range args {
		if a != nil {
			pipe.Do(ctx, a...)
		}
	}
	now := time.Now()
	for _, t := range ts {
		if q.traced && t.Trace != "" && len(t.Trace) <= maxTraceBytes {
			// Kept until the timer's claim can have read it, however late it fires: a lease
			// after it was due, and a grace for a service that was down.
			pipe.Set(ctx, q.shards[q.shardOf(t.ID)].trace+t.ID, t.Trace, max(t.Due.Sub(now), 0)+q.lease+traceGrace)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("schedule %d timers: %w", len(ts), err)
	}
	return nil
}

// traceGrace is how long after its timer was due a planning trace is kept.
const traceGrace = 24 * time.Hour

// traces fills the claims' Trace from the planning traces stored with their timers, in one
// round trip; traces are a help for reading, so a failure leaves them empty.
func (q *Queue) traces(ctx context.Context, cs []Claimed) {
	if len(cs) == 0 {
		return
	}
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(cs))
	for i, c := range cs {
		cmds[i] = pipe.Get(ctx, q.shards[c.shard].trace+c.ID)
	}
	_, _ = pipe.Exec(ctx)
	for i, c := range cmds {
		cs[i].Trace = c.Val()
	}
}

// Cancel removes the pending timers ids, in one pipelined round trip. Unknown ids are ignored. A
// claim already handed to a handler is not revoked: the handler re-checks its own state.
func (q *Queue) Cancel(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	members := make([][]any, len(q.shards))
	for _, id := range ids {
		s := q.shardOf(id)
		members[s] = append(members[s], id)
	}
	pipe := q.rdb.Pipeline()
	for s, m := range members {
		if m != nil {
			pipe.ZRem(ctx, q.shards[s].due, m...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("cancel %d timers: %w", len(ids), err)
	}
	return nil
}

// Due returns the pending due time of id (millisecond precision); ok is false when id is not
// pending (never scheduled, cancelled, or claimed).
func (q *Queue) Due(ctx context.Context, id string) (due time.Time, ok bool, err error) {
	ms, err := q.rdb.ZScore(ctx, q.shards[q.shardOf(id)].due, id).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("timer due time: %w", err)
	}
	return time.UnixMilli(int64(ms)), true, nil
}

// Pending returns how many timers are pending (scheduled, not claimed) over all shards.
func (q *Queue) Pending(ctx context.Context) (int64, error) {
	pipe := q.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(q.shards))
	for i, k := range q.shards {
		cmds[i] = pipe.ZCard(ctx, k.due)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("count pending timers: %w", err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// claimScript leases one shard's due timers. KEYS: due set, lease set, claim counter. ARGV: now
// and lease expiry (unix ms), the most to claim. Expired leases are taken first: they have waited
// longest. A lease member is "<claim seq>:<due ms>:<id>": the due time rides along (it is needed
// to measure the firing delay and costs nothing in the pending set), and the sequence number,
// new on every claim, makes the member itself the claim's token, so Done's ZREM cannot remove a
// later claim of the same timer. Both pops take the lowest ranks, which are exactly the entries
// just read, so ZREMRANGEBYRANK removes them without resending the members. Returns the number
// of redeliveries, then the members (redeliveries first).
var claimScript = redis.NewScript(`
local now, exp, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local stale = redis.call('ZRANGE', KEYS[2], '-inf', now, 'BYSCORE', 'LIMIT', 0, limit)
local due = {}
if #stale < limit then
  due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, limit - #stale, 'WITHSCORES')
end
if #stale == 0 and #due == 0 then return {0} end
local seq = redis.call('INCR', KEYS[3]) .. ':'
local out = {#stale}
local add = {}
if #stale > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, #stale - 1)
  for _, m in ipairs(stale) do
    local nm = seq .. string.sub(m, string.find(m, ':', 1, true) + 1)
    out[#out + 1] = nm
    add[#add + 1] = exp
    add[#add + 1] = nm
  end
end
if #due > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, #due / 2 - 1)
  for i = 1, #due, 2 do
    local nm = seq .. due[i + 1] .. ':' .. due[i]
    out[#out + 1] = nm
    add[#add + 1] = exp
    add[#add + 1] = nm
  end
end
-- unpack is bounded by Lua's C stack (8000 values): add in chunks.
for i = 1, #add, 2000 do
  redis.call('ZADD', KEYS[2], unpack(add, i, math.min(i + 1999, #add)))
end
return out
`)

// Claim leases the timers due at now (and those whose earlier claim's lease expired, marked
// Redelivered) until now+Lease, up to Batch per shard, in one pipelined round trip. Handle them,
// then pass the handled ones to Done; the others are redelivered when their lease expires. On
// error the claims of the shards that answered are still returned: they are leased and would
// otherwise wait for their lease to expire.
func (q *Queue) Claim(ctx context.Context, now time.Time) ([]Claimed, error) {
	cs, _, err := q.claim(ctx, now)
	return cs, err
}

// claim is Claim that also says whether some shard filled its batch (more may be due).
func (q *Queue) claim(ctx context.Context, now time.Time) (cs []Claimed, full bool, err error) {
	nowMs := now.UnixMilli()
	argv := []any{nowMs, nowMs + q.lease.Milliseconds(), q.batch}
	// A dead connection fails every shard alike: shards are grouped by error so that it is
	// reported once.
	var errs []error
	shardsOf := map[string][]int{}
	fail := func(s int, err error) {
		if shardsOf[err.Error()] == nil {
			errs = append(errs, err)
		}
		shardsOf[err.Error()] = append(shardsOf[err.Error()], s)
	}
	// Shards that answered before a lost script cache was reloaded keep their claims: only the
	// calls that failed are sent again, so nothing is claimed twice.
	cmds := make([]*redis.Cmd, len(q.shards))
	_, _ = redisscript.Exec(ctx, q.rdb, func(pipe redis.Pipeliner) {
		for s, k := range q.shards {
			cmds[s] = claimScript.EvalSha(ctx, pipe, []string{k.due, k.lease, k.seq}, argv...)
		}
	}, claimScript) // per-command errors are examined below
	for s := range q.shards {
		res, err := cmds[s].Slice()
		if err != nil {
			fail(s, err)
			continue
		}
		got, err := q.parseClaims(s, res)
		if err != nil {
			fail(s, err)
		}
		cs = append(cs, got...)
		if len(res)-1 >= q.batch {
			full = true
		}
	}
	if q.traced {
		q.traces(ctx, cs)
	}
	if len(errs) > 0 {
		for i, err := range errs {
			errs[i] = fmt.Errorf("shards %v: %w", shardsOf[err.Error()], err)
		}
		return cs, full, fmt.Errorf("claim timers: %w", errors.Join(errs...))
	}
	return cs, full, nil
}

func (q *Queue) parseClaims(shard int, res []any) ([]Claimed, error) {
	if len(res) == 0 {
		return nil, errors.New("empty claim reply")
	}
	redelivered, ok := res[0].(int64)
	if !ok {
		return nil, fmt.Errorf("claim reply starts with %T", res[0])
	}
	out := make([]Claimed, 0, len(res)-1)
	for i, v := range res[1:] {
		m, ok := v.(string)
		if !ok {
			return out, fmt.Errorf("claim reply holds %T", v)
		}
		c, err := parseMember(m)
		if err != nil {
			// Leave the entry leased: it is redelivered (and reported again) until someone
			// removes it, rather than silently lost.
			return out, err
		}
		c.Redelivered = int64(i) < redelivered
		c.shard = shard
		out = append(out, c)
	}
	return out, nil
}

// parseMember splits a lease member "<seq>:<due ms>:<id>"; the id may hold any byte.
func parseMember(m string) (Claimed, error) {
	i := strings.IndexByte(m, ':')
	if i < 0 {
		return Claimed{}, fmt.Errorf("malformed lease entry %q", m)
	}
	j := strings.IndexByte(m[i+1:], ':')
	if j < 0 {
		return Claimed{}, fmt.Errorf("malformed lease entry %q", m)
	}
	j += i + 1
	due, err := strconv.ParseInt(m[i+1:j], 10, 64)
	if err != nil {
		// Scores are written as integers by Schedule, but one written by hand could be
		// fractional or in exponent form: keep it rather than fail the timer.
		f, ferr := strconv.ParseFloat(m[i+1:j], 64)
		if ferr != nil {
			return Claimed{}, fmt.Errorf("lease entry %q due time: %w", m, err)
		}
		due = int64(f)
	}
	return Claimed{ID: m[j+1:], Due: time.UnixMilli(due), token: m}, nil
}

// Done releases handled claims, in one pipelined round trip. It removes only these claims'
// lease entries: a timer scheduled again since it was claimed stays pending, and a claim whose
// lease expired and was taken by another replica is left to that replica. Claims not passed to
// Done are redelivered when their lease expires.
func (q *Queue) Done(ctx context.Context, cs []Claimed) error {
	members := make([][]any, len(q.shards))
	n := 0
	for _, c := range cs {
		if c.token == "" || c.shard >= len(q.shards) {
			continue // not from Claim (or from a queue with other shards): nothing to release
		}
		members[c.shard] = append(members[c.shard], c.token)
		n++
	}
	if n == 0 {
		return nil
	}
	pipe := q.rdb.Pipeline()
	for s, m := range members {
		if m != nil {
			pipe.ZRem(ctx, q.shards[s].lease, m...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("release %d timer claims: %w", n, err)
	}
	return nil
}
